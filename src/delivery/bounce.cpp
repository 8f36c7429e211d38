#include "postern/delivery/bounce.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdio>
#include <set>
#include <string>
#include <string_view>

#include "postern/util/clock.hpp"

namespace postern::delivery {

namespace {

// Longest line we write, CRLF excluded: below RFC 5322's 998 with room to spare.
constexpr std::size_t max_line = 990;
// Preferred width of folded fields and wrapped text.
constexpr std::size_t soft_width = 76;
// A peer's diagnostic is cut here (a multi-line reply joined on one field).
constexpr std::size_t max_diagnostic = 4096;
constexpr std::size_t max_field_token = 512;

enum class report_kind { failure, delay, success };

struct kind_text {
    std::string_view subject;
    std::string_view part3_headers;
    std::string_view part3_full;
};
// Indexed by report_kind.
constexpr std::array<kind_text, 3> kind_texts{{
    {"Undelivered Mail Returned to Sender", "Undelivered Message Headers", "Undelivered Message"},
    {"Delayed Mail (still being retried)", "Delayed Message Headers", "Delayed Message"},
    {"Successful Mail Delivery Report", "Delivered Message Headers", "Delivered Message"},
}};

// What the human-readable part says about one recipient.
std::string_view action_phrase(dsn_action a)
{
    switch (a) {
    case dsn_action::failed: return "delivery failed";
    case dsn_action::delayed: return "delivery delayed, still being retried";
    case dsn_action::delivered: return "delivered";
    case dsn_action::relayed: return "relayed to a system that sends no further notices";
    case dsn_action::expanded: return "delivered, and forwarded to further recipients";
    }
    return "delivery failed";
}

char status_class(dsn_action a)
{
    switch (a) {
    case dsn_action::failed: return '5';
    case dsn_action::delayed: return '4';
    case dsn_action::delivered:
    case dsn_action::relayed:
    case dsn_action::expanded: return '2';
    }
    return '5';
}

report_kind kind_of(const std::vector<dsn_recipient>& rs)
{
    auto has = [&](dsn_action a) {
        return std::any_of(rs.begin(), rs.end(), [a](const dsn_recipient& r) { return r.action == a; });
    };
    if (has(dsn_action::failed))
        return report_kind::failure;
    if (has(dsn_action::delayed))
        return report_kind::delay;
    return report_kind::success;
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_alnum(char c) noexcept
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_high(char c) noexcept { return static_cast<unsigned char>(c) >= 0x80; }
bool is_ctl(char c) noexcept
{
    auto u = static_cast<unsigned char>(c);
    return u < 0x20 || u == 0x7f;
}

// Peer text → one line of printable ASCII: controls (CR, LF, TAB, NUL...)
// become spaces, runs of blanks collapse, octets >= 0x80 become '?', and the
// result is cut at cap octets.
std::string clean_text(std::string_view s, std::size_t cap)
{
    std::string out;
    out.reserve(std::min(s.size(), cap));
    bool blank = true; // drops leading blanks too
    for (char c : s) {
        if (is_ctl(c) || c == ' ') {
            if (!blank)
                out += ' ';
            blank = true;
            continue;
        }
        if (out.size() >= cap) {
            out += "...";
            return out;
        }
        out += is_high(c) ? '?' : c;
        blank = false;
    }
    while (!out.empty() && out.back() == ' ')
        out.pop_back();
    return out;
}

// Only the characters of a host name or address literal (for Reporting-MTA,
// MAILER-DAEMON@host and Message-ID).
std::string clean_host(std::string_view s)
{
    std::string out;
    for (char c : s)
        if ((is_alnum(c) || c == '.' || c == '-' || c == '[' || c == ']' || c == ':' || c == '_')
            && out.size() < 255)
            out += c;
    return out.empty() ? std::string("localhost") : out;
}

// Drops controls only (keeps UTF-8): for the To: header (RFC 6532).
std::string strip_ctl(std::string_view s, std::size_t cap)
{
    std::string out;
    for (char c : s)
        if (!is_ctl(c) && out.size() < cap)
            out += c;
    return out;
}

bool is_ascii(std::string_view s) noexcept
{
    return std::none_of(s.begin(), s.end(), is_high);
}

// Next code point of UTF-8 text at i, advancing i; U+FFFD for a malformed or
// overlong sequence (one octet consumed).
char32_t next_code_point(std::string_view s, std::size_t& i)
{
    auto b0 = static_cast<unsigned char>(s[i]);
    std::size_t len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xe ? 3 : (b0 >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > s.size()) {
        ++i;
        return 0xfffd;
    }
    char32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1fu) : len == 3 ? (b0 & 0x0fu) : (b0 & 0x07u);
    for (std::size_t k = 1; k < len; ++k) {
        auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xc0) != 0x80) {
            ++i;
            return 0xfffd;
        }
        cp = (cp << 6) | (b & 0x3fu);
    }
    static constexpr char32_t min_for_len[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_len[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        ++i;
        return 0xfffd;
    }
    i += len;
    return cp;
}

// RFC 6533 3, utf-8-addr-xtext: QCHAR stays, everything else is "\x{HEX}"
// (two digits below U+0100, else the shortest form). Controls are dropped.
std::string utf8_addr_xtext(std::string_view s)
{
    std::string out;
    for (std::size_t i = 0; i < s.size() && out.size() < max_field_token;) {
        char32_t cp = next_code_point(s, i);
        if (cp < 0x20 || cp == 0x7f)
            continue;
        if (cp < 0x7f && cp != ' ' && cp != '\\' && cp != '+' && cp != '=') {
            out += static_cast<char>(cp);
            continue;
        }
        char buf[16];
        std::snprintf(buf, sizeof buf, cp < 0x100 ? "\\x{%02X}" : "\\x{%X}",
                      static_cast<unsigned>(cp));
        out += buf;
    }
    return out;
}

// "rfc822;x" / "utf-8;x": the text before ';' is an atom naming the type.
bool has_address_type(std::string_view s) noexcept
{
    auto semi = s.find(';');
    if (semi == 0 || semi == std::string_view::npos || semi > 32)
        return false;
    return std::all_of(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(semi),
                       [](char c) { return is_alnum(c) || c == '-' || c == '.' || c == '_'; });
}

// An address as a delivery-status field value (RFC 3464 2.3.1/2.3.2, RFC 6533).
std::string typed_address(std::string_view addr)
{
    if (has_address_type(addr)) {
        auto semi = addr.find(';');
        auto type = addr.substr(0, semi);
        auto rest = addr.substr(semi + 1);
        while (!rest.empty() && rest.front() == ' ')
            rest.remove_prefix(1);
        if (is_ascii(rest))
            return std::string(type) + "; " + clean_text(rest, max_field_token);
        return "utf-8; " + utf8_addr_xtext(rest);
    }
    if (is_ascii(addr))
        return "rfc822; " + clean_text(addr, max_field_token);
    return "utf-8; " + utf8_addr_xtext(addr);
}

// An address for the ASCII text part.
std::string display_address(std::string_view addr)
{
    return is_ascii(addr) ? clean_text(addr, max_field_token) : utf8_addr_xtext(addr);
}

// Where a split of s before pos does not cut a UTF-8 sequence (when one can).
std::size_t utf8_split(std::string_view s, std::size_t pos)
{
    std::size_t p = pos;
    while (p > 0 && pos - p < 3 && (static_cast<unsigned char>(s[p]) & 0xc0) == 0x80)
        --p;
    return p == 0 ? pos : p;
}

// "Name: value" folded at blanks near soft_width, long words cut (with a
// folding blank) before max_line. value holds no controls.
std::string field(std::string_view name, std::string_view value)
{
    std::string out(name);
    out += ':';
    std::size_t col = out.size();
    std::size_t i = 0;
    while (i < value.size()) {
        auto j = value.find(' ', i);
        if (j == std::string_view::npos)
            j = value.size();
        auto word = value.substr(i, j - i);
        i = j + 1;
        if (word.empty())
            continue;
        if (col + 1 + word.size() > soft_width && col > 1 && col > name.size() + 1) {
            out += "\r\n";
            col = 0;
        }
        out += ' ';
        ++col;
        while (col + word.size() > max_line) {
            auto take = utf8_split(word, max_line - col);
            out += word.substr(0, take);
            out += "\r\n ";
            col = 1;
            word.remove_prefix(take);
        }
        out += word;
        col += word.size();
    }
    out += "\r\n";
    return out;
}

// Plain text (no controls) wrapped at soft_width; the first line starts with
// first, the others with indent.
std::string wrap(std::string_view text, std::string_view first = "", std::string_view indent = "")
{
    std::string out(first);
    std::size_t col = first.size();
    std::size_t i = 0;
    bool line_empty = true;
    while (i < text.size()) {
        auto j = text.find(' ', i);
        if (j == std::string_view::npos)
            j = text.size();
        auto word = text.substr(i, j - i);
        i = j + 1;
        if (word.empty())
            continue;
        if (!line_empty && col + 1 + word.size() > soft_width) {
            out += "\r\n";
            out += indent;
            col = indent.size();
            line_empty = true;
        }
        if (!line_empty) {
            out += ' ';
            ++col;
        }
        while (col + word.size() > soft_width && word.size() > soft_width - indent.size()) {
            auto take = utf8_split(word, soft_width - col);
            out += word.substr(0, take);
            out += "\r\n";
            out += indent;
            col = indent.size();
            word.remove_prefix(take);
        }
        out += word;
        col += word.size();
        line_empty = false;
    }
    out += "\r\n";
    return out;
}

// A status code "c.sss.ddd" (RFC 3463 2) with class 2, 4 or 5.
bool is_status(std::string_view s) noexcept
{
    if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return false;
    std::size_t i = 2;
    for (int part = 0; part < 2; ++part) {
        std::size_t n = 0;
        while (i < s.size() && is_digit(s[i]) && n < 4) {
            ++i;
            ++n;
        }
        if (n == 0 || n > 3)
            return false;
        if (part == 0) {
            if (i >= s.size() || s[i] != '.')
                return false;
            ++i;
        }
    }
    return i == s.size();
}

// "550 5.1.1 text" / "550-5.1.1 text": an SMTP reply, possibly with an
// enhanced code.
bool is_smtp_reply(std::string_view d) noexcept
{
    return d.size() >= 3 && d[0] >= '2' && d[0] <= '5' && is_digit(d[1]) && is_digit(d[2])
           && (d.size() == 3 || d[3] == ' ' || d[3] == '-');
}

// A valid given status wins (expiry is "failed" with 4.4.7, RFC 3463 3.5),
// then the reply's enhanced code, then the bare class of the action.
std::string status_of(const dsn_recipient& r, std::string_view diagnostic)
{
    if (auto given = clean_text(r.status, 16); is_status(given))
        return given;
    if (is_smtp_reply(diagnostic) && diagnostic.size() > 4) {
        auto rest = diagnostic.substr(4);
        auto code = rest.substr(0, rest.find(' '));
        if (is_status(code) && code[0] == diagnostic[0])
            return std::string(code);
    }
    return std::string(1, status_class(r.action)) + ".0.0";
}

std::string remote_mta_of(std::string_view given)
{
    auto v = clean_text(given, max_field_token);
    if (v.empty() || has_address_type(v))
        return v;
    return "dns; " + v;
}

std::string date(std::int64_t unix_s)
{
    return util::rfc5322_date(util::from_unix_seconds(unix_s));
}

// The copy of the original in part 3: lines normalised to CRLF (bare LF ends
// a line, bare CR and NUL are dropped), lines over max_line folded (header
// section) or broken (body). headers_only stops at the first empty line and
// keeps at most limit octets, cut at a line boundary.
struct original_copy {
    std::string text;
    bool truncated = false;
};

original_copy copy_original(std::string_view msg, bool headers_only, std::size_t limit)
{
    original_copy out;
    out.text.reserve(headers_only ? std::min(msg.size(), limit) : msg.size() + msg.size() / 32);
    bool in_headers = true;
    std::string line;
    std::string physical;
    // Returns false once the copy is complete.
    auto emit = [&]() -> bool {
        if (in_headers && line.empty()) {
            if (headers_only)
                return false;
            in_headers = false;
            out.text += "\r\n";
            return true;
        }
        physical.clear();
        std::string_view rest(line);
        while (rest.size() > max_line) {
            auto take = utf8_split(rest, in_headers ? max_line - 1 : max_line);
            physical.append(rest.substr(0, take));
            // A header line continues as a folded line; a body line just breaks.
            physical += in_headers ? "\r\n " : "\r\n";
            rest.remove_prefix(take);
        }
        physical.append(rest);
        physical += "\r\n";
        if (headers_only && out.text.size() + physical.size() > limit) {
            out.truncated = true;
            return false;
        }
        out.text += physical;
        return true;
    };
    bool open = false; // a line has started and not yet ended
    for (std::size_t i = 0; i < msg.size(); ++i) {
        char c = msg[i];
        if (c == '\0')
            continue;
        if (c == '\r') {
            if (i + 1 < msg.size() && msg[i + 1] == '\n') {
                ++i;
            } else {
                continue; // bare CR: dropped
            }
            c = '\n';
        }
        if (c == '\n') {
            if (!emit())
                return out;
            line.clear();
            open = false;
            continue;
        }
        line += c;
        open = true;
        if (headers_only && line.size() > limit) { // cannot fit: stop early
            out.truncated = true;
            return out;
        }
    }
    if (open)
        emit();
    return out;
}

// A boundary that occurs nowhere in body: "=_postern-<id>-<n>.", with the
// smallest n whose candidate is absent. One pass collects every n that occurs
// after the prefix, so the choice is linear in the body, not a retry loop.
// ("=_" never occurs in base64 or quoted-printable; the trailing '.' keeps
// "...-1." from matching inside "...-12.".)
std::string choose_boundary(std::string_view id, std::string_view body)
{
    std::string prefix = "=_postern-";
    for (char c : id)
        if (is_alnum(c) && prefix.size() < 50)
            prefix += c;
    prefix += '-';
    std::set<std::string, std::less<>> used;
    for (auto pos = body.find(prefix); pos != std::string_view::npos;
         pos = body.find(prefix, pos + 1)) {
        auto k = pos + prefix.size();
        auto start = k;
        while (k < body.size() && is_digit(body[k]) && k - start < 12)
            ++k;
        if (k > start && k < body.size() && body[k] == '.')
            used.emplace(body.substr(start, k - start));
    }
    // At most used.size() candidates are taken, so this ends by used.size() + 1.
    for (std::size_t n = 0;; ++n) {
        auto digits = std::to_string(n);
        if (used.find(digits) == used.end())
            return prefix + digits + ".";
    }
}

std::string human_part(const bounce_input& in, report_kind kind, std::string_view host,
                       util::time_point now, bool headers_fallback, bool truncated)
{
    std::string t;
    t += wrap("This is the mail system at host " + std::string(host) + ".", "");
    t += "\r\n";
    switch (kind) {
    case report_kind::failure:
        t += wrap("Your message could not be delivered to one or more of its recipients. "
                  "The reasons are given below; the message will not be retried.",
                  "");
        break;
    case report_kind::delay: {
        std::string s = "This is a delivery status notification, NOT an error. Your message "
                        "could not be delivered yet to one or more of its recipients";
        if (in.arrival_date > 0) {
            auto hours = (util::unix_seconds(now) - in.arrival_date) / 3600;
            if (hours > 0)
                s += " after " + std::to_string(hours) + (hours == 1 ? " hour" : " hours");
        }
        s += ". It is still being retried; you do not need to send it again.";
        t += wrap(s, "");
        break;
    }
    case report_kind::success:
        t += wrap("Your message was delivered to the recipients below, as you asked to be "
                  "notified. This is not an error.",
                  "");
        break;
    }
    t += "\r\n";
    if (kind == report_kind::failure)
        t += wrap("For further assistance, please send mail to postmaster, including this "
                  "report.",
                  "") + "\r\n";
    for (const auto& r : in.recipients) {
        t += wrap("<" + display_address(r.final_recipient) + ">: " + std::string(action_phrase(r.action)),
                  "", "    ");
        auto mta = clean_text(r.remote_mta, max_field_token);
        if (auto semi = mta.find(';'); semi != std::string::npos && has_address_type(mta))
            mta = clean_text(mta.substr(semi + 1), max_field_token);
        auto diag = clean_text(r.diagnostic, max_diagnostic);
        if (!diag.empty())
            t += wrap((mta.empty() ? std::string("reason") : "host " + mta + " said") + ": " + diag,
                      "    ", "    ");
        else if (!mta.empty())
            t += wrap("remote host: " + mta, "    ", "    ");
        if (r.action == dsn_action::delayed && r.will_retry_until > 0)
            t += wrap("will be retried until " + date(r.will_retry_until), "    ", "    ");
    }
    t += "\r\n";
    if (headers_fallback)
        t += wrap("The message is too large to be returned in full; its headers are attached.", "");
    else if (truncated)
        t += wrap("The headers of the message are too long; only their beginning is attached.", "");
    else if (in.return_full)
        t += wrap("The message is attached.", "");
    else
        t += wrap("The headers of the message are attached.", "");
    return t;
}

std::string status_part(const bounce_input& in, std::string_view host)
{
    std::string s;
    s += field("Reporting-MTA", "dns; " + std::string(host));
    if (auto id = clean_text(in.original_id, max_field_token); !id.empty())
        s += field("X-Postern-Queue-ID", id);
    s += field("X-Postern-Sender", typed_address(in.original_sender));
    if (auto envid = clean_text(in.envid, max_field_token); !envid.empty())
        s += field("Original-Envelope-Id", envid);
    if (in.arrival_date > 0)
        s += field("Arrival-Date", date(in.arrival_date));
    for (const auto& r : in.recipients) {
        s += "\r\n";
        if (!r.original_recipient.empty())
            s += field("Original-Recipient", typed_address(r.original_recipient));
        s += field("Final-Recipient", typed_address(r.final_recipient));
        s += field("Action", action_name(r.action));
        auto diag = clean_text(r.diagnostic, max_diagnostic);
        s += field("Status", status_of(r, diag));
        if (auto mta = remote_mta_of(r.remote_mta); !mta.empty())
            s += field("Remote-MTA", mta);
        if (!diag.empty())
            s += field("Diagnostic-Code", (is_smtp_reply(diag) ? "smtp; " : "x-postern; ") + diag);
        if (r.last_attempt > 0)
            s += field("Last-Attempt-Date", date(r.last_attempt));
        if (r.action == dsn_action::delayed && r.will_retry_until > 0)
            s += field("Will-Retry-Until", date(r.will_retry_until));
    }
    return s;
}

} // namespace

