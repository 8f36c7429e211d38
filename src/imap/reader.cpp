#include "postern/imap/reader.hpp"

#include <algorithm>
#include <limits>
#include <optional>
#include <utility>

#include "chars.hpp"
#include "postern/util/strings.hpp"

namespace postern::imap {

namespace {

constexpr std::size_t max_marker_digits = 20;
// Enough to hold the longest literal marker, "~{" 20 digits "+}", and the
// octet before it.
constexpr std::size_t tail_keep = 32;

struct marker {
    std::uint64_t n = 0;
    bool sync = true;
};

// RFC 9051 9 literal = "{" number64 ["+"] "}" CRLF; RFC 3516 literal8 =
// "~{" number64 ["+"] "}" CRLF (the "~" needs no checking here: the text
// before "{" is the parser's). A count past 2^64-1 saturates, and so is
// refused as too large; more than 20 digits make no marker.
std::optional<marker> parse_marker(std::string_view line)
{
    if (line.empty() || line.back() != '}')
        return std::nullopt;
    line.remove_suffix(1);
    marker m;
    if (!line.empty() && line.back() == '+') {
        m.sync = false;
        line.remove_suffix(1);
    }
    std::size_t digits = 0;
    while (digits < line.size() && chars::is_digit(line[line.size() - 1 - digits]))
        ++digits;
    // At most 20 digits (2^64 has 20), so that a marker always fits the
    // tail kept of a line being dropped.
    if (digits == 0 || digits > max_marker_digits || digits == line.size() || line[line.size() - 1 - digits] != '{')
        return std::nullopt;
    for (char c : line.substr(line.size() - digits)) {
        const auto d = static_cast<std::uint64_t>(c - '0');
        if (m.n > (std::numeric_limits<std::uint64_t>::max() - d) / 10) {
            m.n = std::numeric_limits<std::uint64_t>::max();
            break;
        }
        m.n = m.n * 10 + d;
    }
    return m;
}

// Refusals echo tags of at most this many octets: longer ones (or ones cut
// by the line limit) get "*", so the answer never depends on how much of
// an over-long line had arrived.
constexpr std::size_t max_echoed_tag = 64;

// The tag of a (first) command line when it has a valid one followed by
// SP, else "*".
std::string tag_of(std::string_view line, std::size_t max_line)
{
    const auto sp = line.find(' ');
    if (sp == std::string_view::npos || sp > std::min(max_echoed_tag, max_line))
        return "*";
    const auto tag = line.substr(0, sp);
    return chars::is_tag(tag) ? std::string(tag) : std::string("*");
}

bool is_append(std::string_view line)
{
    const auto sp = line.find(' ');
    if (sp == std::string_view::npos)
        return false;
    const auto rest = line.substr(sp + 1);
    return util::iequals(rest.substr(0, rest.find(' ')), "APPEND");
}

std::string_view strip_cr(std::string_view line)
{
    if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
    return line;
}

void keep_tail(std::string& tail, std::string_view more)
{
    tail += more;
    if (tail.size() > tail_keep)
        tail.erase(0, tail.size() - tail_keep);
}

} // namespace

reader::reader(reader_limits lim) : lim_(lim) {}

void reader::feed(std::string_view bytes)
{
    bytes_in_ += bytes.size();
    in_.append(bytes);
}

bool reader::mid_command() const noexcept
{
    return started_ || doomed_ || mode_ != mode::line;
}

std::size_t reader::buffered() const noexcept
{
    std::size_t n = in_.size() - pos_ + cmd_.text.size() + ready_.text.size();
    for (const auto& l : cmd_.literals)
        n += l.size();
    for (const auto& l : ready_.literals)
        n += l.size();
    return n;
}

void reader::discard_input()
{
    in_.clear();
    pos_ = 0;
    raw_ = false;
    reset_command();
}

void reader::reset_command()
{
    cmd_ = frame{};
    started_ = false;
    append_ = false;
    literal_total_ = 0;
    doomed_ = false;
    mode_ = mode::line;
    left_ = 0;
    tail_.clear();
}

void reader::compact()
{
    if (pos_ == in_.size()) {
        in_.clear();
        pos_ = 0;
    } else if (pos_ > 4096 && pos_ > in_.size() / 2) {
        in_.erase(0, pos_);
        pos_ = 0;
    }
}

frame reader::take_command()
{
    return std::exchange(ready_, frame{});
}

std::string reader::take_line()
{
    return std::exchange(line_, std::string{});
}

bool reader::is_done(std::string_view line) noexcept
{
    return util::iequals(line, "DONE");
}

void reader::doom(status st, response_code code, std::string_view text, std::string_view first_line)
{
    if (doomed_)
        return; // the first reason stands
    doomed_ = true;
    refusal_ = response{tag_of(cmd_.text.empty() ? first_line : std::string_view(cmd_.text), lim_.max_line), st, code,
                        std::string(text)};
    cmd_ = frame{};
}

read_event reader::next()
{
    for (;;) {
        const std::string_view avail = std::string_view(in_).substr(pos_);
        switch (mode_) {
        case mode::literal:
        case mode::drop_literal: {
            if (left_ > 0) {
                if (avail.empty()) {
                    compact();
                    return read_event::need_input;
                }
                const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(left_, avail.size()));
                if (mode_ == mode::literal)
                    cmd_.literals.back().append(avail.substr(0, n));
                pos_ += n;
                left_ -= n;
            }
            if (left_ == 0)
                mode_ = mode_ == mode::literal ? mode::line : mode::drop_line;
            continue;
        }
        case mode::drop_line: {
            const auto lf = avail.find('\n');
            if (lf == std::string_view::npos) {
                keep_tail(tail_, avail);
                pos_ = in_.size();
                compact();
                return read_event::need_input;
            }
            keep_tail(tail_, avail.substr(0, lf));
            pos_ += lf + 1;
            const std::string line(strip_cr(tail_));
            tail_.clear();
            if (raw_) {
                raw_ = false;
                mode_ = mode::line;
                return read_event::line_too_long;
            }
            read_event ev = read_event::need_input;
            if (end_of_line(line, ev))
                return ev;
            continue;
        }
        case mode::line: {
            const auto lf = avail.find('\n');
            // The text this command may still add (raw lines stand alone).
            const std::size_t room = raw_ ? lim_.max_line : lim_.max_line - std::min(cmd_.text.size(), lim_.max_line);
            if (lf == std::string_view::npos) {
                if (avail.size() > room + 1) { // + 1: a CR whose LF is still to come
                    if (!raw_)
                        doom(status::bad, response_code::toobig, "Command line too long", avail);
                    mode_ = mode::drop_line;
                    tail_.clear();
                    keep_tail(tail_, avail);
                    pos_ = in_.size();
                }
                compact();
                return read_event::need_input;
            }
            const auto line = strip_cr(avail.substr(0, lf));
            pos_ += lf + 1;
            if (raw_) {
                raw_ = false;
                if (line.size() > lim_.max_line)
                    return read_event::line_too_long;
                line_.assign(line);
                return read_event::line;
            }
            if (line.size() > room)
                doom(status::bad, response_code::toobig, "Command line too long", line);
            read_event ev = read_event::need_input;
            if (end_of_line(line, ev))
                return ev;
            continue;
        }
        }
    }
}

