// log/log.hpp — one line per event, key=value (STYLE 12).
//   2026-11-26T06:50:31.123Z postern[4711]: severity=info event=connect session=… client=…
// Values with spaces, quotes or '=' are quoted. With format::json (serve
// --log-format json) the same event is one JSON object per line:
//   {"time":"2026-11-26T06:50:31.123Z","pid":4711,"severity":"info","event":"connect","session":"…"}
// numbers stay numbers, strings are escaped, and octets that are not UTF-8
// are written as \u00XX so every line is valid JSON. A line is emitted by one
// write(2) when the builder is destroyed, so lines from threads never interleave.
// With set_syslog() (serve --log-target syslog) each line is one datagram to
// the local syslog socket instead, in the format glibc's syslog(3) sends
// ("<PRI>Mmm dd hh:mm:ss postern[PID]: severity=… event=…", facility mail,
// RFC 3164 4.1 as /dev/log readers — journald, rsyslog — take it); the
// timestamp and pid are then syslog's, not repeated in the text. Written
// directly rather than through syslog(3) because syslog(3) can only reach
// /dev/log: a test points this at a socket of its own, and both run the same
// code. When the socket is unreachable (no syslog daemon, restarted), the
// line goes to the descriptor instead: nothing is dropped silently.
// Never pass AUTH payloads or message bodies. Thread: any thread.
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>

namespace postern::log {

enum class severity { info, warn, error, fatal, panic };
enum class format { text, json };

// The syslog priority of a line: facility LOG_MAIL with info → LOG_INFO,
// warn → LOG_WARNING, error → LOG_ERR, fatal and panic → LOG_CRIT.
int syslog_priority(severity s) noexcept;

class line {
public:
    line(severity s, std::string_view event);
    line(const line&) = delete;
    line& operator=(const line&) = delete;
    ~line();

    line& kv(std::string_view key, std::string_view value);
    line& kv(std::string_view key, const char* value) { return kv(key, std::string_view(value)); }
    line& kv(std::string_view key, const std::string& value) { return kv(key, std::string_view(value)); }
    line& kv(std::string_view key, std::uint64_t value);
    line& kv(std::string_view key, std::int64_t value);
    line& kv(std::string_view key, unsigned value) { return kv(key, std::uint64_t{value}); }
    line& kv(std::string_view key, int value) { return kv(key, std::int64_t{value}); }
    line& kv(std::string_view key, double value);

private:
    // A value written as it is in both formats (numbers).
    line& number(std::string_view key, std::string_view digits);
    void key(std::string_view k);

    std::string buf_;
    bool json_ = false;
    severity severity_ = severity::info;
};

inline line info(std::string_view event) { return line(severity::info, event); }
inline line warn(std::string_view event) { return line(severity::warn, event); }
inline line error(std::string_view event) { return line(severity::error, event); }
inline line fatal(std::string_view event) { return line(severity::fatal, event); }

// Logs what an exception_ptr holds as an error line (no-op for null): the
// completion handler of every co_spawn (STYLE 9), so a failed coroutine is
// logged and contained.
void exception(std::string_view event, std::exception_ptr e);

// Lines go to this descriptor (default 2, stderr). Set once at start-up.
void set_fd(int fd);
// info lines are dropped when false (tests and benchmarks may quieten the log).
void set_verbose(bool on);
// text (default) or json; set once at start-up.
void set_format(format f);
// Lines go to the syslog socket at path (a UNIX datagram socket, "/dev/log"
// normally) from now on; set once at start-up. False (errno set) when no
// socket can be made; an unreachable path is not an error (see above).
// An empty path: back to the descriptor.
bool set_syslog(const std::string& path = "/dev/log");

} // namespace postern::log
