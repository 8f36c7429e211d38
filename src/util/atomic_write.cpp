#include "postern/util/atomic_write.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "postern/util/id.hpp"

namespace postern::util {

namespace {

result<void> write_all(int fd, std::span<const std::string_view> parts)
{
    // writev in rounds: at most IOV_MAX entries, and partial writes resume.
    std::vector<iovec> iov;
    iov.reserve(parts.size());
    for (auto p : parts)
        if (!p.empty())
            iov.push_back({const_cast<char*>(p.data()), p.size()});
    std::size_t i = 0;
    while (i < iov.size()) {
        int n = static_cast<int>(std::min<std::size_t>(iov.size() - i, 1024));
        ssize_t w = ::writev(fd, &iov[i], n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return last_os_error();
        }
        auto left = static_cast<std::size_t>(w);
        while (i < iov.size() && left >= iov[i].iov_len) {
            left -= iov[i].iov_len;
            ++i;
        }
        if (left > 0) {
            iov[i].iov_base = static_cast<char*>(iov[i].iov_base) + left;
            iov[i].iov_len -= left;
        }
    }
    return {};
}

result<void> sync_fs(int fd)
{
    if (::syncfs(fd) != 0)
        return last_os_error();
    return {};
}

} // namespace

durable_batch::~durable_batch()
{
    release();
}

void durable_batch::release()
{
    for (auto& f : files_)
        ::close(f.fd);
    files_.clear();
    renames_.clear();
    for (auto& f : fss_)
        ::close(f.fd);
    fss_.clear();
}

result<void> durable_batch::remember_fs(int fd, bool& kept)
{
    struct stat st{};
    if (::fstat(fd, &st) != 0)
        return last_os_error();
    kept = false;
    for (const auto& f : fss_)
        if (f.dev == st.st_dev)
            return {};
    fss_.push_back({static_cast<unsigned long>(st.st_dev), ::dup(fd)});
    kept = true;
    return {};
}

result<void> durable_batch::sync_all()
{
    for (const auto& f : fss_)
        if (auto r = sync_fs(f.fd); !r)
            return r;
    return {};
}

result<void> durable_batch::write(const std::string& path, std::span<const std::string_view> parts,
                                  const std::string& recycle)
{
    int fd = -1;
    if (!recycle.empty() &&
        ::renameat2(AT_FDCWD, recycle.c_str(), AT_FDCWD, path.c_str(), RENAME_NOREPLACE) == 0)
        fd = ::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
    if (fd < 0)
        fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return last_os_error();
    bool kept = false;
    auto r = write_all(fd, parts);
    if (r)
        r = remember_fs(fd, kept);
    if (!r) {
        ::close(fd);
        ::unlink(path.c_str());
        return r;
    }
    files_.push_back({path, fd});
    return {};
}

std::size_t durable_batch::rename(std::string from, std::string to)
{
    renames_.push_back({std::move(from), std::move(to)});
    return renames_.size() - 1;
}

namespace {

std::string parent_of(const std::string& path)
{
    auto slash = path.rfind('/');
    return slash == std::string::npos ? "." : path.substr(0, slash);
}

} // namespace

result<std::vector<std::error_code>> durable_batch::commit()
{
    std::vector<std::error_code> out(renames_.size());
    std::vector<std::string> target_dirs;
    for (const auto& r : renames_) {
        auto d = parent_of(r.to);
        if (std::find(target_dirs.begin(), target_dirs.end(), d) == target_dirs.end())
            target_dirs.push_back(std::move(d));
    }
    const bool small = files_.size() <= fsync_threshold && target_dirs.size() <= fsync_threshold;
    // 1. the data
    if (small) {
        for (const auto& f : files_)
            if (::fsync(f.fd) != 0) {
                auto ec = last_os_error();
                release();
                return ec;
            }
    } else {
        // Renames of already-written things (a directory of staged files)
        // still need their filesystem synced: name it by each source's parent.
        std::string last_dir;
        for (const auto& r : renames_) {
            auto dir = parent_of(r.from);
            if (dir == last_dir)
                continue; // a batch's sources usually share one directory
            last_dir = dir;
            int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (fd < 0) {
                auto ec = last_os_error();
                release();
                return ec;
            }
            bool kept = false;
            auto k = remember_fs(fd, kept);
            ::close(fd);
            if (!k) {
                release();
                return k.error();
            }
        }
        if (auto r = sync_all(); !r) {
            release();
            return r.error();
        }
    }
    // 2. the renames
    bool renamed = false;
    for (std::size_t i = 0; i < renames_.size(); ++i) {
        const auto& r = renames_[i];
        if (::renameat2(AT_FDCWD, r.from.c_str(), AT_FDCWD, r.to.c_str(), RENAME_NOREPLACE) != 0)
            out[i] = errno == EEXIST ? make_error_code(errc::exists) : last_os_error();
        else
            renamed = true;
    }
    // 3. the renamed names
    result<void> synced;
    if (renamed) {
        if (small) {
            for (const auto& d : target_dirs)
                if (synced)
                    synced = fsync_dir(d);
        } else {
            synced = sync_all();
        }
    }
    release();
    if (!synced)
        return synced.error();
    return out;
}

result<void> atomic_write(const std::string& dir, std::string_view name, std::string_view bytes, unsigned mode)
{
    std::string tmp = dir + "/.tmp." + make_session_id();
    std::string_view parts[] = {bytes};
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return last_os_error();
    result<void> r;
    if (mode != 0600 && ::fchmod(fd, static_cast<mode_t>(mode)) != 0)
        r = last_os_error();
    if (r)
        r = write_all(fd, parts);
    if (r && ::fsync(fd) != 0)
        r = last_os_error();
    if (r && ::rename(tmp.c_str(), (dir + "/" + std::string(name)).c_str()) != 0)
        r = last_os_error();
    if (!r) {
        ::close(fd);
        ::unlink(tmp.c_str());
        return r;
    }
    r = fsync_dir(dir);
    // A directory the writer may add to but not read (the pickup directory,
    // mode 3733: `postern sendmail` run by any local user) cannot be opened
    // to fsync it; syncfs() of the file system the file is on makes the
    // rename durable all the same.
    if (!r && r.error() == std::errc::permission_denied)
        r = ::syncfs(fd) == 0 ? result<void>() : result<void>(last_os_error());
    ::close(fd);
    return r;
}

result<void> fsync_dir(const std::string& dir)
{
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return last_os_error();
    result<void> r;
    if (::fsync(fd) != 0)
        r = last_os_error();
    ::close(fd);
    return r;
}

result<std::string> read_file(const std::string& path)
{
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return last_os_error();
    std::string out;
    struct stat st{};
    if (::fstat(fd, &st) == 0 && st.st_size > 0)
        out.reserve(static_cast<std::size_t>(st.st_size));
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            auto ec = last_os_error();
            ::close(fd);
            return ec;
        }
        if (n == 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

} // namespace postern::util
