// fuzz_data_reader — smtp::data_reader (the DATA codec) fed the input in
// chunks whose sizes the first byte chooses, with a small size limit.
// Invariants (smtp/data_reader.hpp, DESIGN promise 4):
//  - the result does not depend on how the input was split (the body only
//    while ok(): the header makes no promise for it after a flag);
//  - consume() uses everything until done(), and at done() the consumed
//    octets end in <CRLF>.<CRLF> (or are ".<CRLF>" alone);
//  - the body stays within the limit; an ok() body has CRLF line ends only;
//  - dot_encode() of any message (bare CR/LF sent as CRLF) read back by a
//    data_reader gives the message, with normalised line ends, exactly;
//  - BDAT framings (RFC 3030) use every byte in any split; binary keeps the
//    input exactly; text chunks keep it exactly when ok(), and flag a bare
//    CR or LF exactly when the input has one.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"

#include "postern/smtp/data_reader.hpp"
#include "postern/smtp/dot_encoder.hpp"

namespace {

using namespace postern;

struct outcome {
    std::size_t used = 0;
    bool done = false, bare_cr = false, bare_lf = false, long_line = false, too_big = false;
    std::uint64_t size = 0;
    std::string body;

    bool operator==(const outcome&) const = default;
};

outcome finish(smtp::data_reader& r, std::size_t used)
{
    return {used, r.done(), r.bare_cr(), r.bare_lf(), r.line_too_long(), r.too_big(), r.size(), r.body()};
}

outcome read_chunked(std::string_view in, std::uint64_t limit, fuzz::prng& rng)
{
    smtp::data_reader r(limit);
    std::size_t used = 0;
    while (used < in.size() && !r.done()) {
        const auto piece = in.substr(used, fuzz::chunk_length(rng, in.size() - used));
        const auto n = r.consume(piece);
        POSTERN_FUZZ_CHECK(n <= piece.size(), "consumed more than given");
        if (!r.done())
            POSTERN_FUZZ_CHECK(n == piece.size(), "stopped early without the end of data");
        used += n;
    }
    if (r.done())
        POSTERN_FUZZ_CHECK(r.consume(".\r\n") == 0, "consumed after done");
    return finish(r, used);
}

// Bare CR and bare LF become CRLF, as dot_encoder sends them.
std::string normalise(std::string_view s)
{
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') {
            out += "\r\n";
            ++i;
        } else if (s[i] == '\r' || s[i] == '\n') {
            out += "\r\n";
        } else {
            out += s[i];
        }
    }
    if (!out.empty() && !fuzz::ends_with_crlf(out))
        out += "\r\n";
    return out;
}

