#include "postern/mailbox/lock.hpp"

#include <cerrno>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "postern/util/error.hpp"

namespace postern::mailbox {

util::result<lock> lock::acquire(const std::string& dir)
{
    const std::string path = dir + "/.postern-lock";
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return util::last_os_error();
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        const int e = errno;
        ::close(fd);
        if (e == EWOULDBLOCK)
            return util::errc::refused;
        return std::error_code(e, std::system_category());
    }
    return lock(fd);
}

util::result<lock> lock::wait(const std::string& path)
{
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return util::last_os_error();
    while (::flock(fd, LOCK_EX) != 0) {
        if (errno == EINTR)
            continue;
        const int e = errno;
        ::close(fd);
        return std::error_code(e, std::system_category());
    }
    return lock(fd);
}

lock& lock::operator=(lock&& o) noexcept
{
    if (this != &o) {
        release();
        fd_ = o.fd_;
        o.fd_ = -1;
    }
    return *this;
}

void lock::release() noexcept
{
    if (fd_ >= 0) {
        ::close(fd_); // closing the last descriptor drops the flock
        fd_ = -1;
    }
}

} // namespace postern::mailbox
