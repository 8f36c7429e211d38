#include "postern/log/log.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

namespace postern::log {

namespace {

std::atomic<int> out_fd{2};
std::atomic<bool> verbose{true};
std::atomic<format> out_format{format::text};
std::atomic<bool> to_syslog{false};

// The syslog socket: connected once, again when the daemon went away.
struct syslog_socket {
    std::mutex mu;
    std::string path;
    int fd = -1;
    bool connected = false;

    // Under mu.
    void connect_now()
    {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (path.size() >= sizeof addr.sun_path)
            return;
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        connected = ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0;
    }

    // One datagram; false when it could not be sent (the caller falls back).
    bool send(const std::string& datagram)
    {
        std::lock_guard lk(mu);
        for (int attempt = 0; attempt < 2; ++attempt) {
            if (!connected)
                connect_now();
            if (!connected)
                return false;
            if (::send(fd, datagram.data(), datagram.size(), MSG_NOSIGNAL) >= 0)
                return true;
            if (errno == EINTR) {
                --attempt;
                continue;
            }
            // ECONNREFUSED, ENOTCONN, ENOENT: the daemon restarted; once more.
            connected = false;
        }
        return false;
    }
};

syslog_socket& syslog_out()
{
    static syslog_socket s;
    return s;
}

void write_all(int fd, const char* p, std::size_t left)
{
    while (left > 0) {
        ssize_t w = ::write(fd, p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; // logging must never take the process down
        p += w;
        left -= static_cast<std::size_t>(w);
    }
}

const char* name(severity s)
{
    switch (s) {
    case severity::info: return "info";
    case severity::warn: return "warn";
    case severity::error: return "error";
    case severity::fatal: return "fatal";
    case severity::panic: return "panic";
    }
    return "info";
}

bool needs_quotes(std::string_view v)
{
    if (v.empty())
        return true;
    for (unsigned char c : v)
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c == 0x7f)
            return true;
    return false;
}

// The length of the valid UTF-8 sequence at s[i] (RFC 3629 4: no overlong
// forms, no surrogates, at most U+10FFFF), or 0.
std::size_t utf8_length(std::string_view s, std::size_t i)
{
    const auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
    const auto c = b(0);
    const auto cont = [&](std::size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
    if (c >= 0xC2 && c <= 0xDF)
        return cont(1) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (!cont(1) || !cont(2) || (c == 0xE0 && b(1) < 0xA0) || (c == 0xED && b(1) > 0x9F))
            return 0;
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (!cont(1) || !cont(2) || !cont(3) || (c == 0xF0 && b(1) < 0x90) || (c == 0xF4 && b(1) > 0x8F))
            return 0;
        return 4;
    }
    return 0;
}

// A JSON string (RFC 8259 7), quotes included.
void append_json_string(std::string& out, std::string_view v)
{
    out.push_back('"');
    for (std::size_t i = 0; i < v.size();) {
        const auto c = static_cast<unsigned char>(v[i]);
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(static_cast<char>(c));
            ++i;
        } else if (c >= 0x20 && c < 0x7f) {
            out.push_back(static_cast<char>(c));
            ++i;
        } else if (auto n = c >= 0x80 ? utf8_length(v, i) : 0; n > 0) {
            out.append(v.substr(i, n));
            i += n;
        } else {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\u%04x", c);
            out.append(esc);
            ++i;
        }
    }
    out.push_back('"');
}

} // namespace

int syslog_priority(severity s) noexcept
{
    switch (s) {
    case severity::info: return LOG_MAIL | LOG_INFO;
    case severity::warn: return LOG_MAIL | LOG_WARNING;
    case severity::error: return LOG_MAIL | LOG_ERR;
    case severity::fatal: return LOG_MAIL | LOG_CRIT;
    case severity::panic: return LOG_MAIL | LOG_CRIT;
    }
    return LOG_MAIL | LOG_INFO;
}