// One line of a command has ended (its CRLF consumed). True when an event
// is to be returned.
bool reader::end_of_line(std::string_view line, read_event& ev)
{
    if (!started_) {
        if (line.empty() && !doomed_)
            return false; // a blank line between commands
        started_ = true;
        append_ = is_append(line);
    }
    const auto m = parse_marker(line);
    if (!doomed_)
        cmd_.text += line;
    if (!m) {
        if (doomed_) {
            reset_command();
            ev = read_event::refused;
            return true;
        }
        ready_ = std::exchange(cmd_, frame{});
        reset_command();
        ev = read_event::command;
        return true;
    }
    if (!doomed_ && cmd_.literals.empty() && tag_of(cmd_.text, lim_.max_line) == "*")
        doom(status::bad, response_code::none, "Missing or invalid tag", line); // never "+" for a non-command
    if (!doomed_) {
        const std::uint64_t limit = append_ ? lim_.max_append : lim_.max_literal;
        const std::uint64_t total = append_ ? lim_.max_append + lim_.max_literal : lim_.max_literal;
        if (cmd_.literals.size() >= lim_.max_literals)
            doom(status::bad, response_code::limit, "Too many literals", line);
        else if (!m->sync && m->n > lim_.max_nonsync) // RFC 7888 4
            doom(status::bad, response_code::toobig, "Non-synchronizing literal too large", line);
        else if (m->n > limit || m->n > total - literal_total_)
            doom(append_ ? status::no : status::bad, response_code::toobig,
                 append_ ? "Message too large" : "Literal too large", line);
    }
    if (doomed_) {
        if (m->sync) {
            // RFC 7889 4: refuse without "+", so the client never sends it.
            reset_command();
            ev = read_event::refused;
            return true;
        }
        mode_ = mode::drop_literal;
        left_ = m->n;
        tail_.clear();
        return false;
    }
    cmd_.text += '\n';
    literal_total_ += m->n;
    cmd_.literals.emplace_back();
    cmd_.literals.back().reserve(static_cast<std::size_t>(std::min<std::uint64_t>(m->n, 1U << 20)));
    left_ = m->n;
    mode_ = mode::literal;
    if (m->sync) {
        ev = read_event::continuation; // RFC 9051 7.5
        return true;
    }
    return false;
}

} // namespace postern::imap