bool has_long_line(std::string_view s)
{
    std::size_t start = 0;
    for (;;) {
        auto nl = s.find("\r\n", start);
        auto len = (nl == std::string_view::npos ? s.size() : nl) - start;
        if (len > 998)
            return true;
        if (nl == std::string_view::npos)
            return false;
        start = nl + 2;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size == 0)
        return 0;
    const std::uint8_t mode = data[0];
    const std::string_view in = fuzz::as_view(data + 1, size - 1);
    // A small limit, so that too_big is reached often; sometimes none at all.
    const std::uint64_t limit = (mode & 0x80U) != 0 ? UINT64_MAX : (mode & 0x7fU) * 16U;

    fuzz::prng rng(mode);
    const auto chunked = read_chunked(in, limit, rng);
    smtp::data_reader whole(limit);
    auto at_once = finish(whole, whole.consume(in));
    // The body is only meaningful when ok(): past a flag it may hold more or less.
    auto chunked_cmp = chunked;
    if (!whole.ok()) {
        chunked_cmp.body.clear();
        at_once.body.clear();
    }
    POSTERN_FUZZ_CHECK(chunked_cmp == at_once, "result depends on the chunking");

    POSTERN_FUZZ_CHECK(at_once.body.size() <= limit, "body over the limit");
    POSTERN_FUZZ_CHECK(at_once.size >= at_once.body.size(), "size below the body");
    if (at_once.size > limit)
        POSTERN_FUZZ_CHECK(at_once.too_big, "over the limit, not flagged");
    if (at_once.done) {
        const auto used = in.substr(0, at_once.used);
        POSTERN_FUZZ_CHECK(used == ".\r\n" || (used.size() >= 5 && used.substr(used.size() - 5) == "\r\n.\r\n"),
                           "end of data other than <CRLF>.<CRLF>");
    } else {
        POSTERN_FUZZ_CHECK(at_once.used == in.size(), "input left over without an end");
    }
    const bool ok = !at_once.bare_cr && !at_once.bare_lf && !at_once.long_line && !at_once.too_big;
    if (ok) {
        POSTERN_FUZZ_CHECK(fuzz::crlf_only(at_once.body), "bare CR or LF in an accepted body");
        if (at_once.done)
            POSTERN_FUZZ_CHECK(at_once.body.empty() || fuzz::ends_with_crlf(at_once.body), "body without final CRLF");
    }

    // Round trip: the encoder's output, read back, is the message.
    std::string wire;
    smtp::dot_encoder enc;
    for (std::size_t pos = 0; pos < in.size();) {
        const auto piece = in.substr(pos, fuzz::chunk_length(rng, in.size() - pos));
        enc.encode(piece, wire);
        pos += piece.size();
    }
    enc.finish(wire);
    std::string wire_at_once;
    smtp::dot_encode(in, wire_at_once);
    POSTERN_FUZZ_CHECK(wire == wire_at_once, "dot_encoder depends on the chunking");
    POSTERN_FUZZ_CHECK(fuzz::crlf_only(wire), "dot_encode sent a bare CR or LF");

    smtp::data_reader back(UINT64_MAX);
    const auto used = back.consume(wire);
    POSTERN_FUZZ_CHECK(back.done() && used == wire.size(), "encoded message does not end where it should");
    POSTERN_FUZZ_CHECK(!back.bare_cr() && !back.bare_lf(), "encoded message has bare line ends");
    const auto expected = normalise(in);
    POSTERN_FUZZ_CHECK(back.line_too_long() == has_long_line(expected), "long-line flag disagrees");
    if (!back.line_too_long())
        POSTERN_FUZZ_CHECK(back.body() == expected, "round trip changed the message");

    // BDAT chunks: no unstuffing, no end marker, the split never matters.
    for (auto f : {smtp::framing::chunks, smtp::framing::binary}) {
        smtp::data_reader one(limit, f), pieces(limit, f);
        POSTERN_FUZZ_CHECK(one.consume(in) == in.size(), "a chunk not used whole");
        for (std::size_t pos = 0; pos < in.size();) {
            const auto piece = in.substr(pos, fuzz::chunk_length(rng, in.size() - pos));
            POSTERN_FUZZ_CHECK(pieces.consume(piece) == piece.size(), "a chunk piece not used whole");
            pos += piece.size();
        }
        POSTERN_FUZZ_CHECK(!one.done() && !pieces.done(), "a chunk framing ended by itself");
        // (a text CR at the very end waits for its LF: not counted yet)
        const auto pending_cr = f == smtp::framing::chunks && !in.empty() && in.back() == '\r' ? 1U : 0U;
        POSTERN_FUZZ_CHECK(one.size() + pending_cr == in.size() && pieces.size() + pending_cr == in.size(),
                           "chunk octets miscounted");
        POSTERN_FUZZ_CHECK(one.ok() == pieces.ok() && one.bare_cr() == pieces.bare_cr() &&
                               one.bare_lf() == pieces.bare_lf() && one.too_big() == pieces.too_big(),
                           "chunk flags depend on the split");
        POSTERN_FUZZ_CHECK(one.too_big() == (one.size() > limit), "chunk size limit");
        if (one.ok()) {
            const auto kept = in.substr(0, in.size() - pending_cr);
            POSTERN_FUZZ_CHECK(one.body() == kept && pieces.body() == kept, "chunk content changed");
            if (f == smtp::framing::chunks)
                // (a CR at the very end may still be followed by its LF)
                POSTERN_FUZZ_CHECK(fuzz::crlf_only(in) ||
                                       (in.back() == '\r' && fuzz::crlf_only(std::string(in) + "\n")),
                                   "bare CR or LF in accepted text chunks");
        }
        if (f == smtp::framing::binary)
            POSTERN_FUZZ_CHECK(!one.bare_cr() && !one.bare_lf() && !one.line_too_long(), "binary content flagged");
        // LAST: a text message ends in CRLF (or is refused); binary stays as it is.
        one.end_chunks();
        POSTERN_FUZZ_CHECK(one.done(), "not done after end_chunks");
        if (one.ok() && f == smtp::framing::chunks)
            POSTERN_FUZZ_CHECK(fuzz::crlf_only(one.body()) && (one.body().empty() || fuzz::ends_with_crlf(one.body())),
                               "a text message that does not end in CRLF");
        if (one.ok() && f == smtp::framing::binary)
            POSTERN_FUZZ_CHECK(one.body() == in, "binary content changed at the end");
    }
    return 0;
}
