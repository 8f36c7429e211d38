// fuzz_pop3_session — pop3::session driven as the shell will drive it, by a
// client byte stream, with arbitrary answers.
//
// Input: [config byte] [4 seed bytes] [client bytes...]. The config byte:
// bit 0 STLS offered, bits 1-2 login never/tls_only/always, bit 3 implicit
// TLS, bit 4 small limits, bit 5 the client pipelines bytes behind STLS.
// The seed drives the split of the stream into writes, the mailbox (up to 5
// messages, some with lines that need stuffing) and every answer the shell
// gives (auth verdicts, listing, message pieces or failure, update outcome,
// TLS handshake).
//
// Invariants checked: the loop ends; every output is whole lines (CRLF only)
// made of status lines ("+OK", "-ERR ", the "+ " continuation) and
// multi-line blocks ending in "." in which every line opening with "." is
// stuffed; a message unstuffed is exactly what the shell handed over (plus
// a final CRLF when missing); output is bounded by the input that caused it;
// bytes sent behind STLS are never answered (RFC 2595 4); login only inside
// TLS when so configured and never when not offered; event update only after
// a QUIT was sent, at most once, and its deletions() are exactly the
// messages DELE acknowledged since the last RSET (deletion only at QUIT).
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"

#include "postern/pop3/session.hpp"
#include "postern/util/strings.hpp"

namespace {

using namespace postern;
using pop3::event;

// Parses what the server sends, line by line, across flushes.
class reply_checker {
public:
    // Lines of a message the shell fed (unstuffed), for comparison.
    std::string message;
    bool message_done = false;
    std::set<std::size_t> deleted; // 1-based, per "+OK message n deleted"

    void feed(std::string_view out)
    {
        POSTERN_FUZZ_CHECK(fuzz::crlf_only(out), "bare CR or LF in the output");
        buf_.append(out);
        std::size_t start = 0;
        for (;;) {
            const auto end = buf_.find("\r\n", start);
            if (end == std::string::npos)
                break;
            line(std::string_view(buf_).substr(start, end - start));
            start = end + 2;
        }
        buf_.erase(0, start);
    }
    // At a point where the server waits for the client: no line half sent.
    void at_rest() const
    {
        POSTERN_FUZZ_CHECK(buf_.empty(), "output stops mid-line");
        POSTERN_FUZZ_CHECK(!in_block_, "output stops inside a multi-line block");
    }

private:
    void line(std::string_view l)
    {
        if (in_block_) {
            if (l == ".") {
                in_block_ = false;
                if (capture_)
                    message_done = true;
                return;
            }
            if (!l.empty() && l[0] == '.') {
                POSTERN_FUZZ_CHECK(l.size() >= 2 && l[1] == '.', "unstuffed line opening with '.'");
                l.remove_prefix(1);
            }
            if (capture_) {
                message.append(l);
                message.append("\r\n");
            }
            return;
        }
        if (l.starts_with("-ERR "))
            return;
        if (l == "+ ")
            return; // RFC 5034 4 continuation
        POSTERN_FUZZ_CHECK(l == "+OK" || l.starts_with("+OK "), "status line neither +OK nor -ERR");
        const auto text = l.size() > 4 ? l.substr(4) : std::string_view{};
        capture_ = text.ends_with(" octets") && text.find("messages") == std::string_view::npos;
        capture_ = capture_ || text == "top of message follows";
        in_block_ = capture_ || text == "Capability list follows" || text == "unique-id listing follows" ||
                    (text.ends_with(" octets)") && !text.starts_with("maildrop"));
        if (capture_) {
            message.clear();
            message_done = false;
        }
        if (text.starts_with("message ") && text.ends_with(" deleted")) {
            const auto n = util::parse_uint(text.substr(8, text.size() - 8 - 8));
            POSTERN_FUZZ_CHECK(n.has_value(), "DELE reply without a number");
            deleted.insert(static_cast<std::size_t>(*n));
        }
        if (text.starts_with("maildrop has "))
            deleted.clear(); // after login nothing is marked; RSET unmarks
    }

