#include "postern/daemon/privileges.hpp"

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace postern::daemon {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail_errno(const std::string& what)
{
    throw std::system_error(errno, std::generic_category(), what);
}

void own(const fs::path& p, const account& a)
{
    struct stat st{};
    if (::lstat(p.c_str(), &st) != 0)
        fail_errno(p.string());
    if ((st.st_uid != a.uid || st.st_gid != a.gid) && ::lchown(p.c_str(), a.uid, a.gid) != 0)
        fail_errno("chown " + p.string());
}

void own_group(const fs::path& p, const account& a)
{
    if (::lchown(p.c_str(), static_cast<uid_t>(-1), a.gid) != 0)
        fail_errno("chgrp " + p.string());
}

} // namespace

std::optional<account> resolve_account(const config::settings& s)
{
    if (s.run_as_user.empty())
        return std::nullopt;
    account a;
    a.user = s.run_as_user;
    // getpwnam_r would be needed with threads; at startup there are none.
    const passwd* pw = ::getpwnam(s.run_as_user.c_str());
    if (pw == nullptr)
        throw config::error(s.source + ": user: expected an existing user name, got \"" + s.run_as_user + "\"");
    if (pw->pw_uid == 0)
        throw config::error(s.source + ": user: expected an unprivileged user, got \"" + s.run_as_user +
                            "\" (uid 0)");
    a.uid = pw->pw_uid;
    a.gid = pw->pw_gid;
    if (!s.run_as_group.empty()) {
        const group* gr = ::getgrnam(s.run_as_group.c_str());
        if (gr == nullptr)
            throw config::error(s.source + ": group: expected an existing group name, got \"" + s.run_as_group +
                                "\"");
        if (gr->gr_gid == 0)
            throw config::error(s.source + ": group: expected an unprivileged group, got \"" + s.run_as_group +
                                "\" (gid 0)");
        a.gid = gr->gr_gid;
        a.group = s.run_as_group;
    } else if (const group* gr = ::getgrgid(a.gid); gr != nullptr) {
        a.group = gr->gr_name;
    }
    return a;
}

void hand_over(const std::vector<std::string>& dirs, const account& a, const std::vector<std::string>& keep_contents)
{
    for (const auto& d : dirs) {
        std::error_code ec;
        if (fs::create_directories(d, ec) && ::chmod(d.c_str(), 0700) != 0)
            fail_errno("chmod " + d);
        if (ec)
            throw std::system_error(ec, d);
        own(d, a);
        // Symlinks are not followed (lchown, and the iterator does not
        // descend into them): a link planted below cannot hand over a file
        // elsewhere.
        for (auto it = fs::recursive_directory_iterator(d, ec); !ec && it != fs::recursive_directory_iterator();
             it.increment(ec)) {
            const auto p = it->path().lexically_normal().string();
            const bool kept = std::any_of(keep_contents.begin(), keep_contents.end(), [&p](const std::string& k) {
                const auto base = fs::path(k).lexically_normal().string() + "/";
                return p.compare(0, base.size(), base) == 0;
            });
            if (kept && !it->is_directory(ec))
                own_group(it->path(), a); // the submitter stays the owner; the server's group reads it
            else
                own(it->path(), a);
        }
        if (ec)
            throw std::system_error(ec, d);
    }
}

void drop_privileges(const account& a)
{
    // Only the one group, no supplementary ones (Postfix's set_ugid() does
    // the same): whatever groups the user is in give the daemon nothing.
    if (::setgroups(1, &a.gid) != 0)
        fail_errno("setgroups " + std::to_string(a.gid));
    if (::setgid(a.gid) != 0)
        fail_errno("setgid " + std::to_string(a.gid));
    if (::setuid(a.uid) != 0)
        fail_errno("setuid " + std::to_string(a.uid));
    // For good: neither the real, effective nor saved id may be root now.
    if (::setuid(0) == 0 || ::getuid() == 0 || ::geteuid() == 0)
        throw std::system_error(std::make_error_code(std::errc::operation_not_permitted),
                                "root could be regained after dropping to " + a.user);
}

} // namespace postern::daemon