std::string_view action_name(dsn_action a)
{
    switch (a) {
    case dsn_action::failed: return "failed";
    case dsn_action::delayed: return "delayed";
    case dsn_action::delivered: return "delivered";
    case dsn_action::relayed: return "relayed";
    case dsn_action::expanded: return "expanded";
    }
    return "failed";
}


bool dsn_is_eight_bit(std::string_view report) noexcept
{
    return !is_ascii(report);
}

std::optional<std::string> build_dsn(const bounce_input& in, util::time_point now,
                                     std::string_view message_id_unique)
{
    auto sender = strip_ctl(in.original_sender, 1024);
    if (sender.size() >= 2 && sender.front() == '<' && sender.back() == '>')
        sender = sender.substr(1, sender.size() - 2);
    if (sender.empty() || in.recipients.empty())
        return std::nullopt;

    const auto kind = kind_of(in.recipients);
    const auto& texts = kind_texts[static_cast<std::size_t>(kind)];
    const auto host = clean_host(in.reporting_mta);

    const bool want_full = in.return_full && in.original_message.size() <= in.return_limit;
    const bool headers_fallback = in.return_full && !want_full;
    auto copy = copy_original(in.original_message, !want_full, in.header_limit);

    auto part1 = human_part(in, kind, host, now, headers_fallback, copy.truncated);
    auto part2 = status_part(in, host);
    const bool eight_bit = !is_ascii(copy.text);

    std::string unique;
    for (char c : message_id_unique)
        if ((is_alnum(c) || c == '.' || c == '-' || c == '_') && unique.size() < 64)
            unique += c;
    if (unique.empty())
        unique = "dsn." + std::to_string(util::unix_seconds(now));

    std::string part3_head;
    part3_head += field("Content-Description",
                        want_full ? texts.part3_full : texts.part3_headers);
    part3_head += field("Content-Type", want_full ? "message/rfc822" : "text/rfc822-headers");
    if (eight_bit)
        part3_head += field("Content-Transfer-Encoding", "8bit");

    // The boundary is checked against every octet between the delimiters.
    std::string all;
    all.reserve(part1.size() + part2.size() + part3_head.size() + copy.text.size() + 256);
    all += part1;
    all += part2;
    all += part3_head;
    all += copy.text;
    const auto boundary = choose_boundary(unique, all);
    all.clear();
    all.shrink_to_fit();

    std::string m;
    m.reserve(part1.size() + part2.size() + copy.text.size() + 2048);
    m += field("Date", util::rfc5322_date(now));
    m += field("From", "Mail Delivery System <MAILER-DAEMON@" + host + ">");
    m += field("To", "<" + sender + ">");
    m += field("Subject", texts.subject);
    m += field("Message-ID", "<" + unique + "@" + host + ">");
    m += field("Auto-Submitted", "auto-replied");
    m += field("MIME-Version", "1.0");
    m += field("Content-Type",
               "multipart/report; report-type=delivery-status; boundary=\"" + boundary + "\"");
    if (eight_bit)
        m += field("Content-Transfer-Encoding", "8bit");
    m += "\r\n";
    m += "This is a MIME-encapsulated message.\r\n";

    m += "\r\n--" + boundary + "\r\n";
    m += field("Content-Description", "Notification");
    m += field("Content-Type", "text/plain; charset=us-ascii");
    m += "\r\n";
    m += part1;

    m += "\r\n--" + boundary + "\r\n";
    m += field("Content-Description", "Delivery report");
    m += field("Content-Type", "message/delivery-status");
    m += "\r\n";
    m += part2;

    m += "\r\n--" + boundary + "\r\n";
    m += part3_head;
    m += "\r\n";
    m += copy.text;

    m += "\r\n--" + boundary + "--\r\n";
    return m;
}

} // namespace postern::delivery
