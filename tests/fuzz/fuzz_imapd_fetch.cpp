// fuzz_imapd_fetch — imapd::fetch_response and imapd::search_matches on
// arbitrary octets taken as a stored message.
//
// Input: the message itself. Its first line (up to 64 octets, CR/LF not
// included) is also the search string of every string key, so seeds can
// aim the search at their own text.
//
// Invariants checked: every FETCH response (each item kind, BODY[section]
// and BINARY[part] for the first parts, with and without partials, UID and
// FLAGS added) is "* 1 FETCH (...)\r\n" with exact literal counts, no bare
// CR/LF outside literals, NUL only inside a literal8, balanced parentheses;
// BINARY.SIZE[part] is the size of BINARY[part]; a partial is never longer
// than its count. SEARCH: BODY s implies TEXT s, SUBJECT s implies TEXT s,
// OR k NOT k always holds, an empty BODY string always matches; the
// transfer decoders never grow base64 past 3/4 or QP past its input.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"

#include "postern/imapd/fetch.hpp"
#include "postern/imapd/search.hpp"
#include "postern/imapd/transfer.hpp"
#include "postern/mime/part.hpp"

namespace {

using namespace postern;
using imap::fetch_attr;
using imap::search_op;

// The literal count at s[i] ("{n}\r\n" or "~{n}\r\n"): the position after
// the CRLF and n.
std::pair<std::size_t, std::size_t> literal_at(std::string_view s, std::size_t i)
{
    if (s[i] == '~')
        ++i;
    const auto close = s.find('}', i);
    POSTERN_FUZZ_CHECK(close != std::string_view::npos, "literal without '}'");
    std::size_t n = 0;
    for (std::size_t k = i + 1; k < close; ++k) {
        POSTERN_FUZZ_CHECK(s[k] >= '0' && s[k] <= '9', "literal count not a number");
        n = n * 10 + static_cast<std::size_t>(s[k] - '0');
    }
    POSTERN_FUZZ_CHECK(s.substr(close + 1, 2) == "\r\n", "literal count without CRLF");
    POSTERN_FUZZ_CHECK(close + 3 + n <= s.size(), "literal longer than the response");
    return {close + 3, n};
}

// A well-formed FETCH response for sequence number 1.
void check_response(std::string_view r)
{
    constexpr std::string_view head = "* 1 FETCH (";
    POSTERN_FUZZ_CHECK(r.substr(0, head.size()) == head, "response does not open with * 1 FETCH (");
    POSTERN_FUZZ_CHECK(r.size() >= head.size() + 3 && r.substr(r.size() - 3) == ")\r\n", "response not closed");
    const auto body = r.substr(0, r.size() - 2);
    std::size_t depth = 0;
    std::size_t i = 0;
    while (i < body.size()) {
        const char c = body[i];
        if (c == '{' || (c == '~' && i + 1 < body.size() && body[i + 1] == '{')) {
            const auto [start, n] = literal_at(body, i);
            const auto octets = body.substr(start, n);
            POSTERN_FUZZ_CHECK(c == '~' || octets.find('\0') == std::string_view::npos, "NUL in a literal");
            i = start + n;
        } else if (c == '"') {
            ++i;
            while (i < body.size() && body[i] != '"') {
                POSTERN_FUZZ_CHECK(body[i] != '\r' && body[i] != '\n' && body[i] != '\0', "CR/LF/NUL quoted");
                i += body[i] == '\\' ? 2 : 1;
            }
            POSTERN_FUZZ_CHECK(i < body.size(), "unterminated quoted string");
            ++i;
        } else {
            POSTERN_FUZZ_CHECK(c != '\r' && c != '\n' && c != '\0', "CR/LF/NUL outside literals");
            if (c == '(')
                ++depth;
            if (c == ')') {
                POSTERN_FUZZ_CHECK(depth > 0, "unbalanced ')'");
                --depth;
            }
            ++i;
        }
    }
    POSTERN_FUZZ_CHECK(depth == 0, "unbalanced '('");
}

imap::fetch_item make_item(fetch_attr attr, std::string name)
{
    imap::fetch_item item;
    item.attr = attr;
    item.name = std::move(name);
    return item;
}

std::string section_name(const std::vector<std::uint32_t>& part)
{
    std::string s;
    for (const auto n : part) {
        if (!s.empty())
            s += '.';
        s += std::to_string(n);
    }
    return s;
}

// The value after "BINARY[..] " in a one-item response: its literal's size.
std::size_t binary_size_of(std::string_view r, std::string_view name)
{
    const auto at = r.find(name);
    POSTERN_FUZZ_CHECK(at != std::string_view::npos, "BINARY item missing");
    return literal_at(r, at + name.size() + 1).second;
}

imap::search_key key(search_op op, std::string_view text, std::string_view field = {})
{
    imap::search_key k;
    k.op = op;
    k.text = std::string(text);
    k.field = std::string(field);
    k.day = {1996, 7, 17};
    return k;
}

imap::search_key combine(search_op op, std::vector<imap::search_key> children)
{
    imap::search_key k;
    k.op = op;
    k.children = std::move(children);
    return k;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view m = fuzz::as_view(data, size);
    mailbox::message_info info;
    info.uid = 7;
    info.size = m.size();
    info.flags = "FS";
    info.keywords = {"$Forwarded"};
    info.internal_date = static_cast<std::int64_t>(m.size()) * 86400 * 37 - 5000000000;
    info.recent = (m.size() & 1U) != 0;

    // Every item kind, in one response.
    std::vector<imap::fetch_item> items{
        make_item(fetch_attr::envelope, "ENVELOPE"),   make_item(fetch_attr::flags, "FLAGS"),
        make_item(fetch_attr::internaldate, "INTERNALDATE"), make_item(fetch_attr::rfc822, "RFC822"),
        make_item(fetch_attr::rfc822_header, "RFC822.HEADER"), make_item(fetch_attr::rfc822_size, "RFC822.SIZE"),
        make_item(fetch_attr::rfc822_text, "RFC822.TEXT"), make_item(fetch_attr::body, "BODY"),
        make_item(fetch_attr::bodystructure, "BODYSTRUCTURE"), make_item(fetch_attr::modseq, "MODSEQ"),
    };
    // Sections of the first parts, named as the parser names them.
    const auto root = mime::parse(m, {.max_depth = 16, .max_parts = 500});
    std::vector<std::vector<std::uint32_t>> parts{{}, {1}, {2}, {1, 1}, {1, 2}, {2, 1}, {3, 1, 1}, {9999}};
    const std::uint64_t origin = m.empty() ? 0 : static_cast<unsigned char>(m[0]);
    for (const auto& p : parts) {
        const auto num = section_name(p);
        const auto prefix = num.empty() ? std::string() : num + ".";
        const struct {
            mime::section_text text;
            std::string_view word;
        } texts[] = {{mime::section_text::none, ""}, {mime::section_text::header, "HEADER"},
                     {mime::section_text::text, "TEXT"}, {mime::section_text::mime, "MIME"},
                     {mime::section_text::header_fields, "HEADER.FIELDS (Subject)"}};
        for (const auto& t : texts) {
            if (t.text == mime::section_text::mime && p.empty())
                continue;
            auto item = make_item(fetch_attr::body_section,
                                  "BODY[" + (t.word.empty() ? num : prefix + std::string(t.word)) + "]");
            item.section.part = p;
            item.section.text = t.text;
            if (t.text == mime::section_text::header_fields)
                item.section.fields = {"Subject"};
            items.push_back(item);
            item.range = imap::partial{origin, 1 + origin % 7};
            items.push_back(std::move(item));
        }
        // BINARY.SIZE agrees with BINARY.
        auto binary = make_item(fetch_attr::binary, "BINARY[" + num + "]");
        binary.section.part = p;
        auto binary_size = make_item(fetch_attr::binary_size, "BINARY.SIZE[" + num + "]");
        binary_size.section.part = p;
        const auto r1 = imapd::fetch_response(1, info, m, std::span(&binary, 1));
        const auto r2 = imapd::fetch_response(1, info, m, std::span(&binary_size, 1));
        check_response(r1);
        check_response(r2);
        const auto sized = "* 1 FETCH (" + binary_size.name + " " + std::to_string(binary_size_of(r1, binary.name)) +
                           ")\r\n";
        POSTERN_FUZZ_CHECK(r2 == sized, "BINARY.SIZE differs from BINARY's size");
        binary.range = imap::partial{origin, 3};
        const auto r3 = imapd::fetch_response(1, info, m, std::span(&binary, 1));
        check_response(r3);
        POSTERN_FUZZ_CHECK(binary_size_of(r3, binary.name + "<" + std::to_string(origin) + ">") <= 3,
                           "partial longer than its count");
        items.push_back(std::move(binary));
        items.push_back(std::move(binary_size));
    }
    check_response(imapd::fetch_response(1, info, m, items, {.add_uid = true, .add_flags = true}));
    POSTERN_FUZZ_CHECK(imapd::fetch_needs_text(items), "BODY[] needs no text");

    // SEARCH with the first line as the string.
    auto s = m.substr(0, std::min<std::size_t>(m.find_first_of("\r\n"), 64));
    const search_op string_keys[] = {search_op::from, search_op::to, search_op::cc, search_op::bcc,
                                     search_op::subject, search_op::body, search_op::text};
    const std::vector<std::uint32_t> saved{1, 7};
    const imapd::search_context ctx{.max_seq = 3, .max_uid = 9, .saved = &saved};
    const imapd::search_message msg{.seq = 1, .info = &info, .text = m};
    for (const auto op : string_keys) {
        const auto k = key(op, s);
        const bool hit = imapd::search_matches(k, msg, ctx);
        const bool either = imapd::search_matches(combine(search_op::or_, {k, combine(search_op::not_, {k})}), msg, ctx);
        POSTERN_FUZZ_CHECK(either, "OR k NOT k failed");
        if (hit && (op == search_op::body || op == search_op::subject))
            POSTERN_FUZZ_CHECK(imapd::search_matches(key(search_op::text, s), msg, ctx), "BODY/SUBJECT without TEXT");
    }
    POSTERN_FUZZ_CHECK(imapd::search_matches(key(search_op::body, ""), msg, ctx), "BODY \"\" failed");
    for (const auto op : {search_op::sentbefore, search_op::senton, search_op::sentsince, search_op::header})
        (void)imapd::search_matches(key(op, s, "X-Spam"), msg, ctx);

    // The decoders alone, on the whole input.
    POSTERN_FUZZ_CHECK(imapd::decode_base64(m).size() <= m.size() / 4 * 3 + 2, "base64 grew");
    POSTERN_FUZZ_CHECK(imapd::decode_quoted_printable(m).size() <= m.size(), "QP grew");
    return 0;
}
