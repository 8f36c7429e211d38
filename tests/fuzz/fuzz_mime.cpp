// fuzz_mime — mime::parse on arbitrary octets, then everything an IMAP
// server derives from the tree: ENVELOPE, BODY, BODYSTRUCTURE and the
// sections of every part.
//
// Input: the message itself. Its first line (up to 200 octets) is also
// tried as a section-spec, so the spec parser is fuzzed on the same input.
//
// Invariants checked: every part's ranges nest (whole = header, blank line,
// body; a child inside its parent's body; an encapsulated message is its
// part's body) and lie inside the message; the depth stays within the
// limit; ENVELOPE and BODYSTRUCTURE are well-formed IMAP (balanced
// parentheses, quoted strings closed, literal counts exact, no bare CR/LF
// outside literals); every section range lies inside the message and is
// what section_bytes() returns.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "fuzz_support.hpp"

#include "postern/mime/encoded_word.hpp"
#include "postern/mime/imap.hpp"
#include "postern/mime/part.hpp"
#include "postern/mime/section.hpp"

namespace {

using namespace postern;

void check_part(const mime::part& p, std::size_t size)
{
    POSTERN_FUZZ_CHECK(p.whole.begin <= p.whole.end && p.whole.end <= size, "whole out of range");
    POSTERN_FUZZ_CHECK(p.header.begin == p.whole.begin, "header does not start the part");
    POSTERN_FUZZ_CHECK(p.header.begin <= p.header.end && p.header.end <= p.body.begin, "header after body");
    POSTERN_FUZZ_CHECK(p.body.begin <= p.body.end && p.body.end == p.whole.end, "body does not end the part");
    switch (p.kind) {
    case mime::part_kind::single:
        POSTERN_FUZZ_CHECK(p.children.empty(), "single part with children");
        break;
    case mime::part_kind::message:
        POSTERN_FUZZ_CHECK(p.children.size() == 1 && p.children[0].whole == p.body, "message child not the body");
        break;
    case mime::part_kind::multipart: {
        std::size_t last = p.body.begin;
        for (const auto& c : p.children) {
            POSTERN_FUZZ_CHECK(c.whole.begin >= last && c.whole.end <= p.body.end, "child outside its parent");
            last = c.whole.end;
        }
        break;
    }
    }
}

// Well-formed IMAP data: NIL, numbers, quoted strings, literals, lists.
void check_imap(std::string_view s)
{
    std::size_t depth = 0;
    std::size_t i = 0;
    while (i < s.size()) {
        const char c = s[i];
        if (c == '(') {
            ++depth;
            ++i;
        } else if (c == ')') {
            POSTERN_FUZZ_CHECK(depth > 0, "unbalanced ')'");
            --depth;
            ++i;
        } else if (c == '"') {
            ++i;
            while (i < s.size() && s[i] != '"') {
                POSTERN_FUZZ_CHECK(s[i] != '\r' && s[i] != '\n' && s[i] != '\0', "CR/LF/NUL in a quoted string");
                POSTERN_FUZZ_CHECK(static_cast<unsigned char>(s[i]) < 0x80, "8-bit in a quoted string");
                if (s[i] == '\\') {
                    ++i;
                    POSTERN_FUZZ_CHECK(i < s.size() && (s[i] == '"' || s[i] == '\\'), "bad quoted-pair");
                }
                ++i;
            }
            POSTERN_FUZZ_CHECK(i < s.size(), "unterminated quoted string");
            ++i;
        } else if (c == '{') {
            const auto close = s.find('}', i);
            POSTERN_FUZZ_CHECK(close != std::string_view::npos, "literal without '}'");
            std::size_t n = 0;
            for (std::size_t k = i + 1; k < close; ++k) {
                POSTERN_FUZZ_CHECK(s[k] >= '0' && s[k] <= '9', "literal count not a number");
                n = n * 10 + static_cast<std::size_t>(s[k] - '0');
            }
            POSTERN_FUZZ_CHECK(s.substr(close + 1, 2) == "\r\n", "literal count without CRLF");
            i = close + 3;
            POSTERN_FUZZ_CHECK(i + n <= s.size(), "literal longer than the output");
            POSTERN_FUZZ_CHECK(s.substr(i, n).find('\0') == std::string_view::npos, "NUL in a literal");
            i += n;
        } else if (c == ' ') {
            ++i;
        } else if (s.substr(i, 3) == "NIL") {
            i += 3;
        } else {
            POSTERN_FUZZ_CHECK(c >= '0' && c <= '9', "unexpected octet in IMAP output");
            ++i;
        }
    }
    POSTERN_FUZZ_CHECK(depth == 0, "unbalanced '('");
}

void check_section(std::string_view m, const mime::part& root, const mime::section& s)
{
    const auto ranges = mime::section_ranges(m, root, s);
    std::size_t total = 0;
    for (const auto& r : ranges) {
        POSTERN_FUZZ_CHECK(r.begin < r.end && r.end <= m.size(), "section range out of the message");
        total += r.size();
    }
    POSTERN_FUZZ_CHECK(mime::section_bytes(m, root, s).size() == total, "section bytes differ from its ranges");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view m = fuzz::as_view(data, size);
    const mime::limits lim{.max_depth = 16, .max_parts = 500};
    const mime::part root = mime::parse(m, lim);

    // Walk the tree without recursion, numbering parts as BODY[section] does.
    std::vector<std::pair<const mime::part*, std::size_t>> stack{{&root, 0}};
    std::size_t parts = 0;
    while (!stack.empty()) {
        const auto [p, depth] = stack.back();
        stack.pop_back();
        ++parts;
        POSTERN_FUZZ_CHECK(depth <= lim.max_depth, "deeper than the limit");
        check_part(*p, m.size());
        for (const auto& c : p->children)
            stack.emplace_back(&c, depth + 1);
    }
    POSTERN_FUZZ_CHECK(parts <= lim.max_parts + 1, "more parts than the limit");

    check_imap(mime::envelope(m, root));
    check_imap(mime::bodystructure(m, root, false));
    check_imap(mime::bodystructure(m, root, true));
    (void)mime::decode_words(m.substr(0, 4096));

    // Sections: every text on the first parts, numbered as IMAP does.
    std::vector<std::vector<std::uint32_t>> numbers{{}};
    for (std::size_t k = 0; k < numbers.size() && numbers.size() < 64; ++k) {
        const mime::part* p = mime::find_part(root, numbers[k]);
        POSTERN_FUZZ_CHECK(p != nullptr, "a numbered part is missing");
        // RFC 9051 6.4.5: inside the message, a non-multipart has part 1;
        // inside a message/rfc822 part, the encapsulated message's parts.
        std::size_t n = 0;
        if (numbers[k].empty())
            n = p->kind == mime::part_kind::multipart ? p->children.size() : 1;
        else if (p->kind == mime::part_kind::multipart)
            n = p->children.size();
        else if (p->kind == mime::part_kind::message)
            n = p->children[0].kind == mime::part_kind::multipart ? p->children[0].children.size() : 1;
        for (std::uint32_t i = 1; i <= n && i <= 8; ++i) {
            auto next = numbers[k];
            next.push_back(i);
            numbers.push_back(std::move(next));
        }
    }
    for (const auto& num : numbers) {
        for (const auto text : {mime::section_text::none, mime::section_text::header, mime::section_text::text,
                                mime::section_text::mime, mime::section_text::header_fields,
                                mime::section_text::header_fields_not}) {
            mime::section s;
            s.part = num;
            s.text = text;
            s.fields = {"Subject", "content-type"};
            check_section(m, root, s);
        }
        auto beyond = num;
        beyond.push_back(9999);
        check_section(m, root, mime::section{beyond, mime::section_text::none, {}});
    }

    const auto eol = m.find('\n');
    if (const auto spec = mime::parse_section(m.substr(0, std::min<std::size_t>(eol, 200))))
        check_section(m, root, *spec);
    return 0;
}
