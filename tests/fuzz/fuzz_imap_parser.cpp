// fuzz_imap_parser — imap::reader framing and imap::parse_command on an
// arbitrary client byte stream.
//
// Input: [selector byte][4 seed bytes][stream] (fuzz_support.hpp
// session_input). The selector picks the limits (small lines and literals,
// LITERAL-, a low APPENDLIMIT, few literals, shallow SEARCH); the seed
// picks the feed() split points. After each IDLE or AUTHENTICATE command the
// next line is read raw, as the session would.
//
// Invariants checked: the events (continuations, commands parsed or
// refused with their exact responses, raw lines) do not depend on how the
// stream is split; what the reader holds stays within its limits once
// next() asks for input; every refusal and every BAD is one well-formed
// response line (a tag or "*", no CR/LF inside, CRLF at the end); a parsed
// command has a valid tag, sequence sets with no 0 and within the range
// bound, and SEARCH programs within the depth bound.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"

#include "postern/imap/command.hpp"
#include "postern/imap/reader.hpp"

namespace {

using namespace postern;

void check_response_line(std::string_view s)
{
    POSTERN_FUZZ_CHECK(fuzz::ends_with_crlf(s), "response without CRLF");
    const auto body = s.substr(0, s.size() - 2);
    POSTERN_FUZZ_CHECK(body.find_first_of("\r\n") == std::string_view::npos, "CR or LF inside a response");
    POSTERN_FUZZ_CHECK(body.find('\0') == std::string_view::npos, "NUL inside a response");
    const auto sp = body.find(' ');
    POSTERN_FUZZ_CHECK(sp != std::string_view::npos && sp > 0, "response without a tag");
}

void check_set(const imap::sequence_set& s, const imap::parse_limits& lim)
{
    POSTERN_FUZZ_CHECK(s.saved != !s.ranges.empty(), "a set is either $ or ranges");
    POSTERN_FUZZ_CHECK(s.ranges.size() <= lim.max_ranges, "more ranges than the bound");
}

std::size_t depth_of(const imap::search_key& k)
{
    std::size_t d = 0;
    for (const auto& c : k.children) {
        const auto cd = depth_of(c);
        d = cd > d ? cd : d;
    }
    return d + 1;
}

void check_command(const imap::command& c, const imap::parse_limits& lim)
{
    POSTERN_FUZZ_CHECK(!c.tag.empty() && c.tag.find_first_of(" +*(){\"\\%\r\n") == std::string::npos, "bad tag");
    if (const auto* f = std::get_if<imap::fetch_args>(&c.args)) {
        check_set(f->set, lim);
        POSTERN_FUZZ_CHECK(!f->items.empty(), "FETCH without items");
        for (const auto& i : f->items) {
            POSTERN_FUZZ_CHECK(!i.name.empty(), "fetch item without a name");
            POSTERN_FUZZ_CHECK(!i.range || i.range->count > 0, "partial of 0 octets");
            for (auto n : i.section.part)
                POSTERN_FUZZ_CHECK(n > 0, "section part 0");
        }
    } else if (const auto* s = std::get_if<imap::search_args>(&c.args)) {
        POSTERN_FUZZ_CHECK(!s->program.children.empty(), "SEARCH without keys");
        POSTERN_FUZZ_CHECK(depth_of(s->program) <= lim.max_search_depth + 1, "SEARCH deeper than the bound");
    } else if (const auto* st = std::get_if<imap::store_args>(&c.args)) {
        check_set(st->set, lim);
    } else if (const auto* cp = std::get_if<imap::copy_args>(&c.args)) {
        check_set(cp->set, lim);
    } else if (const auto* e = std::get_if<imap::expunge_args>(&c.args)) {
        check_set(e->set, lim);
    } else if (const auto* m = std::get_if<imap::select_args>(&c.args)) {
        POSTERN_FUZZ_CHECK(m->mailbox != "inbox", "INBOX not normalised");
    }
}

struct run_config {
    imap::reader_limits reader;
    imap::parse_limits parser;
};

run_config config_for(std::uint8_t selector)
{
    run_config c;
    if (selector & 1U) {
        c.reader.max_line = 64;
        c.reader.max_literal = 32;
        c.reader.max_append = 128;
        c.reader.max_literals = 4;
    }
    if (selector & 2U)
        c.reader.max_nonsync = 16; // a small LITERAL-
    if (selector & 4U) {
        c.parser.max_search_depth = 4;
        c.parser.max_search_keys = 8;
        c.parser.max_ranges = 4;
    }
    return c;
}

// Drains the reader into a transcript; pieces of input come from feed.
class driver {
public:
    explicit driver(const run_config& cfg) : cfg_(cfg), r_(cfg.reader) {}

    void feed(std::string_view bytes)
    {
        r_.feed(bytes);
        for (;;) {
            const auto ev = r_.next();
            switch (ev) {
            case imap::read_event::need_input: {
                const auto& l = cfg_.reader;
                const std::size_t bound = 2 * l.max_line + 2 + l.max_append + l.max_literal;
                POSTERN_FUZZ_CHECK(r_.buffered() <= bound, "reader holds more than its limits");
                return;
            }
            case imap::read_event::continuation:
                log_ += "+\n";
                break;
            case imap::read_event::command: {
                auto p = imap::parse_command(r_.take_command(), cfg_.parser);
                if (p) {
                    check_command(*p.command, cfg_.parser);
                    log_ += "C " + p.command->tag + " " + std::string(imap::verb_name(p.command->verb)) + "\n";
                    if (p.command->verb == imap::verb::idle || p.command->verb == imap::verb::authenticate)
                        r_.expect_line();
                } else {
                    const auto line = p.error.str();
                    check_response_line(line);
                    POSTERN_FUZZ_CHECK(p.error.st == imap::status::bad, "a parse error that is not BAD");
                    log_ += line;
                }
                break;
            }
            case imap::read_event::refused: {
                const auto line = r_.refusal().str();
                check_response_line(line);
                log_ += "R " + line;
                break;
            }
            case imap::read_event::line: {
                const auto line = r_.take_line();
                POSTERN_FUZZ_CHECK(line.size() <= cfg_.reader.max_line, "raw line over the limit");
                POSTERN_FUZZ_CHECK(line.find('\n') == std::string::npos, "LF in a raw line");
                log_ += "L " + line + "\n";
                break;
            }
            case imap::read_event::line_too_long:
                log_ += "T\n";
                break;
            }
        }
    }

    const std::string& log() const noexcept { return log_; }
    const imap::reader& reader() const noexcept { return r_; }

private:
    const run_config& cfg_;
    imap::reader r_;
    std::string log_;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const auto in = fuzz::split_session_input(data, size);
    if (!in)
        return 0;
    const run_config cfg = config_for(in->selector);

    driver whole(cfg);
    whole.feed(in->stream);

    driver pieces(cfg);
    fuzz::prng rng(in->seed);
    std::string_view rest = in->stream;
    while (!rest.empty()) {
        const auto n = fuzz::chunk_length(rng, rest.size());
        pieces.feed(rest.substr(0, n));
        rest.remove_prefix(n);
    }
    if (whole.log() != pieces.log())
        std::fprintf(stderr, "whole:\n%s\npieces:\n%s\n", whole.log().c_str(), pieces.log().c_str());
    POSTERN_FUZZ_CHECK(whole.log() == pieces.log(), "events depend on how the stream is split");
    POSTERN_FUZZ_CHECK(whole.reader().bytes_in() == in->stream.size(), "bytes not counted");
    return 0;
}
