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
std::atomic<format> out_format{format::text};

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
    json_ = out_format.load(std::memory_order_relaxed) == format::json;
    char head[128];
    int n = json_ ? std::snprintf(head, sizeof head,
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

} // namespace postern::log
