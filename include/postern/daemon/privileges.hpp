// daemon/privileges.hpp — running as an unprivileged user after binding
// (config "user" / "group"), the way Postfix's and OpenSMTPD's daemons give
// up root: look the account up before anything binds, bind the ports as
// root, hand spool_dir and mail_root to the account, then drop for good
// (supplementary groups, gid, uid; verified by trying to get root back).
// Without "user" nothing changes; serve() warns when that means root.
// Thread: startup, on the main thread. The kernel changes ids per thread;
// glibc's setuid/setgid/setgroups apply the change to every thread of the
// process (its SIGSETXID broadcast), so the worker threads already started
// (committer, pools) drop too — the integration test checks each one.
#pragma once

#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "postern/config/config.hpp"

namespace postern::daemon {

struct account {
    std::string user;
    std::string group;
    uid_t uid = 0;
    gid_t gid = 0;
};

// The configured account, or nullopt without "user". Throws config::error
// naming the file and the key when the user or group does not exist or is
// root (dropping to root would be no drop at all).
std::optional<account> resolve_account(const config::settings& s);

// Makes each directory exist (created 0700; an existing one keeps its mode,
// which its owner module sets: the spool is 0711 for pickup/) and belong to
// the account, with everything below it that does not yet (files root made
// before the drop: a fresh spool, the self-signed certificate). Files below
// keep_contents (the pickup directory) keep their owners — there the owner
// is the submitting user's identity — and only take the account's group
// (as the setgid pickup directory gives new files). Throws
// std::system_error naming the path.
void hand_over(const std::vector<std::string>& dirs, const account& a,
               const std::vector<std::string>& keep_contents = {});

// Gives up root for good: no supplementary groups but the account's group,
// then the gid, then the uid. Throws
// std::system_error when a step fails or root can be regained.
void drop_privileges(const account& a);

} // namespace postern::daemon
