// fuzz_imap_session — imap::session driven as the shell drives it, by a
// client byte stream, with arbitrary answers.
//
// Input: [config byte] [4 seed bytes] [client bytes...]. The config byte:
// bit 0 STARTTLS offered, bits 1-2 login never/tls_only/always, bit 3
// implicit TLS, bit 4 small limits (errors, failures, line and literal
// bounds), bit 5 the client pipelines bytes behind STARTTLS. The seed drives
// the split of the stream into writes and every answer the shell gives
// (auth verdicts, executor outcomes: selected or not, a BYE now and then,
// the TLS handshake).
//
// Invariants checked: the loop ends; the output is whole CRLF lines, each
// untagged ("* "), a continuation ("+ ") or "<tag> OK|NO|BAD"; output is
// bounded by the input that caused it; bytes sent behind STARTTLS are never
// answered (RFC 9051 6.2.1, CVE-2011-0411); a login is checked only when it
// is offered (inside TLS with tls_only); the executor only ever gets a
// command valid in the session's state, never before a login; after close
// nothing more happens.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"

#include "postern/imap/session.hpp"

namespace {

using namespace postern;
using imap::event;

// Every line the server writes must be one of the three IMAP kinds (RFC
// 9051 2.2.2): untagged, continuation, or a tagged status.
void check_lines(std::string_view out)
{
    POSTERN_FUZZ_CHECK(fuzz::crlf_only(out), "bare CR or LF in the output");
    POSTERN_FUZZ_CHECK(out.empty() || fuzz::ends_with_crlf(out), "output stops mid-line");
    std::size_t start = 0;
    while (start < out.size()) {
        const auto end = out.find("\r\n", start);
        const auto line = out.substr(start, end - start);
        start = end + 2;
        if (line.starts_with("* ") || line.starts_with("+ "))
            continue;
        const auto sp = line.find(' ');
        POSTERN_FUZZ_CHECK(sp != std::string_view::npos && sp > 0, "a line without a tag");
        const auto rest = line.substr(sp + 1);
        POSTERN_FUZZ_CHECK(rest.starts_with("OK") || rest.starts_with("NO ") || rest.starts_with("BAD "),
                           "a tagged line that is no status");
    }
}

imap::auth_verdict pick_auth(fuzz::prng& rng)
{
    switch (rng.below(6)) {
    case 0:
        return imap::auth_verdict::invalid;
    case 1:
        return imap::auth_verdict::locked;
    case 2:
        return imap::auth_verdict::temp_fail;
    default:
        return imap::auth_verdict::ok;
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const auto in = fuzz::split_session_input(data, size);
    if (!in)
        return 0;
    const std::uint8_t c = in->selector;
    const std::string_view stream = in->stream;
    fuzz::prng rng(in->seed);

    imap::session_config cfg;
    cfg.starttls = (c & 0x01U) != 0;
    switch ((c >> 1U) & 0x03U) {
    case 0: cfg.auth = imap::auth_offer::never; break;
    case 1: cfg.auth = imap::auth_offer::tls_only; break;
    default: cfg.auth = imap::auth_offer::always; break;
    }
    cfg.implicit_tls = (c & 0x08U) != 0;
    if ((c & 0x10U) != 0) {
        cfg.max_errors = 2;
        cfg.max_auth_failures = 1;
        cfg.limits.max_line = 64;
        cfg.limits.max_literal = 16;
        cfg.limits.max_append = 32;
    }
    const bool pipeline_behind_starttls = (c & 0x20U) != 0;

    imap::session s(cfg);
    s.start();
    bool selected = false;
    std::size_t pos = 0;
    std::size_t fed_since_flush = 0;
    const std::size_t max_events = 1000 + 16 * size;
    for (std::size_t events = 0;; ++events) {
        POSTERN_FUZZ_CHECK(events < max_events, "no end to the events");
        switch (s.next()) {
        case event::need_input: {
            // Bounded: the largest answer (CAPABILITY, a login's OK) is a few
            // hundred octets, and every command needs a few octets at least.
            POSTERN_FUZZ_CHECK(s.output().size() <= 4096 + 512 * fed_since_flush, "output out of bounds");
            check_lines(s.output());
            s.output().clear();
            fed_since_flush = 0;
            if (pos == stream.size()) {
                if (rng.below(4) != 0)
                    return 0; // EOF: the shell closes
                s.timeout();
                break;
            }
            const auto n = fuzz::chunk_length(rng, stream.size() - pos);
            s.feed(stream.substr(pos, n));
            pos += n;
            fed_since_flush += n;
            break;
        }
        case event::check_auth:
            POSTERN_FUZZ_CHECK(cfg.auth != imap::auth_offer::never, "login checked though never offered");
            if (cfg.auth == imap::auth_offer::tls_only)
                POSTERN_FUZZ_CHECK(s.tls_active(), "login checked outside TLS with tls_only");
            POSTERN_FUZZ_CHECK(!s.authenticated(), "a second login");
            s.answer_auth(pick_auth(rng));
            break;
        case event::execute: {
            POSTERN_FUZZ_CHECK(s.authenticated(), "a mail command before login");
            const auto& cmd = s.pending_command();
            const auto state = selected ? imap::session_state::selected : imap::session_state::authenticated;
            POSTERN_FUZZ_CHECK(imap::allowed(cmd.verb, state), "a command handed over in the wrong state");
            const auto r = rng.below(16);
            imap::outcome o;
            if (r == 0) {
                o.text = "* BYE [UNAVAILABLE] gone\r\n";
                o.close = true;
            } else {
                o.selected = r < 9 ? !selected : selected;
                o.text = cmd.tag + " OK done\r\n";
            }
            selected = o.selected;
            s.executed(std::move(o));
            POSTERN_FUZZ_CHECK(s.selected() == selected, "selected state lost");
            break;
        }
        case event::start_tls: {
            POSTERN_FUZZ_CHECK(cfg.starttls && !cfg.implicit_tls, "start_tls without STARTTLS configured");
            POSTERN_FUZZ_CHECK(s.output().ends_with(" OK Begin TLS negotiation now\r\n"), "STARTTLS without its OK last");
            check_lines(s.output());
            s.output().clear();
            if (pipeline_behind_starttls && pos < stream.size()) {
                const auto n = fuzz::chunk_length(rng, stream.size() - pos);
                s.feed(stream.substr(pos, n));
                pos += n;
            }
            const bool ok = rng.below(4) != 0;
            s.tls_started(ok);
            const event after = s.next();
            POSTERN_FUZZ_CHECK(s.output().empty(), "plain text answered after STARTTLS");
            if (!ok) {
                POSTERN_FUZZ_CHECK(after == event::close, "failed handshake did not close");
                return 0;
            }
            POSTERN_FUZZ_CHECK(after == event::need_input, "plain text acted on after STARTTLS");
            POSTERN_FUZZ_CHECK(s.tls_active() && !s.authenticated(), "TLS state after the handshake");
            if (pos == stream.size())
                return 0;
            const auto n = fuzz::chunk_length(rng, stream.size() - pos);
            s.feed(stream.substr(pos, n));
            pos += n;
            fed_since_flush = n;
            break;
        }
        case event::close:
            check_lines(s.output());
            s.output().clear();
            s.feed("a NOOP\r\n");
            POSTERN_FUZZ_CHECK(s.next() == event::close && s.output().empty(), "life after close");
            return 0;
        }
    }
}
