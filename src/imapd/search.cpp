#include "postern/imapd/search.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <limits>
#include <optional>
#include <tuple>

#include "postern/imapd/transfer.hpp"
#include "postern/mime/encoded_word.hpp"
#include "postern/mime/header.hpp"
#include "postern/mime/imap.hpp"
#include "postern/mime/part.hpp"
#include "postern/util/strings.hpp"

namespace postern::imapd {

namespace {

using imap::search_op;

// A calendar day compared as (year, month, day).
using day_tuple = std::tuple<int, int, int>;

constexpr std::array<std::string_view, 12> month_names{"jan", "feb", "mar", "apr", "may", "jun",
                                                       "jul", "aug", "sep", "oct", "nov", "dec"};

// RFC 9051 6.4.4: "case-insensitive substring"; ASCII letters folded (a
// UTF-8 octet is never an ASCII letter, so folding cannot break one).
bool icontains(std::string_view hay, std::string_view needle) noexcept
{
    if (needle.empty())
        return true;
    return std::search(hay.begin(), hay.end(), needle.begin(), needle.end(), [](char a, char b) {
               return util::ascii_lower(a) == util::ascii_lower(b);
           }) != hay.end();
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
bool is_alpha(char c) noexcept { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

// 1..12 for "Jan".."Dec" or a longer spelling ("July"), any case; 0 otherwise.
int month_of(std::string_view word) noexcept
{
    if (word.size() < 3 || !std::all_of(word.begin(), word.end(), is_alpha))
        return 0;
    for (std::size_t i = 0; i < month_names.size(); ++i)
        if (util::iequals(word.substr(0, 3), month_names[i]))
            return static_cast<int>(i) + 1;
    return 0;
}

// The text without RFC 5322 3.2.2 comments (nested, quoted-pairs inside),
// each replaced by a space.
std::string strip_comments(std::string_view s)
{
    std::string out;
    int depth = 0;
    for (std::size_t i = 0; i < s.size(); ++i) {
        const char c = s[i];
        if (depth > 0 && c == '\\') {
            ++i;
        } else if (c == '(') {
            ++depth;
        } else if (c == ')' && depth > 0) {
            if (--depth == 0)
                out += ' ';
        } else if (depth == 0) {
            out += c;
        }
    }
    return out;
}

// The day of a Date: field as written (RFC 5322 3.3 date-time): [day-of-week
// ","] day month year, then time and zone, which SENT* keys ignore (RFC 9051
// 6.4.4) and so need not parse — an obsolete zone (RFC 5322 4.3 "EST", "Z",
// military letters) or none at all is fine. Lenient where senders are:
// comments anywhere, the comma optional, any case, full month names,
// "17-Jul-1996", 2-digit years (00-49 → 20xx, 50-99 → 19xx) and 3-digit ones
// (+1900) per RFC 5322 4.3. nullopt when day, month and year are not there.
std::optional<day_tuple> parse_date_field(std::string_view value)
{
    const std::string s = strip_comments(value);
    std::vector<std::string_view> words;
    const auto separator = [](char c) {
        return c == ' ' || c == '\t' || c == ',' || c == '-' || c == '\r' || c == '\n';
    };
    std::size_t i = 0;
    while (i < s.size() && words.size() < 4) {
        while (i < s.size() && separator(s[i]))
            ++i;
        const auto start = i;
        while (i < s.size() && !separator(s[i]))
            ++i;
        if (i > start)
            words.emplace_back(s.data() + start, i - start);
    }
    std::size_t w = 0;
    if (w < words.size() && !words[w].empty() && is_alpha(words[w].front()) && month_of(words[w]) == 0)
        ++w; // day-of-week (RFC 5322 3.3: optional)
    if (words.size() < w + 3)
        return std::nullopt;
    const auto all_digits = [](std::string_view d) { return !d.empty() && std::all_of(d.begin(), d.end(), is_digit); };
    const auto day_word = words[w];
    const auto year_word = words[w + 2];
    const int month = month_of(words[w + 1]);
    if (!all_digits(day_word) || day_word.size() > 2 || month == 0 || !all_digits(year_word) || year_word.size() < 2 ||
        year_word.size() > 4)
        return std::nullopt;
    const int day = static_cast<int>(util::parse_uint(day_word).value_or(0));
    int year = static_cast<int>(util::parse_uint(year_word).value_or(0));
    if (year_word.size() == 2)
        year += year < 50 ? 2000 : 1900; // RFC 5322 4.3
    else if (year_word.size() == 3)
        year += 1900;
    if (day < 1 || day > 31)
        return std::nullopt;
    return day_tuple{year, month, day};
}

// The UTC day of a time (RFC 9051 6.4.4 BEFORE/ON/SINCE: "disregarding
// time and timezone"; postern's internal dates are UTC).
day_tuple utc_day(std::int64_t seconds_since_epoch)
{
    using namespace std::chrono;
    // Keep the year in year_month_day's range whatever the mtime says.
    constexpr std::int64_t bound = 253402300799; // 9999-12-31 23:59:59
    const auto s = std::clamp<std::int64_t>(seconds_since_epoch, -bound, bound);
    const year_month_day ymd{floor<days>(sys_seconds{seconds{s}})};
    return {static_cast<int>(ymd.year()), static_cast<int>(static_cast<unsigned>(ymd.month())),
            static_cast<int>(static_cast<unsigned>(ymd.day()))};
}

day_tuple key_day(const imap::date& d) { return {d.year, d.month, d.day}; }

// A header field with its value unfolded and its encoded words decoded.
struct decoded_field {
    std::string_view name;
    std::string value;
};

// What the string and date keys look at, computed once per message and
// only when a key asks.
class message_text {
public:
    explicit message_text(std::string_view text) : text_(text) {}

    // The top-level header's fields (RFC 9051 6.4.4 header keys).
    const std::vector<decoded_field>& header()
    {
        if (!header_) {
            header_.emplace();
            for (const auto& f : mime::fields(text_, root().header))
                header_->push_back({mime::slice(text_, f.name), mime::decode_words(mime::slice(text_, f.value))});
        }
        return *header_;
    }

    // BODY: the text/* parts' bodies decoded, one after the other.
    const std::string& body()
    {
        fill_texts();
        return body_;
    }

    // TEXT: the top-level header, the headers of encapsulated messages
    // (message/rfc822 parts), as "Name: value" lines, and body().
    const std::string& nested_headers()
    {
        fill_texts();
        return nested_headers_;
    }

    std::optional<day_tuple> sent_day()
    {
        if (!sent_day_) {
            sent_day_.emplace();
            for (const auto& f : header())
                if (util::iequals(f.name, "Date")) {
                    *sent_day_ = parse_date_field(f.value);
                    break;
                }
        }
        return *sent_day_;
    }

private:
    const mime::part& root()
    {
        if (!root_)
            root_ = mime::parse(text_);
        return *root_;
    }

    void fill_texts()
    {
        if (texts_filled_)
            return;
        texts_filled_ = true;
        add_texts(root());
    }

    void add_texts(const mime::part& p)
    {
        switch (p.kind) {
        case mime::part_kind::multipart:
            for (const auto& child : p.children)
                add_texts(child);
            return;
        case mime::part_kind::message:
            for (const auto& child : p.children) {
                for (const auto& f : mime::fields(text_, child.header)) {
                    nested_headers_ += mime::slice(text_, f.name);
                    nested_headers_ += ": ";
                    nested_headers_ += mime::decode_words(mime::slice(text_, f.value));
                    nested_headers_ += '\n';
                }
                add_texts(child);
            }
            return;
        case mime::part_kind::single:
            break;
        }
        // Leaves: text/* only (a PDF's octets are no text to search).
        if (!p.is_text())
            return;
        const auto raw = mime::slice(text_, p.body);
        auto decoded = decode_transfer(raw, p.encoding);
        std::string octets = decoded ? std::move(*decoded) : std::string(raw);
        const std::string* charset = mime::find_parameter(p.params, "charset");
        if (charset) {
            if (auto utf8 = mime::to_utf8(octets, *charset))
                octets = std::move(*utf8);
        }
        if (!body_.empty())
            body_ += '\n';
        body_ += octets;
    }

    std::string_view text_;
    std::optional<mime::part> root_;
    std::optional<std::vector<decoded_field>> header_;
    bool texts_filled_ = false;
    std::string body_;
    std::string nested_headers_;
    std::optional<std::optional<day_tuple>> sent_day_;
};

// Whether any field called name holds s (HEADER, FROM, ...). An empty s
// matches whenever the field is there (RFC 9051 6.4.4 HEADER).
bool header_has(message_text& t, std::string_view name, std::string_view s)
{
    for (const auto& f : t.header())
        if (util::iequals(f.name, name) && icontains(f.value, s))
            return true;
    return false;
}

bool text_has(message_text& t, std::string_view s)
{
    for (const auto& f : t.header())
        if (icontains(f.name, s) || icontains(f.value, s))
            return true;
    return icontains(t.nested_headers(), s) || icontains(t.body(), s);
}

// RFC 9051 6.4.4 KEYWORD: flag names compare case-insensitively (RFC 9051
// 2.3.2 keywords are atoms; clients differ in case, as Dovecot allows).
bool has_keyword(const mailbox::message_info& info, std::string_view keyword)
{
    return std::any_of(info.keywords.begin(), info.keywords.end(),
                       [keyword](const std::string& k) { return util::iequals(k, keyword); });
}

// n in set, with "*" = star; "$" (RFC 5182 2.1) is the saved UIDs, which
// for sequence keys means the messages with those UIDs.
bool in_set(const imap::sequence_set& set, std::size_t n, std::uint32_t star, std::uint32_t uid,
            const search_context& ctx)
{
    if (set.saved)
        return ctx.saved && std::binary_search(ctx.saved->begin(), ctx.saved->end(), uid);
    if (n > std::numeric_limits<std::uint32_t>::max())
        return false;
    return imap::contains(set, static_cast<std::uint32_t>(n), star);
}

bool matches(const imap::search_key& k, const search_message& m, const mailbox::message_info& info,
             const search_context& ctx, message_text& t)
{
    const auto sent = [&t](auto compare) {
        const auto d = t.sent_day();
        return d && compare(*d);
    };
    switch (k.op) {
    case search_op::all:
        return true;
    case search_op::answered:
        return info.has('R');
    case search_op::deleted:
        return info.has('T');
    case search_op::draft:
        return info.has('D');
    case search_op::flagged:
        return info.has('F');
    case search_op::seen:
        return info.has('S');
    case search_op::unanswered:
        return !info.has('R');
    case search_op::undeleted:
        return !info.has('T');
    case search_op::undraft:
        return !info.has('D');
    case search_op::unflagged:
        return !info.has('F');
    case search_op::unseen:
        return !info.has('S');
    case search_op::keyword:
        return has_keyword(info, k.text);
    case search_op::unkeyword:
        return !has_keyword(info, k.text);
    case search_op::recent:
        return info.recent;
    case search_op::new_: // RFC 3501 6.4.4: RECENT UNSEEN
        return info.recent && !info.has('S');
    case search_op::old: // RFC 3501 6.4.4: NOT RECENT
        return !info.recent;
    case search_op::larger:
        return info.size > k.number;
    case search_op::smaller:
        return info.size < k.number;
    case search_op::before:
        return utc_day(info.internal_date) < key_day(k.day);
    case search_op::on:
        return utc_day(info.internal_date) == key_day(k.day);
    case search_op::since:
        return utc_day(info.internal_date) >= key_day(k.day);
    case search_op::sentbefore:
        return sent([&k](const day_tuple& d) { return d < key_day(k.day); });
    case search_op::senton:
        return sent([&k](const day_tuple& d) { return d == key_day(k.day); });
    case search_op::sentsince:
        return sent([&k](const day_tuple& d) { return d >= key_day(k.day); });
    case search_op::bcc:
        return header_has(t, "Bcc", k.text);
    case search_op::cc:
        return header_has(t, "Cc", k.text);
    case search_op::from:
        return header_has(t, "From", k.text);
    case search_op::to:
        return header_has(t, "To", k.text);
    case search_op::subject:
        return header_has(t, "Subject", k.text);
    case search_op::header:
        return header_has(t, k.field, k.text);
    case search_op::body:
        return icontains(t.body(), k.text);
    case search_op::text:
        return text_has(t, k.text);
    case search_op::uid:
        return in_set(k.set, info.uid, ctx.max_uid, info.uid, ctx);
    case search_op::sequence:
        return in_set(k.set, m.seq, ctx.max_seq, info.uid, ctx);
    case search_op::not_: // one child; a malformed key without one negates ALL
        return !std::all_of(k.children.begin(), k.children.end(),
                            [&](const imap::search_key& c) { return matches(c, m, info, ctx, t); });
    case search_op::or_:
        return std::any_of(k.children.begin(), k.children.end(),
                           [&](const imap::search_key& c) { return matches(c, m, info, ctx, t); });
    case search_op::list:
        return std::all_of(k.children.begin(), k.children.end(),
                           [&](const imap::search_key& c) { return matches(c, m, info, ctx, t); });
    case search_op::modseq:
        return false; // no CONDSTORE: no message has a mod-sequence
    }
    return false;
}

bool wants(const imap::search_args& args, imap::search_return r) noexcept
{
    return std::find(args.returns.begin(), args.returns.end(), r) != args.returns.end();
}

} // namespace

bool search_needs_text(const imap::search_key& program) noexcept
{
    switch (program.op) {
    case search_op::bcc:
    case search_op::body:
    case search_op::cc:
    case search_op::from:
    case search_op::header:
    case search_op::sentbefore:
    case search_op::senton:
    case search_op::sentsince:
    case search_op::subject:
    case search_op::text:
    case search_op::to:
        return true;
    case search_op::not_:
    case search_op::or_:
    case search_op::list:
        return std::any_of(program.children.begin(), program.children.end(),
                           [](const imap::search_key& c) { return search_needs_text(c); });
    case search_op::all:
    case search_op::answered:
    case search_op::before:
    case search_op::deleted:
    case search_op::draft:
    case search_op::flagged:
    case search_op::keyword:
    case search_op::larger:
    case search_op::new_:
    case search_op::old:
    case search_op::on:
    case search_op::recent:
    case search_op::seen:
    case search_op::since:
    case search_op::smaller:
    case search_op::uid:
    case search_op::unanswered:
    case search_op::undeleted:
    case search_op::undraft:
    case search_op::unflagged:
    case search_op::unkeyword:
    case search_op::unseen:
    case search_op::sequence:
    case search_op::modseq:
        return false;
    }
    return false;
}

bool search_matches(const imap::search_key& program, const search_message& m, const search_context& ctx)
{
    static const mailbox::message_info no_info;
    message_text t(m.text);
    return matches(program, m, m.info ? *m.info : no_info, ctx, t);
}

bool search_charset_supported(std::string_view charset) noexcept
{
    return charset.empty() || util::iequals(charset, "UTF-8") || util::iequals(charset, "US-ASCII");
}

std::string search_response(std::string_view tag, const imap::search_args& args, bool uid,
                            std::span<const std::uint32_t> numbers)
{
    using imap::search_return;
    if (!args.esearch) {
        // RFC 9051 7.3.4 / RFC 3501 7.2.5.
        std::string out = "* SEARCH";
        for (const auto n : numbers) {
            out += ' ';
            out += std::to_string(n);
        }
        out += "\r\n";
        return out;
    }
    const bool all = args.returns.empty() || wants(args, search_return::all); // RFC 4731 3.1: "()" is ALL
    const bool min = wants(args, search_return::min);
    const bool max = wants(args, search_return::max);
    const bool count = wants(args, search_return::count);
    if (!all && !min && !max && !count)
        return {}; // RFC 5182 2.4: SAVE alone answers with no ESEARCH
    std::string out = "* ESEARCH (TAG " + mime::imap_string(tag) + ")";
    if (uid)
        out += " UID";
    if (min && !numbers.empty())
        out += " MIN " + std::to_string(numbers.front());
    if (max && !numbers.empty())
        out += " MAX " + std::to_string(numbers.back());
    if (count)
        out += " COUNT " + std::to_string(numbers.size());
    if (all && !numbers.empty())
        out += " ALL " + compact_set(numbers);
    out += "\r\n";
    return out;
}

std::vector<std::uint32_t> saved_result(const imap::search_args& args, std::span<const std::uint32_t> uids)
{
    using imap::search_return;
    if (!args.esearch || !wants(args, search_return::save))
        return {};
    const bool whole = wants(args, search_return::all) || wants(args, search_return::count);
    const bool min = wants(args, search_return::min);
    const bool max = wants(args, search_return::max);
    if (whole || (!min && !max) || uids.empty())
        return {uids.begin(), uids.end()};
    std::vector<std::uint32_t> out;
    if (min)
        out.push_back(uids.front());
    if (max && (out.empty() || out.back() != uids.back()))
        out.push_back(uids.back());
    return out;
}

std::string compact_set(std::span<const std::uint32_t> ascending)
{
    std::string out;
    std::size_t i = 0;
    while (i < ascending.size()) {
        const auto first = ascending[i];
        auto last = first;
        // Runs of consecutive numbers (duplicates folded in) become "a:b".
        while (i + 1 < ascending.size() && (ascending[i + 1] == last || ascending[i + 1] == last + 1))
            last = ascending[++i];
        ++i;
        if (!out.empty())
            out += ',';
        out += std::to_string(first);
        if (last != first) {
            out += ':';
            out += std::to_string(last);
        }
    }
    return out;
}

} // namespace postern::imapd
