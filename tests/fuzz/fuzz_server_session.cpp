// fuzz_server_session — smtp::server_session driven as the shell
// (src/server/smtp_server.cpp) drives it, by a client byte stream.
//
// Input: [config byte] [4 seed bytes] [client bytes...]. The config byte
// picks the listener (bit 0 STARTTLS, bits 1-2 AUTH never/tls_only/always,
// bit 3 submission, bit 4 implicit TLS, bit 5 small limits, bit 6 refuse at
// connect when there are no client bytes, bit 7 the client pipelines bytes
// behind STARTTLS). The seed drives the split of the stream into writes and
// every answer the shell gives (rcpt, sender, auth, commit, TLS handshake).
//
// Invariants checked: the loop ends (a bounded number of events per input
// octet); every output is whole reply lines (CRLF, no bare CR/LF, "ddd" then
// SP or "-") and parses as complete replies with the client's own parser;
// bytes sent behind STARTTLS are never answered (CVE-2011-0411); a failed
// handshake closes with nothing more to send; AUTH only inside TLS when so
// configured; check_sender and a submission commit only after AUTH; a
// pending SASL response is valid base64; at commit the envelope has 1 to
// max_recipients distinct recipients, ASCII unless SMTPUTF8, and the body is
// within the size limit with CRLF line ends only (DESIGN promise 4).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"

#include "postern/smtp/reply_parser.hpp"
#include "postern/smtp/server_session.hpp"
#include "postern/util/base64.hpp"

