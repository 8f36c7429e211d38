// fuzz_reply_parser — smtp::reply_parser (the client's reader of server
// replies) on the input as a pipelined stream of replies.
//
// Input: [limits byte] [bytes...]. Bit 0 of the limits byte selects small
// limits (line 16, lines 4, bytes 64) instead of the defaults; the rest
// seeds the split of the stream into reads.
//
// Invariants checked (smtp/reply_parser.hpp): consume() never uses more than
// it is given and never reads past the end of one reply; the replies do not
// depend on how the stream was split; a reply has 1..max_lines lines, a code
// 200..599, an enhanced code "c.s.d" whose class is the code's first digit
// (or none), and no control character but tab in its text; after an error
// the parser takes nothing until reset().
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"

#include "postern/smtp/reply_parser.hpp"

namespace {

using namespace postern;
using status = smtp::reply_parser::status;

// One reply or one error, as a comparable string.
using outcome = std::vector<std::string>;

bool enhanced_ok(const std::string& e, int code)
{
    if (e.empty())
        return true;
    if (e.size() < 5 || e[0] != static_cast<char>('0' + code / 100) || e[1] != '.')
        return false;
    std::size_t i = 2;
    for (int part = 0; part < 2; ++part) {
        std::size_t digits = 0;
        while (i < e.size() && e[i] >= '0' && e[i] <= '9') {
            ++i;
            ++digits;
        }
        if (digits == 0 || digits > 3)
            return false;
        if (part == 0) {
            if (i >= e.size() || e[i] != '.')
                return false;
            ++i;
        }
    }
    return i == e.size();
}

void check_reply(const smtp::reply& r, const smtp::reply_parser::limits& lim)
{
    POSTERN_FUZZ_CHECK(r.code >= 200 && r.code <= 599, "reply code out of range");
    POSTERN_FUZZ_CHECK(!r.lines.empty() && r.lines.size() <= lim.max_lines, "line count out of range");
    POSTERN_FUZZ_CHECK(enhanced_ok(r.enhanced, r.code), r.enhanced.c_str());
    for (const auto& l : r.lines)
        for (unsigned char ch : l)
            POSTERN_FUZZ_CHECK((ch >= 0x20 || ch == '\t') && ch != 0x7f, "control character in reply text");
    const auto s = r.str();
    POSTERN_FUZZ_CHECK(s.rfind(std::to_string(r.code), 0) == 0, "str() does not start with the code");
    (void)r.text();
}

outcome run(std::string_view in, const smtp::reply_parser::limits& lim, fuzz::prng* rng)
{
    outcome out;
    smtp::reply_parser p(lim);
    std::size_t pos = 0;
    std::size_t guard = 0;
    while (pos < in.size()) {
        POSTERN_FUZZ_CHECK(++guard < 4 * in.size() + 16, "parser makes no progress");
        const auto piece = rng != nullptr ? in.substr(pos, fuzz::chunk_length(*rng, in.size() - pos)) : in.substr(pos);
        const auto n = p.consume(piece);
        POSTERN_FUZZ_CHECK(n <= piece.size(), "consumed more than given");
        pos += n;
        switch (p.state()) {
        case status::incomplete:
            POSTERN_FUZZ_CHECK(n == piece.size(), "incomplete, yet input left unused");
            break;
        case status::complete: {
            // Never past the end of one reply: the last octet used ends a line.
            POSTERN_FUZZ_CHECK(pos > 0 && in[pos - 1] == '\n', "reply did not end at a line end");
            POSTERN_FUZZ_CHECK(p.consume("250 more\r\n") == 0, "consumed while complete");
            auto r = p.take();
            check_reply(r, lim);
            out.push_back(r.str() + "|" + r.enhanced + "|" + std::to_string(r.lines.size()));
            break;
        }
        case status::error:
            POSTERN_FUZZ_CHECK(!p.error().empty(), "error without a reason");
            POSTERN_FUZZ_CHECK(p.consume("250 ok\r\n") == 0, "consumed in error");
            out.push_back("error");
            return out; // the client gives up on the connection
        }
    }
    out.push_back(p.state() == status::incomplete ? "open" : "?");
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size == 0)
        return 0;
    smtp::reply_parser::limits lim;
    if ((data[0] & 1U) != 0) {
        lim.max_line = 16;
        lim.max_lines = 4;
        lim.max_bytes = 64;
    }
    const std::string_view in = fuzz::as_view(data + 1, size - 1);
    fuzz::prng rng(data[0]);
    const auto whole = run(in, lim, nullptr);
    const auto pieces = run(in, lim, &rng);
    POSTERN_FUZZ_CHECK(whole == pieces, "replies depend on how the stream was split");
    return 0;
}
