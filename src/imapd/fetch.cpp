#include "postern/imapd/fetch.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <optional>

#include "postern/imapd/transfer.hpp"
#include "postern/mime/imap.hpp"
#include "postern/mime/part.hpp"
#include "postern/mime/section.hpp"

namespace postern::imapd {

namespace {

using imap::fetch_attr;

// RFC 9051 9 date-month.
constexpr std::array<std::string_view, 12> month_names{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// The 4DIGIT years of RFC 9051 9 date-year: 1970-01-01 .. 9999-12-31.
constexpr std::int64_t last_second = 253402300799; // 9999-12-31 23:59:59 UTC

// The message's MIME tree, parsed on first use only: FLAGS, UID,
// INTERNALDATE, RFC822.SIZE and RFC822 never need it.
class lazy_tree {
public:
    explicit lazy_tree(std::string_view text) : text_(text) {}
    const mime::part& root()
    {
        if (!root_)
            root_ = mime::parse(text_);
        return *root_;
    }

private:
    std::string_view text_;
    std::optional<mime::part> root_;
};

// RFC 9051 6.4.5 partial: the octets from origin, at most count of them; ""
// when origin lies at or past the end.
std::string_view apply_partial(std::string_view bytes, const std::optional<imap::partial>& r) noexcept
{
    if (!r)
        return bytes;
    if (r->origin >= bytes.size())
        return {};
    const auto rest = bytes.size() - static_cast<std::size_t>(r->origin);
    return bytes.substr(static_cast<std::size_t>(r->origin),
                        static_cast<std::size_t>(std::min<std::uint64_t>(r->count, rest)));
}

// The item's name as the response gives it, with "<origin>" after a
// partial section (RFC 9051 7.5.2: "BODY[<section>]<<origin octet>>").
void append_name(std::string& out, const imap::fetch_item& item)
{
    out += item.name;
    if (item.range) {
        out += '<';
        out += std::to_string(item.range->origin);
        out += '>';
    }
}

// RFC 3516 4.2 / 9 literal8 "~{n}" only when the octets hold a NUL, which
// a literal cannot carry (RFC 9051 4.3); otherwise a plain literal, so the
// client gets the exact decoded octets whatever they are.
void append_binary_literal(std::string& out, std::string_view bytes)
{
    if (bytes.find('\0') != std::string_view::npos)
        out += '~';
    out += '{';
    out += std::to_string(bytes.size());
    out += "}\r\n";
    out += bytes;
}

// The BINARY content of section s (RFC 3516 4.2): the part's body with its
// Content-Transfer-Encoding undone. An empty part list is the whole
// message as stored (no single encoding applies to it). A part that does
// not exist gives "" (as BODY[section] does, RFC 9051 6.4.5). An encoding
// not known gives the octets as stored: RFC 3516 4.3 wants a tagged
// NO [UNKNOWN-CTE], which one FETCH response cannot say (the executor may
// check mime::part::encoding itself to refuse instead).
std::string binary_content(std::string_view text, const mime::part& root, const mime::section& s)
{
    if (s.part.empty())
        return std::string(mime::slice(text, root.whole));
    const mime::part* p = mime::find_part(root, s.part);
    if (!p)
        return {};
    const auto body = mime::slice(text, p->body);
    if (auto decoded = decode_transfer(body, p->encoding))
        return std::move(*decoded);
    return std::string(body);
}

// The octets of RFC822.HEADER and RFC822.TEXT (RFC 3501 6.4.5: they are
// BODY.PEEK[HEADER] and BODY[TEXT]; RFC822 is BODY[], the text itself).
std::string section_content(std::string_view text, lazy_tree& tree, mime::section_text t)
{
    mime::section s;
    s.text = t;
    return mime::section_bytes(text, tree.root(), s);
}

void append_item(std::string& out, const mailbox::message_info& m, std::string_view text, lazy_tree& tree,
                 const imap::fetch_item& item)
{
    switch (item.attr) {
    case fetch_attr::envelope:
        out += "ENVELOPE ";
        out += mime::envelope(text, tree.root());
        return;
    case fetch_attr::flags:
        out += "FLAGS ";
        out += flag_list(m);
        return;
    case fetch_attr::internaldate:
        out += "INTERNALDATE ";
        out += internal_date(m.internal_date);
        return;
    case fetch_attr::rfc822:
        out += "RFC822 ";
        out += mime::imap_string(text);
        return;
    case fetch_attr::rfc822_header:
        out += "RFC822.HEADER ";
        out += mime::imap_string(section_content(text, tree, mime::section_text::header));
        return;
    case fetch_attr::rfc822_size:
        out += "RFC822.SIZE ";
        out += std::to_string(m.size);
        return;
    case fetch_attr::rfc822_text:
        out += "RFC822.TEXT ";
        out += mime::imap_string(section_content(text, tree, mime::section_text::text));
        return;
    case fetch_attr::body:
        out += "BODY ";
        out += mime::bodystructure(text, tree.root(), false);
        return;
    case fetch_attr::bodystructure:
        out += "BODYSTRUCTURE ";
        out += mime::bodystructure(text, tree.root(), true);
        return;
    case fetch_attr::uid:
        out += "UID ";
        out += std::to_string(m.uid);
        return;
    case fetch_attr::body_section: {
        append_name(out, item);
        out += ' ';
        // BODY[] is the text itself: no tree, no copy of a large message.
        std::string section;
        std::string_view bytes = text;
        if (!item.section.part.empty() || item.section.text != mime::section_text::none) {
            section = mime::section_bytes(text, tree.root(), item.section);
            bytes = section;
        }
        out += mime::imap_string(apply_partial(bytes, item.range));
        return;
    }
    case fetch_attr::binary:
        append_name(out, item);
        out += ' ';
        append_binary_literal(out, apply_partial(binary_content(text, tree.root(), item.section), item.range));
        return;
    case fetch_attr::binary_size:
        out += item.name;
        out += ' ';
        out += std::to_string(binary_content(text, tree.root(), item.section).size());
        return;
    case fetch_attr::modseq:
        // Never reached: fetch_response skips MODSEQ (no CONDSTORE).
        return;
    }
}

} // namespace

bool fetch_needs_text(std::span<const imap::fetch_item> items) noexcept
{
    for (const auto& item : items) {
        switch (item.attr) {
        case fetch_attr::flags:
        case fetch_attr::internaldate:
        case fetch_attr::rfc822_size:
        case fetch_attr::uid:
        case fetch_attr::modseq:
            break;
        case fetch_attr::envelope:
        case fetch_attr::rfc822:
        case fetch_attr::rfc822_header:
        case fetch_attr::rfc822_text:
        case fetch_attr::body:
        case fetch_attr::bodystructure:
        case fetch_attr::body_section:
        case fetch_attr::binary:
        case fetch_attr::binary_size:
            return true;
        }
    }
    return false;
}

bool fetch_sets_seen(std::span<const imap::fetch_item> items) noexcept
{
    for (const auto& item : items) {
        switch (item.attr) {
        case fetch_attr::body_section:
        case fetch_attr::binary:
            if (!item.peek)
                return true;
            break;
        case fetch_attr::rfc822:
        case fetch_attr::rfc822_text:
            return true;
        case fetch_attr::envelope:
        case fetch_attr::flags:
        case fetch_attr::internaldate:
        case fetch_attr::rfc822_header: // RFC 3501 6.4.5: BODY.PEEK[HEADER]
        case fetch_attr::rfc822_size:
        case fetch_attr::body:
        case fetch_attr::bodystructure:
        case fetch_attr::uid:
        case fetch_attr::binary_size: // RFC 3516 4.2: only the size, nothing read
        case fetch_attr::modseq:
            break;
        }
    }
    return false;
}

bool fetch_unknown_cte(std::string_view text, std::span<const imap::fetch_item> items)
{
    std::optional<mime::part> root;
    for (const auto& item : items) {
        if ((item.attr != fetch_attr::binary && item.attr != fetch_attr::binary_size) || item.section.part.empty())
            continue; // BINARY[] is the message as stored: nothing to decode
        if (!root)
            root = mime::parse(text);
        const mime::part* p = mime::find_part(*root, item.section.part);
        if (p && !decode_transfer({}, p->encoding))
            return true;
    }
    return false;
}

std::string flag_list(const mailbox::message_info& m)
{
    std::string out = "(";
    for (const auto& name : mailbox::flag_names(m.flags, m.keywords)) {
        if (out.size() > 1)
            out += ' ';
        out += name;
    }
    if (m.recent) {
        if (out.size() > 1)
            out += ' ';
        out += "\\Recent";
    }
    out += ')';
    return out;
}

std::string internal_date(std::int64_t seconds_since_epoch)
{
    // date-day-fixed = (SP DIGIT) / 2DIGIT (RFC 9051 9): the two-digit form
    // ("01-Jul-1996"), which every client parser reads, and no leading SP
    // inside the quotes to trip up a sloppy one. Times outside what
    // date-year's 4DIGIT can say are clamped (an mtime before 1970 is a
    // broken file, not a date to report).
    using namespace std::chrono;
    const auto clamped = std::clamp<std::int64_t>(seconds_since_epoch, 0, last_second);
    const sys_seconds t{seconds{clamped}};
    const auto day = floor<days>(t);
    const year_month_day ymd{day};
    const hh_mm_ss hms{t - day};
    char buf[48];
    std::snprintf(buf, sizeof buf, "\"%02u-%s-%04d %02d:%02d:%02d +0000\"", static_cast<unsigned>(ymd.day()),
                  month_names[static_cast<unsigned>(ymd.month()) - 1].data(), static_cast<int>(ymd.year()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()));
    return buf;
}

std::string fetch_response(std::size_t seq, const mailbox::message_info& m, std::string_view text,
                           std::span<const imap::fetch_item> items, fetch_options options)
{
    const auto asked = [&](fetch_attr a) {
        return std::any_of(items.begin(), items.end(), [a](const imap::fetch_item& i) { return i.attr == a; });
    };
    lazy_tree tree(text);
    std::string out = "* " + std::to_string(seq) + " FETCH (";
    const auto separate = [&out, start = out.size()] {
        if (out.size() > start)
            out += ' ';
    };
    // RFC 9051 6.4.9: UID FETCH answers carry UID, first unless asked for.
    if (options.add_uid && !asked(fetch_attr::uid)) {
        out += "UID ";
        out += std::to_string(m.uid);
    }
    for (const auto& item : items) {
        if (item.attr == fetch_attr::modseq)
            continue; // no CONDSTORE: the session does not announce it (RFC 7162 3.1.4.1 needs it)
        separate();
        append_item(out, m, text, tree, item);
    }
    // RFC 9051 6.4.5: the \Seen just set is announced with the response.
    if (options.add_flags && !asked(fetch_attr::flags)) {
        separate();
        out += "FLAGS ";
        out += flag_list(m);
    }
    // RFC 9051 9 msg-att needs one item at least: a FETCH of MODSEQ alone
    // still says which message it is about.
    if (out.back() == '(') {
        out += "UID ";
        out += std::to_string(m.uid);
    }
    out += ")\r\n";
    return out;
}

} // namespace postern::imapd