line::line(severity s, std::string_view event) : severity_(s)
{
    if (s == severity::info && !verbose.load(std::memory_order_relaxed))
        return;
    using namespace std::chrono;
    auto now = system_clock::now();
    std::time_t tt = system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    json_ = out_format.load(std::memory_order_relaxed) == format::json;
    char head[128];
    int n = !json_ && to_syslog.load(std::memory_order_relaxed)
                ? std::snprintf(head, sizeof head, "severity=%s", name(s)) // syslog has time and pid
          : json_ ? std::snprintf(head, sizeof head,
                                  "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\",\"pid\":%d,\"severity\":\"%s\"",
                                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                                  tm.tm_sec, static_cast<int>(ms), static_cast<int>(::getpid()), name(s))
                  : std::snprintf(head, sizeof head, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ postern[%d]: severity=%s",
                                  tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                                  tm.tm_sec, static_cast<int>(ms), static_cast<int>(::getpid()), name(s));
    buf_.reserve(256);
    buf_.append(head, static_cast<std::size_t>(n));
    kv("event", event);
}

line::~line()
{
    if (buf_.empty())
        return;
    if (json_)
        buf_.push_back('}');
    if (to_syslog.load(std::memory_order_relaxed)) {
        // glibc's own format for the local socket: "<PRI>Mmm dd hh:mm:ss TAG[PID]: ".
        std::time_t tt = std::time(nullptr);
        std::tm tm{};
        localtime_r(&tt, &tm);
        char stamp[32];
        std::strftime(stamp, sizeof stamp, "%h %e %T", &tm);
        char head[96];
        int n = std::snprintf(head, sizeof head, "<%d>%s postern[%d]: ", syslog_priority(severity_), stamp,
                              static_cast<int>(::getpid()));
        std::string datagram(head, static_cast<std::size_t>(n));
        datagram += buf_;
        if (syslog_out().send(datagram))
            return;
        // No syslog: the descriptor, as a whole line of its own.
        buf_.insert(0, "postern: ");
    }
    buf_.push_back('\n');
    write_all(out_fd.load(std::memory_order_relaxed), buf_.data(), buf_.size());
}

void line::key(std::string_view k)
{
    if (json_) {
        buf_.push_back(',');
        append_json_string(buf_, k);
        buf_.push_back(':');
    } else {
        buf_.push_back(' ');
        buf_.append(k).push_back('=');
    }
}

line& line::number(std::string_view k, std::string_view digits)
{
    if (buf_.empty())
        return *this;
    key(k);
    buf_.append(digits);
    return *this;
}

line& line::kv(std::string_view k, std::string_view value)
{
    if (buf_.empty())
        return *this;
    key(k);
    if (json_) {
        append_json_string(buf_, value);
        return *this;
    }
    if (!needs_quotes(value)) {
        buf_.append(value);
        return *this;
    }
    buf_.push_back('"');
    for (unsigned char c : value) {
        if (c == '"' || c == '\\') {
            buf_.push_back('\\');
            buf_.push_back(static_cast<char>(c));
        } else if (c < ' ' || c == 0x7f) {
            char esc[8];
            std::snprintf(esc, sizeof esc, "\\x%02x", c);
            buf_.append(esc);
        } else {
            buf_.push_back(static_cast<char>(c));
        }
    }
    buf_.push_back('"');
    return *this;
}

line& line::kv(std::string_view k, std::uint64_t value)
{
    return number(k, std::to_string(value));
}

line& line::kv(std::string_view k, std::int64_t value)
{
    return number(k, std::to_string(value));
}

line& line::kv(std::string_view k, double value)
{
    char b[32];
    std::snprintf(b, sizeof b, "%.3f", value);
    return number(k, b);
}

void exception(std::string_view event, std::exception_ptr e)
{
    if (!e)
        return;
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        error(event).kv("error", x.what());
    } catch (...) {
        error(event).kv("error", "unknown exception");
    }
}

void set_fd(int fd) { out_fd.store(fd); }
void set_verbose(bool on) { verbose.store(on); }
void set_format(format f) { out_format.store(f); }

bool set_syslog(const std::string& path)
{
    auto& s = syslog_out();
    std::lock_guard lk(s.mu);
    if (path.empty()) {
        to_syslog.store(false);
        return true;
    }
    if (s.fd < 0)
        s.fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s.fd < 0)
        return false;
    s.path = path;
    s.connected = false;
    s.connect_now();
    to_syslog.store(true);
    return true;
}

} // namespace postern::log