    std::string buf_;
    bool in_block_ = false;
    bool capture_ = false;
};

constexpr std::string_view bodies[] = {
    "Subject: a\r\n\r\nHello.\r\n",
    "Subject: dots\r\n\r\n.\r\n..x\r\n.y\r\nend\r\n",
    "From: b\r\n\r\nno final line end",
    "",
    "H: v\r\n\r\n\r\n.\r\n",
    "Only-Header: x\r\n",
};

pop3::auth_verdict pick_auth(fuzz::prng& rng)
{
    switch (rng.below(8)) {
    case 0: return pop3::auth_verdict::invalid;
    case 1: return pop3::auth_verdict::locked;
    case 2: return pop3::auth_verdict::in_use;
    case 3: return pop3::auth_verdict::temp_fail;
    default: return pop3::auth_verdict::ok;
    }
}

// What the shell hands over for RETR/TOP (mailbox::read_top's cut).
std::string content_for(std::string_view m, bool top, std::uint64_t lines)
{
    std::string s(m);
    if (!top)
        return s;
    std::size_t pos = 0;
    if (s.compare(0, 2, "\r\n") == 0)
        pos = 2;
    else if (auto h = s.find("\r\n\r\n"); h != std::string::npos)
        pos = h + 4;
    else
        return s;
    for (std::uint64_t i = 0; i < lines && pos < s.size(); ++i) {
        const auto eol = s.find("\r\n", pos);
        pos = eol == std::string::npos ? s.size() : eol + 2;
    }
    return s.substr(0, pos);
}

bool sent_quit(std::string_view sent)
{
    for (std::size_t i = 0; i + 4 <= sent.size(); ++i)
        if (util::iequals(sent.substr(i, 4), "QUIT"))
            return true;
    return false;
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

    pop3::session_config cfg;
    cfg.stls = (c & 0x01U) != 0;
    switch ((c >> 1U) & 0x03U) {
    case 0: cfg.auth = pop3::auth_offer::never; break;
    case 1: cfg.auth = pop3::auth_offer::tls_only; break;
    default: cfg.auth = pop3::auth_offer::always; break;
    }
    cfg.implicit_tls = (c & 0x08U) != 0;
    if ((c & 0x10U) != 0) {
        cfg.max_errors = 2;
        cfg.max_auth_failures = 1;
    }
    const bool pipeline_behind_stls = (c & 0x20U) != 0;

    std::vector<std::string_view> mailbox;
    for (std::size_t i = 0, n = rng.below(6); i < n; ++i)
        mailbox.push_back(bodies[rng.below(std::size(bodies))]);

    pop3::session s(cfg);
    s.start();
    reply_checker replies;
    std::size_t pos = 0;
    std::size_t fed_since_flush = 0;
    bool updated = false;
    bool timed_out = false;
    const std::size_t max_events = 1000 + 16 * size;
    for (std::size_t events = 0;; ++events) {
        POSTERN_FUZZ_CHECK(events < max_events, "no end to the events");
        const event e = s.next();
        switch (e) {
        case event::need_input: {
            POSTERN_FUZZ_CHECK(!timed_out && !updated, "input wanted after the end");
            // Bounded: a few hundred octets of reply per octet of command
            // (LIST/UIDL/CAPA), plus the greeting and listing.
            POSTERN_FUZZ_CHECK(s.output().size() <= 4096 + 256 * fed_since_flush, "output out of bounds");
            replies.feed(s.output());
            replies.at_rest();
            s.output().clear();
            fed_since_flush = 0;
            if (pos == stream.size()) {
                if (rng.below(4) != 0)
                    return 0; // EOF: the shell closes; nothing is deleted
                s.timeout();
                timed_out = true;
                break;
            }
            const auto n = fuzz::chunk_length(rng, stream.size() - pos);
            s.feed(stream.substr(pos, n));
            pos += n;
            fed_since_flush += n;
            break;
        }
        case event::check_auth:
            POSTERN_FUZZ_CHECK(cfg.auth != pop3::auth_offer::never, "login checked though never offered");
            if (cfg.auth == pop3::auth_offer::tls_only)
                POSTERN_FUZZ_CHECK(s.tls_active(), "login checked outside TLS with tls_only");
            POSTERN_FUZZ_CHECK(!s.pending_user().empty() && !s.pending_password().empty(), "empty credentials");
            s.answer_auth(pick_auth(rng));
            break;
        case event::need_listing: {
            POSTERN_FUZZ_CHECK(s.authenticated(), "listing before login");
            if (rng.below(16) == 0) {
                s.listing_failed();
                break;
            }
            std::vector<pop3::listing_entry> l;
            for (std::size_t i = 0; i < mailbox.size(); ++i)
                l.push_back({mailbox[i].size(), "uid" + std::to_string(i)});
            s.listing(std::move(l));
            break;
        }
        case event::retrieve: {
            POSTERN_FUZZ_CHECK(s.pending_message() < mailbox.size(), "retrieve beyond the listing");
            POSTERN_FUZZ_CHECK(replies.deleted.count(s.pending_message() + 1) == 0, "retrieve of a deleted message");
            if (rng.below(16) == 0) {
                s.message_failed();
                break;
            }
            const std::string m = content_for(mailbox[s.pending_message()], s.pending_top(), s.pending_top_lines());
            // Flush before the message, as the shell does before streaming.
            replies.feed(s.output());
            s.output().clear();
            std::size_t off = 0;
            while (off < m.size()) {
                const auto n = 1 + rng.below(m.size() - off);
                s.message_chunk(std::string_view(m).substr(off, n));
                off += n;
                replies.feed(s.output());
                s.output().clear();
            }
            s.message_end();
            replies.feed(s.output());
            s.output().clear();
            POSTERN_FUZZ_CHECK(replies.message_done, "message not terminated");
            std::string expect = m;
            if (!expect.empty() && !fuzz::ends_with_crlf(expect))
                expect += "\r\n";
            POSTERN_FUZZ_CHECK(replies.message == expect, "message altered in transit");
            break;
        }
        case event::update: {
            POSTERN_FUZZ_CHECK(!updated, "update twice");
            POSTERN_FUZZ_CHECK(sent_quit(stream.substr(0, pos)), "update without QUIT");
            replies.feed(s.output());
            s.output().clear();
            std::set<std::size_t> got;
            for (auto i : s.deletions())
                got.insert(i + 1);
            POSTERN_FUZZ_CHECK(got == replies.deleted, "deletions differ from what DELE acknowledged");
            updated = true;
            s.updated(rng.below(8) != 0);
            break;
        }
        case event::start_tls: {
            POSTERN_FUZZ_CHECK(cfg.stls && !cfg.implicit_tls, "start_tls without STLS configured");
            POSTERN_FUZZ_CHECK(s.output().ends_with("+OK begin TLS negotiation\r\n"), "STLS without its +OK last");
            replies.feed(s.output());
            replies.at_rest();
            s.output().clear();
            if (pipeline_behind_stls && pos < stream.size()) {
                const auto n = fuzz::chunk_length(rng, stream.size() - pos);
                s.feed(stream.substr(pos, n));
                pos += n;
            }
            const bool ok = rng.below(4) != 0;
            s.tls_started(ok);
            const event after = s.next();
            POSTERN_FUZZ_CHECK(s.output().empty(), "plain text answered after STLS");
            if (!ok) {
                POSTERN_FUZZ_CHECK(after == event::close, "failed handshake did not close");
                return 0;
            }
            POSTERN_FUZZ_CHECK(after == event::need_input, "plain text acted on after STLS");
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
            replies.feed(s.output());
            replies.at_rest();
            s.output().clear();
            POSTERN_FUZZ_CHECK(s.next() == event::close, "next() after close did not close");
            return 0;
        }
    }
}
