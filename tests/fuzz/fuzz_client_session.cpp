// fuzz_client_session — smtp::client_session (the relay client) driven as
// delivery::remote_agent drives it, fed arbitrary server replies.
//
// Input: [config byte] [4 seed bytes] [server bytes...]. Config: bits 0-1
// TLS policy none/may/encrypt/implicit, bit 2 AUTH credentials, bit 3 long
// credentials (PLAIN without initial response), bits 4-5 messages to send
// (0-3), bit 6 a rich envelope (3 recipients, SMTPUTF8, 8BITMIME, SIZE, DSN
// parameters), bit 7 a first body over 64 KiB. The seed drives the split of
// the server's bytes into reads, the TLS handshake outcome and the end of
// input (EOF or read timeout).
//
// Invariants checked (smtp/client_session.hpp): the loop ends; every
// add_message() gets exactly one message_done, with one result per
// recipient whose code is 2xx, 4xx or 5xx; closed stays closed; the
// password, raw or base64, appears in no result and no failure text; no
// output() over a 64 KiB body piece plus commands; TLS required means no
// mail command in plain text; credentials never without TLS.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"

#include "postern/smtp/client_session.hpp"
#include "postern/util/base64.hpp"

namespace {

using namespace postern;
using smtp::client_event;

struct secrets {
    std::vector<std::string> forms; // raw, base64, base64 of the PLAIN message
};

void check_text(const std::string& t, const secrets& s)
{
    for (const auto& f : s.forms)
        POSTERN_FUZZ_CHECK(t.find(f) == std::string::npos, "password leaked into a result or failure text");
}

smtp::envelope_out make_envelope(bool rich, std::size_t size)
{
    smtp::envelope_out env;
    env.sender = "alice@example.org";
    env.size = size;
    if (!rich) {
        env.recipients = {"bob@x.test"};
        return env;
    }
    env.sender = "j\xc3\xbcrgen@example.org";
    env.recipients = {"bob@x.test", "carol@x.test", "d\xc3\xa4ve@x.test"};
    env.smtputf8 = true;
    env.eight_bit = true;
    env.mail_params = {"RET=HDRS", "ENVID=abc+2Bdef"};
    env.rcpt_params = {"NOTIFY=FAILURE,DELAY ORCPT=rfc822;bob@x.test", "", "NOTIFY=NEVER"};
    return env;
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

    smtp::client_config cfg;
    cfg.helo_name = "client.example";
    switch (c & 0x03U) {
    case 0: cfg.offer_starttls_allowed = false; break;
    case 1: break;
    case 2: cfg.require_tls = true; break;
    default: cfg.implicit_tls = true; cfg.require_tls = true; break;
    }
    secrets sec;
    if ((c & 0x04U) != 0) {
        const bool long_creds = (c & 0x08U) != 0;
        cfg.auth_username = long_creds ? std::string(200, 'u') : "alice";
        cfg.auth_password = long_creds ? std::string(200, 'p') : "s3cret-PW";
        sec.forms.push_back(cfg.auth_password);
        sec.forms.push_back(util::base64_encode(cfg.auth_password));
        sec.forms.push_back(util::base64_encode(std::string(1, '\0') + cfg.auth_username + '\0' + cfg.auth_password));
    }
    const std::size_t messages = (c >> 4U) & 0x03U;
    const bool rich = (c & 0x40U) != 0;

    // Bodies live as long as the session (the session borrows them).
    std::vector<std::string> bodies(messages);
    for (std::size_t i = 0; i < messages; ++i) {
        std::string raw = "Subject: test\r\n\r\nHi.\r\n";
        if (i == 0 && (c & 0x80U) != 0)
            for (int k = 0; k < 1000; ++k)
                raw += std::string(69, static_cast<char>('a' + k % 26)) + "\r\n";
        if (i == 1)
            raw += ".dot line\r\n..\r\n.\r\n";
        bodies[i] = std::move(raw); // as queued: the session dot-encodes (or sends BDAT)
    }

    smtp::client_session s(cfg);
    std::size_t added = 0;
    std::size_t outstanding_rcpts = 0;
    bool outstanding = false;
    bool quit_called = false;
    auto add_next = [&]() {
        auto env = make_envelope(rich && added % 2 == 0, bodies[added].size());
        outstanding_rcpts = env.recipients.size();
        s.add_message(std::move(env), bodies[added]);
        outstanding = true;
        ++added;
    };
    if (messages > 0 && rng.below(2) == 0)
        add_next(); // before the first next(), as the shell usually does

    std::size_t pos = 0;
    bool input_ended = false;
    const std::size_t max_events = 2000 + 16 * size + 64 * messages;
    for (std::size_t events = 0;; ++events) {
        POSTERN_FUZZ_CHECK(events < max_events, "no end to the events");
        switch (s.next()) {
        case client_event::send: {
            POSTERN_FUZZ_CHECK(!s.output().empty(), "send with nothing to send");
            POSTERN_FUZZ_CHECK(s.output().size() <= 65536 + 8192, "output holds more than a body piece");
            if (cfg.require_tls && !s.tls_active()) {
                const auto& out = s.output();
                for (const char* verb : {"MAIL ", "RCPT ", "DATA", "BDAT ", "AUTH "})
                    POSTERN_FUZZ_CHECK(out.find(verb) == std::string::npos, "mail command in plain text with TLS required");
            }
            if (!cfg.auth_username.empty() && !s.tls_active())
                POSTERN_FUZZ_CHECK(s.output().find("AUTH ") == std::string::npos, "AUTH sent without TLS");
            s.output().clear();
            break;
        }
        case client_event::need_reply:
            POSTERN_FUZZ_CHECK(!input_ended, "reply wanted after EOF or timeout");
            if (pos == stream.size()) {
                if (rng.below(2) == 0)
                    s.peer_closed();
                else
                    s.timeout();
                input_ended = true;
                break;
            } else {
                const auto n = fuzz::chunk_length(rng, stream.size() - pos);
                s.feed(stream.substr(pos, n));
                pos += n;
            }
            break;
        case client_event::start_tls:
            POSTERN_FUZZ_CHECK(cfg.offer_starttls_allowed && !cfg.implicit_tls && !s.tls_active(),
                               "STARTTLS not allowed here");
            s.tls_started(rng.below(4) != 0);
            break;
        case client_event::message_done:
            if (outstanding) {
                POSTERN_FUZZ_CHECK(s.results().size() == outstanding_rcpts, "results do not match the recipients");
                for (const auto& r : s.results()) {
                    const int cls = r.code / 100;
                    POSTERN_FUZZ_CHECK(cls == 2 || cls == 4 || cls == 5, "result code not 2xx/4xx/5xx");
                    check_text(r.text, sec);
                    check_text(r.enhanced, sec);
                }
                outstanding = false;
            }
            check_text(s.failure().text, sec);
            if (s.failure().any)
                break; // closed comes next
            if (added < messages && !quit_called) {
                add_next();
            } else if (!quit_called) {
                s.quit();
                quit_called = true;
            }
            break;
        case client_event::closed:
            POSTERN_FUZZ_CHECK(!outstanding, "message without message_done");
            check_text(s.failure().text, sec);
            if (s.failure().any)
                POSTERN_FUZZ_CHECK(s.failure().code >= 400 && s.failure().code < 600, "failure code out of range");
            POSTERN_FUZZ_CHECK(s.next() == client_event::closed, "next() after closed did not return closed");
            return 0;
        }
    }
}