namespace {

using namespace postern;
using smtp::event;

void check_output(const std::string& out)
{
    if (out.empty())
        return;
    POSTERN_FUZZ_CHECK(fuzz::ends_with_crlf(out), "output does not end in CRLF");
    POSTERN_FUZZ_CHECK(fuzz::crlf_only(out), "bare CR or LF in the output");
    std::size_t start = 0;
    while (start < out.size()) {
        const auto end = out.find("\r\n", start);
        const std::string_view line(out.data() + start, end - start);
        POSTERN_FUZZ_CHECK(line.size() >= 3 && line[0] >= '2' && line[0] <= '5' && line[1] >= '0' &&
                               line[1] <= '9' && line[2] >= '0' && line[2] <= '9',
                           "reply line without a code");
        POSTERN_FUZZ_CHECK(line.size() == 3 || line[3] == ' ' || line[3] == '-', "reply line malformed");
        start = end + 2;
    }
    // What we send, our own client reads: complete replies, no error.
    smtp::reply_parser p;
    std::size_t used = 0;
    while (used < out.size()) {
        used += p.consume(std::string_view(out).substr(used));
        POSTERN_FUZZ_CHECK(p.state() != smtp::reply_parser::status::error, p.error().c_str());
        if (p.state() == smtp::reply_parser::status::complete)
            (void)p.take();
    }
    POSTERN_FUZZ_CHECK(p.state() == smtp::reply_parser::status::incomplete, "reply left open");
}

bool ascii(const mail::address& a)
{
    return a.is_ascii();
}

void check_commit(smtp::server_session& s, const smtp::session_config& cfg)
{
    const auto& env = s.envelope();
    POSTERN_FUZZ_CHECK(!env.recipients.empty(), "commit without recipients");
    POSTERN_FUZZ_CHECK(env.recipients.size() <= cfg.max_recipients, "more recipients than allowed");
    for (std::size_t i = 0; i < env.recipients.size(); ++i) {
        const auto& r = env.recipients[i];
        POSTERN_FUZZ_CHECK(!r.local_part.empty(), "empty recipient");
        if (!env.smtputf8)
            POSTERN_FUZZ_CHECK(ascii(r), "8-bit recipient without SMTPUTF8");
        for (std::size_t j = 0; j < i; ++j)
            POSTERN_FUZZ_CHECK(!(env.recipients[j].local_part == r.local_part && env.recipients[j].domain == r.domain),
                               "duplicate recipient kept");
    }
    if (!env.sender.null && !env.smtputf8)
        POSTERN_FUZZ_CHECK(ascii(env.sender.addr), "8-bit sender without SMTPUTF8");
    const std::string& body = s.body();
    POSTERN_FUZZ_CHECK(body.size() <= cfg.max_message_size, "body over the size limit");
    if (env.body != mail::body_type::binary_mime) { // RFC 3030 3: BINARYMIME has no lines
        POSTERN_FUZZ_CHECK(fuzz::crlf_only(body), "bare CR or LF in a committed body");
        POSTERN_FUZZ_CHECK(body.empty() || fuzz::ends_with_crlf(body), "committed body without final CRLF");
    }
    if (cfg.submission)
        POSTERN_FUZZ_CHECK(s.authenticated(), "submission commit without AUTH");
    const auto proto = s.protocol();
    POSTERN_FUZZ_CHECK(proto.find("SMTP") != std::string_view::npos, "odd protocol word");
}

smtp::rcpt_verdict pick_rcpt(fuzz::prng& rng)
{
    switch (rng.below(8)) {
    case 0: return smtp::rcpt_verdict::unknown_user;
    case 1: return smtp::rcpt_verdict::relay_denied;
    case 2: return smtp::rcpt_verdict::temp_fail;
    default: return smtp::rcpt_verdict::accept;
    }
}

smtp::auth_verdict pick_auth(fuzz::prng& rng)
{
    switch (rng.below(8)) {
    case 0: return smtp::auth_verdict::invalid;
    case 1: return smtp::auth_verdict::malformed;
    case 2: return smtp::auth_verdict::locked;
    case 3: return smtp::auth_verdict::temp_fail;
    default: return smtp::auth_verdict::ok;
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

    smtp::session_config cfg;
    cfg.hostname = "mx.test";
    cfg.starttls = (c & 0x01U) != 0;
    switch ((c >> 1U) & 0x03U) {
    case 0: cfg.auth = smtp::auth_offer::never; break;
    case 1: cfg.auth = smtp::auth_offer::tls_only; break;
    default: cfg.auth = smtp::auth_offer::always; break;
    }
    cfg.submission = (c & 0x08U) != 0;
    cfg.implicit_tls = (c & 0x10U) != 0;
    if ((c & 0x20U) != 0) {
        cfg.max_message_size = 200;
        cfg.max_recipients = 2;
        cfg.max_errors = 3;
        cfg.max_auth_failures = 1;
    } else {
        cfg.max_message_size = 10000;
        cfg.max_recipients = 100;
        cfg.max_errors = 20;
    }
    const bool pipeline_behind_starttls = (c & 0x80U) != 0;

    smtp::server_session s(cfg);
    if (cfg.implicit_tls) {
        const bool ok = rng.below(8) != 0;
        s.tls_started(ok, ok ? "TLSv1.3 TLS_AES_256_GCM_SHA384" : "");
        if (!ok)
            return 0; // the shell closes without a greeting
    }
    if (stream.empty() && (c & 0x40U) != 0) {
        s.refuse("Error: too many connections");
        POSTERN_FUZZ_CHECK(s.next() == event::close, "refuse did not close");
        check_output(s.output());
        POSTERN_FUZZ_CHECK(!s.output().empty(), "refuse without a reply");
        return 0;
    }
    s.start();

    std::size_t pos = 0;
    const std::size_t max_events = 1000 + 16 * size;
    bool timed_out = false;
    for (std::size_t events = 0;; ++events) {
        POSTERN_FUZZ_CHECK(events < max_events, "no end to the events");
        if (cfg.auth == smtp::auth_offer::tls_only && s.authenticated())
            POSTERN_FUZZ_CHECK(s.tls_active(), "authenticated outside TLS with tls_only");
        const event e = s.next();
        switch (e) {
        case event::need_input: {
            POSTERN_FUZZ_CHECK(!timed_out, "input wanted after the timeout");
            check_output(s.output());
            s.output().clear();
            if (pos == stream.size()) {
                if (rng.below(4) != 0)
                    return 0; // EOF: the shell closes
                s.timeout();
                timed_out = true;
                break;
            }
            const auto n = fuzz::chunk_length(rng, stream.size() - pos);
            s.feed(stream.substr(pos, n));
            pos += n;
            break;
        }
        case event::check_rcpt:
            POSTERN_FUZZ_CHECK(!s.pending_rcpt().local_part.empty(), "empty pending recipient");
            s.answer_rcpt(pick_rcpt(rng));
            break;
        case event::check_sender:
            POSTERN_FUZZ_CHECK(s.authenticated(), "check_sender before AUTH");
            s.answer_sender(rng.below(4) != 0);
            break;
        case event::check_auth: {
            const auto& req = s.pending_auth();
            POSTERN_FUZZ_CHECK(util::base64_decode(req.first).has_value(), "pending AUTH response not base64");
            if (req.mechanism == smtp::sasl_mechanism::login)
                POSTERN_FUZZ_CHECK(util::base64_decode(req.second).has_value(), "pending LOGIN password not base64");
            if (cfg.auth == smtp::auth_offer::tls_only)
                POSTERN_FUZZ_CHECK(s.tls_active(), "AUTH checked outside TLS with tls_only");
            POSTERN_FUZZ_CHECK(cfg.auth != smtp::auth_offer::never, "AUTH checked though never offered");
            s.answer_auth(pick_auth(rng));
            break;
        }
        case event::commit:
            check_commit(s, cfg);
            if (rng.below(8) == 0)
                s.committed(util::result<std::string>(std::make_error_code(std::errc::no_space_on_device)));
            else
                s.committed(std::string("0123456789abcdef"));
            break;
        case event::start_tls: {
            POSTERN_FUZZ_CHECK(cfg.starttls && !cfg.implicit_tls, "start_tls without STARTTLS configured");
            check_output(s.output());
            {
                // Replies to commands before STARTTLS may precede it; the 220 is last.
                const std::string& out = s.output();
                const auto last = out.size() < 3 ? std::string::npos : out.rfind("\r\n", out.size() - 3);
                const auto line = last == std::string::npos ? 0 : last + 2;
                POSTERN_FUZZ_CHECK(out.compare(line, 4, "220 ") == 0, "STARTTLS without its 220 last");
            }
            s.output().clear();
            // A client may pipeline plain text behind STARTTLS; it must be dropped.
            if (pipeline_behind_starttls && pos < stream.size()) {
                const auto n = fuzz::chunk_length(rng, stream.size() - pos);
                s.feed(stream.substr(pos, n));
                pos += n;
            }
            const bool ok = rng.below(4) != 0;
            s.tls_started(ok, ok ? "TLSv1.3 TLS_AES_256_GCM_SHA384" : "");
            const event after = s.next();
            if (ok) {
                POSTERN_FUZZ_CHECK(after == event::need_input, "plain text acted on after STARTTLS");
                POSTERN_FUZZ_CHECK(s.output().empty(), "plain text answered after STARTTLS");
                POSTERN_FUZZ_CHECK(s.tls_active() && !s.authenticated(), "TLS state after the handshake");
                // need_input already returned: feed as the shell would.
                if (pos == stream.size())
                    return 0;
                const auto n = fuzz::chunk_length(rng, stream.size() - pos);
                s.feed(stream.substr(pos, n));
                pos += n;
            } else {
                POSTERN_FUZZ_CHECK(after == event::close, "failed handshake did not close");
                POSTERN_FUZZ_CHECK(s.output().empty(), "output after a failed handshake");
                return 0;
            }
            break;
        }
        case event::close:
            check_output(s.output());
            s.output().clear();
            POSTERN_FUZZ_CHECK(s.next() == event::close, "next() after close did not close");
            return 0;
        }
    }
}
