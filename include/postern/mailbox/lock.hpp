// mailbox/lock.hpp — one access session per Maildir at a time (RFC 1939 8:
// the server should lock the maildrop for the TRANSACTION state; RFC 2449
// 8.1.2's [IN-USE] when it cannot).
// How: flock(LOCK_EX | LOCK_NB) on "<dir>/.postern-lock". flock rather than
// an O_EXCL file with a pid: the kernel drops the lock when the descriptor
// closes, so a crashed or killed process never leaves a stale lock that
// needs pid checks (which PID reuse and PID namespaces make unreliable).
// The lock file stays; it begins with '.', so Maildir readers skip it.
// flock is advisory and per open file description: two lock objects in one
// process exclude each other too (each opens the file itself).
// wait() is the blocking variant for short critical sections on any lock
// file (the IMAP store's index updates, store.hpp): flock(LOCK_EX) on path,
// created if missing, waiting for the holder to let go.
// Thread: blocking (open, and wait() on the holder); the disk pool. A lock
// object is movable, not copyable.
#pragma once

#include <string>

#include "postern/util/result.hpp"

namespace postern::mailbox {

class lock {
public:
    // errc::refused (util) when another session holds it; OS errors as they come.
    static util::result<lock> acquire(const std::string& dir);
    // Waits for an exclusive flock on the file at path (created, mode 0600).
    static util::result<lock> wait(const std::string& path);

    lock() = default;
    lock(lock&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
    lock& operator=(lock&& o) noexcept;
    lock(const lock&) = delete;
    lock& operator=(const lock&) = delete;
    ~lock() { release(); }

    bool held() const noexcept { return fd_ >= 0; }
    void release() noexcept;

private:
    explicit lock(int fd) : fd_(fd) {}
    int fd_ = -1;
};

} // namespace postern::mailbox
