// server/pickup_service.hpp — takes the files `postern sendmail` leaves in
// <spool_dir>/pickup/ into the queue (Postfix's pickup(8) for its maildrop).
//
// Each file (queue/pickup_file.hpp) becomes a queue::new_message committed
// through the same group committer as SMTP mail, with a Received: field
// naming the local user, and From: (with -F's full name), Date: (the
// submission time) and Message-ID: added when missing (RFC 6409 8). Its
// recipients are treated like those of an authenticated submission: any
// domain, local ones delivered at once (delivery::direct_store).
//
// Security. The pickup directory is mode 3733 and owned by the spool's
// owner (created so by start() and by a root `postern sendmail`): every
// local user may create files in it, none may list it or remove another's
// files (sticky), and each file takes the directory's group (setgid) —
// the server's — and is written 0640, so the server reads it even when it
// runs as an unprivileged user, and other users cannot. postern has no
// setgid helper as Postfix's postdrop: the directory modes are the whole
// gate. The spool directory above it is 0711 (control_server), its other
// subdirectories 0700. A file's content is written by an arbitrary local
// user, so nothing in it is believed on its own word:
//   - it is opened with O_NOFOLLOW|O_NONBLOCK and must be a regular file
//     with one link (no symlink or hard link to someone else's file, no FIFO);
//   - its owner (fstat) is the submitter: the uid and login name written
//     in it must be that owner's, the login name comes from the password
//     database;
//   - a sender other than <login>@<hostname> (-f) is accepted only when
//     that login is in sendmail.trusted_users (checked again here: the
//     client's check is a courtesy);
//   - size (limits.message_size), header shape, addresses and CRLF-only
//     text are checked. Any file failing a check is moved to
//     pickup/corrupt/ (0700) and logged, never deleted and never fatal.
// A file the server cannot read (its writer made it unreadable) stays put
// and is logged once.
//
// Durability: a file is unlinked only after the group committer reports
// its message durable. A crash between the commit and the unlink queues the
// message again at the next start: at worst a duplicate, never a loss
// (Postfix's pickup has the same window, and says so).
//
// Polling: the directory is scanned at start and then every interval
// (default 1 s), rather than with inotify: bounded, simple, and a scan of
// an empty directory costs one getdents. Files are taken in name order
// (their names start with a time-ordered queue id).
// Thread: a thread of its own; commits wait for the committer thread.
// start()/stop() from the owning thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "postern/config/config.hpp"
#include "postern/queue/group_committer.hpp"
#include "postern/route/table.hpp"
#include "postern/live/generation.hpp"
#include "postern/util/clock.hpp"
#include "postern/util/result.hpp"

namespace postern::server {

class pickup_service {
public:
    pickup_service(const config::settings& cfg, const route::table& routes, queue::group_committer& committer,
                   const util::clock& clock, std::chrono::milliseconds interval = std::chrono::seconds(1));
    // Live: each file is taken under the generation in force (limits,
    // routes, hostname, sendmail.trusted_users); live outlives the service.
    pickup_service(const live::current& live, queue::group_committer& committer, const util::clock& clock,
                   std::chrono::milliseconds interval = std::chrono::seconds(1));
    ~pickup_service();
    pickup_service(const pickup_service&) = delete;
    pickup_service& operator=(const pickup_service&) = delete;

    // The mode of a pickup file: the server's group (the directory's) reads it.
    static constexpr unsigned file_mode = 0640;

    // <spool_dir>/pickup
    static std::string directory(const std::string& spool_dir);
    // Makes sure the pickup directory exists. With create, a missing one is
    // made (the spool 0711, pickup 3733 and pickup/corrupt 0700 owned by the
    // spool's owner and group); without it,
    // a missing one is errc::no_such_file_or_directory. An existing path
    // that is no directory (a symlink, say) is errc::not_a_directory.
    static util::result<void> make_directory(const std::string& spool_dir, bool create);
    // "<queue id>.<16 random hex>": ordered by time, unguessable.
    static std::string file_name(util::time_point now);
    static bool is_file_name(std::string_view name) noexcept;

    // Identity and the -f policy, shared with `postern sendmail` (which
    // checks early, for a clear exit status) so both sides agree:
    // the login name of uid in the password database ("" when it has none);
    static std::string login_name(unsigned uid);
    // the default sender of a local user, <login>@<hostname>;
    static std::string own_address(const config::settings& cfg, std::string_view login);
    // whether login may submit with this envelope sender ("" = <>): its own
    // address (case-insensitively), or any when sendmail.trusted_users has it.
    static bool may_use_sender(const config::settings& cfg, std::string_view login, std::string_view sender);

    // Creates the directories and sets their modes (throws std::system_error),
    // then starts the scanning thread.
    void start();
    // Finishes the file in hand, then stops the thread.
    void stop();
    // One pass over the directory; returns how many messages were queued.
    std::size_t scan();

private:
    enum class outcome { queued, quarantined, left, gone };
    void run();
    outcome take(const std::string& name);
    outcome quarantine(const std::string& name, std::string_view reason);
    // A file that stays (unreadable, commit failed) is logged once, not every pass.
    void report_left(const std::string& name, std::string_view what, const std::string& error);

    const live::current* live_ = nullptr;
    std::shared_ptr<const live::generation> gen_; // live: the one in use (scan thread)
    const config::settings* cfg_;
    const route::table* routes_;
    queue::group_committer& committer_;
    const util::clock& clock_;
    std::chrono::milliseconds interval_;
    std::string dir_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::thread thread_;
    std::set<std::string> reported_; // scan thread only
};

} // namespace postern::server
