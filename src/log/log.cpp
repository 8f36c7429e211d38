#include "postern/log/log.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <unistd.h>

namespace postern::log {

namespace {

std::atomic<int> out_fd{2};
std::atomic<bool> verbose{true};

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

} // namespace

line::line(severity s, std::string_view event)
{
    if (s == severity::info && !verbose.load(std::memory_order_relaxed))
        return;
    using namespace std::chrono;
    auto now = system_clock::now();
    std::time_t tt = system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    char head[96];
    int n = std::snprintf(head, sizeof head, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ postern[%d]: ",
                          tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                          tm.tm_sec, static_cast<int>(ms), static_cast<int>(::getpid()));
    buf_.reserve(256);
    buf_.append(head, static_cast<std::size_t>(n));
    buf_.append("severity=").append(name(s)).append(" event=").append(event);
}

line::~line()
{
    if (buf_.empty())
        return;
    buf_.push_back('\n');
    const char* p = buf_.data();
    std::size_t left = buf_.size();
    while (left > 0) {
        ssize_t w = ::write(out_fd.load(std::memory_order_relaxed), p, left);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; // logging must never take the process down
        p += w;
        left -= static_cast<std::size_t>(w);
    }
}

line& line::kv(std::string_view key, std::string_view value)
{
    if (buf_.empty())
        return *this;
    buf_.push_back(' ');
    buf_.append(key).push_back('=');
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

line& line::kv(std::string_view key, std::uint64_t value)
{
    return kv(key, std::string_view(std::to_string(value)));
}

line& line::kv(std::string_view key, std::int64_t value)
{
    return kv(key, std::string_view(std::to_string(value)));
}

line& line::kv(std::string_view key, double value)
{
    char b[32];
    std::snprintf(b, sizeof b, "%.3f", value);
    return kv(key, std::string_view(b));
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

} // namespace postern::log
