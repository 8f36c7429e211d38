#include "postern/smtp/client_session.hpp"

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

#include "transcript_text.hpp"

#include "postern/smtp/dot_encoder.hpp"
#include "postern/util/base64.hpp"

#ifndef POSTERN_TRANSCRIPT_DIR
#error "tests/smtp/meson.build defines POSTERN_TRANSCRIPT_DIR"
#endif

using namespace postern::smtp;

namespace {

using postern::smtp::transcript::read_all;
using postern::smtp::transcript::unescape;
using postern::smtp::transcript::words;

// ---------------------------------------------------------------------------
// The client transcript runner.
//
// A transcript drives a client_session through its public API as the Asio
// shell does: every send event's output() is collected and cleared, and the
// runner stops at every other event.
//
//   # comment                 blank lines and comments are ignored
//   @config key=value ...     before anything else: helo=NAME,
//                             tls=none|may|encrypt|implicit (implicit: TLS from
//                             the first byte, required), user=<C-escaped>,
//                             password=<C-escaped> (AUTH credentials), lmtp
//                             (speak LMTP, RFC 2033)
//                             (default helo=client.example tls=may, no AUTH)
//   @body <C-escaped>         the raw message of the following @message lines
//                             (default "Subject: test\r\n\r\nHi.\r\n"), given
//                             to add_message() as it is
//   @message <from> <to>... [smtputf8] [8bit] [binary] [size=N] [mail=P] [rcpt=P]
//                             add_message(); <> is the null sender; size
//                             defaults to the raw message size; mail=P adds
//                             a MAIL parameter, rcpt=P the same RCPT
//                             parameter string to every recipient. Before
//                             any S: line it is added before the first next()
//   S: <line>                 a line the server sends, CRLF added. Consecutive
//                             S: and @sraw lines form one feed()
//   @sraw <bytes>             C-escaped server bytes, no CRLF added
//   @flood N <line>           feeds line+CRLF up to N times, one feed each,
//                             while the session keeps asking for a reply
//   C: <line>                 the next line the client wrote, compared exactly
//   R: <code> [<esc>] <text>  the next recipient result at message_done
//                             (results() in order; the count is checked too)
//   @done                     the session must be at message_done
//   @next                     the shell calls next() again without an answer
//                             (after a message_done: on to closed, or idle)
//   @quit                     quit()
//   @tls ok|fail              at start_tls: tls_started()
//   @tls_active 0|1           tls_active()
//   @authenticated 0|1        authenticated()
//   @peer_closed, @timeout    the shell saw EOF / its read deadline pass
//   @caps <words>             peer(): esmtp pipelining size=N 8bitmime smtputf8
//                             starttls chunking dsn enhancedstatuscodes auth=M,M
//                             in that order, only those present ("" after HELO)
//   @failure none | next|final <code> <esc> <text>
//   @closed                   the session must be at event closed
//
// The runner fails on a client line written but not expected (checked
// before every feed and action and at the end), on one expected but not
// written, and on a feed or answer at the wrong event. With a password
// configured it also fails whenever the password, raw or base64 (alone or
// in the PLAIN response), is in any results() or failure() text, checked at
// every event.
// ---------------------------------------------------------------------------

std::string_view event_name(client_event e)
{
    switch (e) {
    case client_event::send:
        return "send";
    case client_event::need_reply:
        return "need_reply";
    case client_event::start_tls:
        return "start_tls";
    case client_event::message_done:
        return "message_done";
    case client_event::closed:
        return "closed";
    }
    return "?";
}

std::string format_result(const rcpt_result& r)
{
    auto s = std::to_string(r.code);
    if (!r.enhanced.empty())
        s += " " + r.enhanced;
    if (!r.text.empty())
        s += " " + r.text;
    return s;
}

std::string format_caps(const capabilities& c)
{
    std::string s;
    auto add = [&s](bool on, std::string_view w) {
        if (!on)
            return;
        if (!s.empty())
            s += ' ';
        s += w;
    };
    add(c.esmtp, "esmtp");
    add(c.pipelining, "pipelining");
    add(c.size, "size=" + std::to_string(c.size_limit));
    add(c.eight_bit_mime, "8bitmime");
    add(c.smtputf8, "smtputf8");
    add(c.starttls, "starttls");
    add(c.chunking, "chunking");
    add(c.dsn, "dsn");
    add(c.enhanced_status_codes, "enhancedstatuscodes");
    std::string auth;
    for (const auto& m : c.auth)
        auth += (auth.empty() ? "" : ",") + m;
    add(!c.auth.empty(), "auth=" + auth);
    return s;
}

std::string format_failure(const client_session::failure_info& f)
{
    if (!f.any)
        return "none";
    return std::string(f.try_next_host ? "next " : "final ") + std::to_string(f.code) + " " + f.enhanced + " " +
           f.text;
}

// What must never be in a result or failure text: the password, raw and as
// the base64 that goes on the wire (LOGIN's, and PLAIN's "\0user\0pass").
std::vector<std::string> secrets(const client_config& cfg)
{
    if (cfg.auth_password.empty())
        return {};
    std::string plain;
    plain.push_back('\0');
    plain += cfg.auth_username;
    plain.push_back('\0');
    plain += cfg.auth_password;
    return {cfg.auth_password, postern::util::base64_encode(cfg.auth_password), postern::util::base64_encode(plain)};
}

class client_runner {
public:
    explicit client_runner(std::string name) : name_(std::move(name))
    {
        cfg_.helo_name = "client.example";
        cfg_.offer_starttls_allowed = true;
        cfg_.require_tls = false;
    }

    std::vector<std::string> run(std::string_view text)
    {
        std::size_t pos = 0;
        while (pos <= text.size() && !fatal_) {
            auto nl = text.find('\n', pos);
            auto line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
            pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
            ++lineno_;
            if (!line.empty() && line.back() == '\r')
                line.remove_suffix(1);
            step(line);
        }
        if (!fatal_)
            finish();
        return errors_;
    }

private:
    void fail(const std::string& what) { errors_.push_back(name_ + ":" + std::to_string(lineno_) + ": " + what); }
    void fatal(const std::string& what)
    {
        fail(what);
        for (const auto& l : written_)
            fail("  unread client line: \"" + l + "\"");
        fatal_ = true;
    }

    void step(std::string_view line)
    {
        if (line.empty() || line.front() == '#')
            return;
        if (line.starts_with("S: ") || line == "S:") {
            pending_ += line.size() > 3 ? line.substr(3) : std::string_view{};
            pending_ += "\r\n";
            return;
        }
        auto sp = line.find(' ');
        std::string_view head = line.substr(0, sp);
        std::string_view rest = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
        if (head == "@sraw") {
            std::string bytes;
            if (!unescape(rest, bytes))
                return fatal("bad escape in @sraw");
            pending_ += bytes;
            return;
        }
        if (head == "@config") {
            if (started_)
                return fatal("@config after the session started");
            for (const auto& w : words(rest)) {
                if (w.starts_with("helo="))
                    cfg_.helo_name = w.substr(5);
                else if (w == "tls=none")
                    cfg_.offer_starttls_allowed = false, cfg_.require_tls = false;
                else if (w == "tls=may")
                    cfg_.offer_starttls_allowed = true, cfg_.require_tls = false;
                else if (w == "tls=encrypt")
                    cfg_.offer_starttls_allowed = true, cfg_.require_tls = true;
                else if (w == "tls=implicit")
                    cfg_.implicit_tls = true, cfg_.require_tls = true;
                else if (w.starts_with("user=") && unescape(std::string_view(w).substr(5), cfg_.auth_username))
                    continue;
                else if (w.starts_with("password=") &&
                         unescape(std::string_view(w).substr(9), cfg_.auth_password))
                    continue;
                else if (w == "lmtp")
                    cfg_.lmtp = true;
                else
                    return fatal("bad @config word " + w);
            }
            return;
        }
        if (head == "@body") {
            if (!unescape(rest, raw_body_))
                return fatal("bad escape in @body");
            return;
        }
        flush_feed();
        if (fatal_)
            return;
        if (!line.starts_with("R:"))
            check_result_count();
        if (head == "@message")
            return do_message(rest);
        ensure_started();

        if (head == "C:" || line == "C:") {
            if (written_.empty())
                return fail("expected client line was not written: \"" + std::string(rest) + "\"");
            auto got = written_.front();
            written_.pop_front();
            if (got != rest)
                fail("client line mismatch: expected \"" + std::string(rest) + "\", got \"" + got + "\"");
            return;
        }
        if (head == "R:") {
            if (!in_results_) {
                expect_event(client_event::message_done, "R:");
                if (fatal_)
                    return;
                in_results_ = true;
                result_index_ = 0;
            }
            const auto& rs = session_->results();
            if (result_index_ >= rs.size())
                return fail("more R: lines than results (" + std::to_string(rs.size()) + ")");
            auto got = format_result(rs[result_index_++]);
            if (got != rest)
                fail("result mismatch: expected \"" + std::string(rest) + "\", got \"" + got + "\"");
            return;
        }
        if (head == "@done")
            return expect_event(client_event::message_done, "@done");
        if (head == "@next") {
            expect_no_unread_lines("@next");
            return drive();
        }
        if (head == "@closed") {
            expect_event(client_event::closed, "@closed");
            if (!fatal_ && session_->next() != client_event::closed)
                fail("next() after closed did not return closed again");
            return;
        }
        if (head == "@quit") {
            expect_no_unread_lines("@quit");
            session_->quit();
            return drive();
        }
        if (head == "@tls") {
            expect_no_unread_lines("@tls");
            expect_event(client_event::start_tls, "@tls");
            if (fatal_)
                return;
            session_->tls_started(rest == "ok");
            return drive();
        }
        if (head == "@tls_active") {
            if (session_->tls_active() != (rest == "1"))
                fail("tls_active() is " + std::to_string(session_->tls_active()));
            return;
        }
        if (head == "@authenticated") {
            if (session_->authenticated() != (rest == "1"))
                fail("authenticated() is " + std::to_string(session_->authenticated()));
            return;
        }
        if (head == "@peer_closed" || head == "@timeout") {
            expect_no_unread_lines(head);
            if (head == "@peer_closed")
                session_->peer_closed();
            else
                session_->timeout();
            return drive();
        }
        if (head == "@flood") {
            auto w = rest.find(' ');
            auto n = std::stoul(std::string(rest.substr(0, w)));
            std::string l = std::string(rest.substr(w + 1)) + "\r\n";
            expect_no_unread_lines("@flood");
            for (std::size_t i = 0; i < n && last_ == client_event::need_reply; ++i) {
                session_->feed(l);
                drive();
            }
            return;
        }
        if (head == "@caps") {
            auto got = format_caps(session_->peer());
            if (got != rest)
                fail("peer() is \"" + got + "\", expected \"" + std::string(rest) + "\"");
            return;
        }
        if (head == "@failure") {
            auto got = format_failure(session_->failure());
            if (got != rest)
                fail("failure() is \"" + got + "\", expected \"" + std::string(rest) + "\"");
            return;
        }
        fatal("unknown directive: " + std::string(line));
    }

    void do_message(std::string_view rest)
    {
        envelope_out env;
        bool have_sender = false, have_size = false;
        std::string rcpt_param;
        for (const auto& w : words(rest)) {
            if (w.size() >= 2 && w.front() == '<' && w.back() == '>') {
                auto a = w.substr(1, w.size() - 2);
                if (!have_sender)
                    env.sender = a, have_sender = true;
                else
                    env.recipients.push_back(a);
            } else if (w == "smtputf8") {
                env.smtputf8 = true;
            } else if (w == "8bit") {
                env.eight_bit = true;
            } else if (w == "binary") {
                env.binary = true;
            } else if (w.starts_with("size=")) {
                env.size = std::stoull(w.substr(5));
                have_size = true;
            } else if (w.starts_with("mail=")) {
                env.mail_params.push_back(w.substr(5));
            } else if (w.starts_with("rcpt=")) {
                rcpt_param += (rcpt_param.empty() ? "" : " ") + w.substr(5);
            } else {
                return fatal("bad @message word " + w);
            }
        }
        if (!have_size)
            env.size = raw_body_.size();
        if (!rcpt_param.empty())
            env.rcpt_params.assign(env.recipients.size(), rcpt_param);
        bodies_.push_back(raw_body_);
        if (!started_) {
            session_->add_message(std::move(env), bodies_.back());
            return;
        }
        expect_no_unread_lines("@message");
        session_->add_message(std::move(env), bodies_.back());
        drive();
    }

    void ensure_started()
    {
        if (started_)
            return;
        started_ = true;
        drive();
    }

    void check_result_count()
    {
        if (!in_results_)
            return;
        in_results_ = false;
        if (result_index_ != session_->results().size())
            fail("results() has " + std::to_string(session_->results().size()) + " entries, the transcript " +
                 std::to_string(result_index_));
    }

    void expect_event(client_event e, std::string_view what)
    {
        if (last_ != e)
            fatal(std::string(what) + " but the session is at event " + std::string(event_name(last_)));
    }

    void expect_no_unread_lines(std::string_view before)
    {
        while (!written_.empty()) {
            fail("unexpected client line before " + std::string(before) + ": \"" + written_.front() + "\"");
            written_.pop_front();
        }
    }

    void flush_feed()
    {
        if (pending_.empty())
            return;
        ensure_started();
        expect_no_unread_lines("the next server write");
        if (last_ != client_event::need_reply) {
            pending_.clear();
            return fatal("the server wrote but the session is at event " + std::string(event_name(last_)));
        }
        session_->feed(pending_);
        pending_.clear();
        drive();
    }

    void check_secrets()
    {
        for (const auto& secret : secrets(cfg_)) {
            for (const auto& r : session_->results())
                if (r.text.find(secret) != std::string::npos)
                    fail("the password is in a result: \"" + format_result(r) + "\"");
            if (session_->failure().text.find(secret) != std::string::npos)
                fail("the password is in failure(): \"" + format_failure(session_->failure()) + "\"");
        }
    }

    void drive()
    {
        for (int guard = 0; guard < 100000; ++guard) {
            last_ = session_->next();
            if (last_ != client_event::send) {
                if (!session_->output().empty())
                    fail("output() not empty at event " + std::string(event_name(last_)));
                check_secrets();
                return;
            }
            if (session_->output().empty())
                return fatal("event send with empty output()");
            acc_ += session_->output();
            session_->output().clear();
            for (auto crlf = acc_.find("\r\n"); crlf != std::string::npos; crlf = acc_.find("\r\n")) {
                written_.push_back(acc_.substr(0, crlf));
                acc_.erase(0, crlf + 2);
            }
        }
        fatal("next() keeps returning send");
    }

    void finish()
    {
        ++lineno_;
        flush_feed();
        if (fatal_)
            return;
        check_result_count();
        expect_no_unread_lines("the end of the transcript");
        if (!acc_.empty())
            fail("the client wrote a partial line: \"" + acc_ + "\"");
    }

    std::string name_;
    client_config cfg_;
    std::optional<client_session> session_owner_;
    client_session* session_ = nullptr;
    bool started_ = false;
    std::string raw_body_ = "Subject: test\r\n\r\nHi.\r\n";
    std::deque<std::string> bodies_; // raw messages, alive as long as the session (stable addresses)
    std::string pending_;
    std::string acc_;
    std::deque<std::string> written_;
    client_event last_ = client_event::need_reply;
    bool in_results_ = false;
    std::size_t result_index_ = 0;
    std::size_t lineno_ = 0;
    bool fatal_ = false;
    std::vector<std::string> errors_;

public:
    // The session is built lazily so @config can come first.
    void make_session()
    {
        session_owner_.emplace(cfg_);
        session_ = &*session_owner_;
    }
    std::vector<std::string> run_all(std::string_view text)
    {
        // @config lines come first; build the session after them.
        std::size_t end = 0;
        std::string_view rest = text;
        while (!rest.empty()) {
            auto nl = rest.find('\n');
            auto line = rest.substr(0, nl);
            bool skip = line.empty() || line.front() == '#' || line.starts_with("@config") || line == "\r";
            if (!skip)
                break;
            if (line.starts_with("@config")) {
                ++lineno_;
                step(line.back() == '\r' ? line.substr(0, line.size() - 1) : line);
            } else {
                ++lineno_;
            }
            auto adv = nl == std::string_view::npos ? rest.size() : nl + 1;
            end += adv;
            rest.remove_prefix(adv);
        }
        make_session();
        return run(text.substr(end));
    }
};

std::vector<std::string> run_client_transcript(std::string name, std::string_view text)
{
    return client_runner(std::move(name)).run_all(text);
}

std::vector<std::filesystem::path> client_transcripts()
{
    return transcript::files_in(std::filesystem::path(POSTERN_TRANSCRIPT_DIR).parent_path() /
                                "client_transcripts");
}

// A plain driver for the tests written in C++: writes every send and stops
// at any other event.
struct client_driver {
    client_session s;
    std::string written;
    client_event last = client_event::need_reply;
    std::size_t largest_write = 0;

    explicit client_driver(client_config cfg) : s(std::move(cfg)) {}

    client_event run()
    {
        for (;;) {
            last = s.next();
            if (last != client_event::send)
                return last;
            largest_write = std::max(largest_write, s.output().size());
            written += s.output();
            s.output().clear();
        }
    }
    client_event reply(std::string_view bytes)
    {
        s.feed(bytes);
        return run();
    }
    std::string take()
    {
        std::string w;
        w.swap(written);
        return w;
    }
};

client_config default_config()
{
    client_config cfg;
    cfg.helo_name = "client.example";
    return cfg;
}

envelope_out simple_envelope(std::vector<std::string> rcpts)
{
    envelope_out env;
    env.sender = "alice@example.org";
    env.recipients = std::move(rcpts);
    env.size = 10;
    return env;
}

const std::string greeting_and_ehlo = "220 mx.test ESMTP\r\n";
const std::string ehlo_pipelining = "250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n";

client_config auth_config(bool implicit_tls)
{
    auto cfg = default_config();
    cfg.implicit_tls = implicit_tls;
    cfg.require_tls = implicit_tls;
    cfg.auth_username = "alice";
    cfg.auth_password = "s3cret-PW";
    return cfg;
}

// The password as the tests look for it: raw, base64 alone (LOGIN), and
// inside the PLAIN response.
const std::string_view password_forms[] = {"s3cret-PW", "czNjcmV0LVBX", "AGFsaWNlAHMzY3JldC1QVw=="};

void check_no_password(const client_session& s)
{
    for (auto form : password_forms) {
        CAPTURE(form);
        for (const auto& r : s.results())
            CHECK(r.text.find(form) == std::string::npos);
        CHECK(s.failure().text.find(form) == std::string::npos);
        CHECK(s.failure().enhanced.find(form) == std::string::npos);
    }
}

} // namespace

TEST_SUITE("smtp") {

TEST_CASE("every client transcript replays")
{
    auto files = client_transcripts();
    CHECK(files.size() >= 25);
    for (const auto& p : files) {
        const auto name = p.filename().string();
        CAPTURE(name);
        auto errors = run_client_transcript(name, read_all(p));
        for (const auto& e : errors)
            FAIL_CHECK(e);
        CHECK(errors.empty());
    }
}

TEST_CASE("the transcript runner catches what does not match")
{
    const std::string head = "@message <a@example.org> <b@x.test>\nS: 220 mx.test\nC: EHLO client.example\n";
    SUBCASE("a client line that differs")
    {
        auto e = run_client_transcript("t", "S: 220 mx.test\nC: HELO client.example\n");
        REQUIRE(e.size() == 1);
        CHECK(e[0].find("client line mismatch") != std::string::npos);
    }
    SUBCASE("a client line written but not expected")
    {
        auto e = run_client_transcript("t", "S: 220 mx.test\n");
        REQUIRE(e.size() == 1);
        CHECK(e[0].find("unexpected client line before the end") != std::string::npos);
    }
    SUBCASE("a result that differs, and too few R: lines")
    {
        auto e = run_client_transcript("t", head + "S: 421 4.3.2 bye\nR: 421 4.3.2 bye\n@next\n@closed\n");
        REQUIRE(e.size() == 1);
        CHECK(e[0].find("result mismatch") != std::string::npos);
        e = run_client_transcript("t", "@message <a@example.org> <b@x.test> <c@x.test>\nS: 421 4.3.2 bye\n"
                                       "R: 421 4.3.2 bye (greeting)\n@next\n");
        REQUIRE(e.size() == 1);
        CHECK(e[0].find("results() has 2 entries, the transcript 1") != std::string::npos);
    }
    SUBCASE("a server line while the client is not reading")
    {
        auto e = run_client_transcript("t", "S: 220 mx.test\nC: EHLO client.example\nS: 250 mx.test\n@done\n"
                                            "S: 250 again\n");
        REQUIRE(e.size() == 1);
        CHECK(e[0].find("the server wrote but the session is at event message_done") != std::string::npos);
    }
}

TEST_CASE("garbage replies close the session as a protocol error and defer the message")
{
    const std::string garbage[] = {"hello\r\n", "99 x\r\n", "2500 x\r\n", "250-a\r\n251 b\r\n",
                                   "354 go on\r\n", "250-" + std::string(600, 'x') + "\r\n"};
    for (const auto& g : garbage) {
        CAPTURE(g);
        client_driver d(default_config());
        d.s.add_message(simple_envelope({"b@x.test"}), "");
        CHECK(d.run() == client_event::need_reply);
        CHECK(d.reply(greeting_and_ehlo) == client_event::need_reply);
        CHECK(d.take() == "EHLO client.example\r\n");
        CHECK(d.reply(g) == client_event::message_done);
        REQUIRE(d.s.results().size() == 1);
        CHECK(d.s.results()[0].code == 421);
        CHECK(d.s.results()[0].enhanced == "4.5.0");
        CHECK(d.s.failure().any);
        CHECK(d.s.failure().try_next_host);
        CHECK(d.s.failure().text.starts_with("protocol error: "));
        CHECK(d.run() == client_event::closed);
        CHECK(d.take().empty()); // out of step: no QUIT
    }
}

TEST_CASE("a peer that floods us while we wait is cut off with memory bounded")
{
    client_driver d(default_config());
    CHECK(d.run() == client_event::need_reply);
    // Complete replies: each one is read as it comes, so the flood is 250s
    // answered one by one — the session must not sit on megabytes.
    d.s.feed(greeting_and_ehlo);
    CHECK(d.run() == client_event::need_reply);
    const std::string piece(64 * 1024, 'x');
    d.s.feed("250-");
    for (int i = 0; i < 10; ++i)
        d.s.feed(piece);
    CHECK(d.run() == client_event::closed);
    CHECK(d.s.failure().text.starts_with("protocol error: "));
}

TEST_CASE("feeding the replies one octet at a time gives the same conversation")
{
    const std::string replies = "220 mx.test ESMTP\r\n250-mx.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n"
                                "250 Ok\r\n250 Ok\r\n550 5.1.1 no\r\n354 go\r\n250 2.0.0 queued\r\n221 Bye\r\n";
    const std::string body = ".hello\r\n";
    auto conversation = [&](bool bytewise) {
        client_driver d(default_config());
        d.s.add_message(simple_envelope({"b@x.test", "c@x.test"}), body);
        d.s.quit();
        d.run();
        if (bytewise) {
            for (char c : replies) {
                if (d.last != client_event::need_reply)
                    break;
                d.reply(std::string_view(&c, 1));
                if (d.last == client_event::message_done)
                    d.run();
            }
        } else {
            // Pipelined replies may come in whatever pieces; the group
            // answers in one, then the rest.
            d.reply(replies.substr(0, 70));
            d.reply(replies.substr(70));
            if (d.last == client_event::message_done)
                d.run();
        }
        return d.written + "|" + std::string(event_name(d.last)) + "|" + std::to_string(d.s.messages());
    };
    auto whole = conversation(false);
    CHECK(whole == conversation(true));
    CHECK(whole == "EHLO client.example\r\nMAIL FROM:<alice@example.org> SIZE=10\r\nRCPT TO:<b@x.test>\r\n"
                   "RCPT TO:<c@x.test>\r\nDATA\r\n..hello\r\n.\r\nQUIT\r\n|closed|1");
}

TEST_CASE("a large body goes out in bounded pieces, unchanged")
{
    std::string raw;
    for (int i = 0; i < 40000; ++i)
        raw += (i % 7 == 0 ? ".line " : "line ") + std::to_string(i) + "\r\n";
    std::string body;
    dot_encode(raw, body);
    REQUIRE(body.size() > 4 * 64 * 1024);
    client_driver d(default_config());
    auto env = simple_envelope({"b@x.test"});
    env.size = raw.size();
    d.s.add_message(env, raw);
    d.run();
    d.reply(greeting_and_ehlo + ehlo_pipelining);
    d.take();
    d.largest_write = 0;
    CHECK(d.reply("250 Ok\r\n250 Ok\r\n354 go\r\n") == client_event::need_reply);
    CHECK(d.take() == body);
    CHECK(d.largest_write <= 64 * 1024);
    CHECK(d.s.read_timeout() == std::chrono::seconds(600));
    CHECK(d.reply("250 Ok\r\n") == client_event::message_done);
    CHECK(d.s.results()[0].code == 250);
}

TEST_CASE("read_timeout() follows RFC 5321 4.5.3.2 for the reply awaited")
{
    client_driver d(default_config());
    d.s.add_message(simple_envelope({"b@x.test"}), "");
    d.run();
    CHECK(d.s.read_timeout() == std::chrono::seconds(300)); // greeting
    d.reply(greeting_and_ehlo + "250 mx.test\r\n");
    CHECK(d.s.read_timeout() == std::chrono::seconds(300)); // MAIL
    d.reply("250 Ok\r\n250 Ok\r\n");
    CHECK(d.s.read_timeout() == std::chrono::seconds(120)); // DATA initiation
    d.reply("354 go\r\n");
    CHECK(d.s.read_timeout() == std::chrono::seconds(600)); // DATA termination
}

TEST_CASE("with DATA the message is dot-encoded as it goes out: the terminator cannot be forged")
{
    struct sample {
        std::string_view raw;
        std::string_view wire;
    };
    for (const auto& t : {sample{"", ".\r\n"}, sample{"x\r\n", "x\r\n.\r\n"}, sample{"x", "x\r\n.\r\n"},
                          sample{"x\r\n.\n", "x\r\n..\r\n.\r\n"}, sample{"a\n.\nb\r\n", "a\r\n..\r\nb\r\n.\r\n"},
                          sample{".\r\n", "..\r\n.\r\n"}}) {
        CAPTURE(t.raw);
        client_driver d(default_config());
        d.s.add_message(simple_envelope({"b@x.test"}), t.raw);
        d.run();
        d.reply(greeting_and_ehlo + ehlo_pipelining);
        d.take();
        CHECK(d.reply("250 Ok\r\n250 Ok\r\n354 go\r\n") == client_event::need_reply);
        CHECK(d.take() == t.wire);
        CHECK(d.reply("250 Ok\r\n") == client_event::message_done);
        CHECK(d.s.results()[0].code == 250);
    }
}

TEST_CASE("control characters in a path cannot inject commands")
{
    client_driver d(default_config());
    d.run();
    d.reply(greeting_and_ehlo + ehlo_pipelining);
    CHECK(d.take() == "EHLO client.example\r\n");
    d.s.add_message(simple_envelope({"b@x.test>\r\nRCPT TO:<evil@x.test", "c@x.test"}), "");
    CHECK(d.run() == client_event::need_reply);
    CHECK(d.take() == "MAIL FROM:<alice@example.org>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n");
    CHECK(d.reply("250 Ok\r\n250 Ok\r\n354 go\r\n250 Ok\r\n") == client_event::message_done);
    REQUIRE(d.s.results().size() == 2);
    CHECK(d.s.results()[0].code == 553);
    CHECK(d.s.results()[0].enhanced == "5.1.3");
    CHECK(d.s.results()[1].code == 250);
    CHECK(d.take() == ".\r\n");

    auto env = simple_envelope({"c@x.test"});
    env.sender = "a@x.test>\r\nQUIT";
    d.s.add_message(env, "");
    CHECK(d.run() == client_event::message_done);
    CHECK(d.take().empty());
    CHECK(d.s.results()[0].code == 553);
    CHECK(d.s.results()[0].enhanced == "5.1.7");
}

TEST_CASE("message_done without a message added means ready, with no results")
{
    client_driver d(default_config());
    d.run();
    CHECK(d.reply(greeting_and_ehlo + "250 mx.test\r\n") == client_event::message_done);
    CHECK(d.s.results().empty());
    CHECK(d.run() == client_event::message_done);
    d.s.add_message(simple_envelope({}), "");
    CHECK(d.run() == client_event::message_done); // no recipients: nothing to do
    CHECK(d.s.results().empty());
    CHECK(d.take() == "EHLO client.example\r\n");
}

TEST_CASE("a second add_message() while one is in flight is ignored")
{
    client_driver d(default_config());
    d.s.add_message(simple_envelope({"b@x.test"}), "");
    d.run();
    d.reply(greeting_and_ehlo + ehlo_pipelining);
    d.take();
    d.s.add_message(simple_envelope({"x@x.test", "y@x.test"}), "");
    CHECK(d.reply("250 Ok\r\n250 Ok\r\n354 go\r\n250 Ok\r\n") == client_event::message_done);
    CHECK(d.s.results().size() == 1);
    CHECK(d.take() == ".\r\n");
}

TEST_CASE("peer_closed() after QUIT is a clean end, not a failure")
{
    client_driver d(default_config());
    d.run();
    d.reply(greeting_and_ehlo + "250 mx.test\r\n");
    d.s.quit();
    CHECK(d.run() == client_event::need_reply);
    CHECK(d.take() == "EHLO client.example\r\nQUIT\r\n");
    d.s.peer_closed();
    CHECK(d.run() == client_event::closed);
    CHECK_FALSE(d.s.failure().any);
    SUBCASE("and a message added after close is deferred at once")
    {
        d.s.add_message(simple_envelope({"b@x.test"}), "");
        CHECK(d.run() == client_event::message_done);
        REQUIRE(d.s.results().size() == 1);
        CHECK(d.s.results()[0].code == 421);
        CHECK(d.run() == client_event::closed);
        CHECK(d.take().empty());
    }
}

TEST_CASE("EHLO capabilities are parsed case-insensitively")
{
    client_driver d(default_config());
    d.run();
    d.reply(greeting_and_ehlo + "250-mx.test greets you\r\n250-pipelining\r\n250-Size 12345\r\n"
                                "250-8bitmime\r\n250-smtputf8\r\n250-chunking\r\n250-BINARYMIME\r\n"
                                "250-dsn\r\n250-enhancedstatuscodes\r\n250-X-UNKNOWN foo\r\n"
                                "250 auth plain login CRAM-MD5\r\n");
    const auto& c = d.s.peer();
    CHECK(c.esmtp);
    CHECK(c.pipelining);
    CHECK(c.size);
    CHECK(c.size_limit == 12345);
    CHECK(c.eight_bit_mime);
    CHECK(c.smtputf8);
    CHECK(c.chunking);
    CHECK(c.binarymime);
    CHECK(c.dsn);
    CHECK(c.enhanced_status_codes);
    CHECK_FALSE(c.starttls);
    CHECK(c.auth == std::vector<std::string>{"PLAIN", "LOGIN", "CRAM-MD5"});
}

TEST_CASE("AUTH PLAIN puts exactly base64(NUL user NUL password) on the wire, then pipelines the message")
{
    client_driver d(auth_config(true));
    CHECK(d.s.tls_active()); // implicit TLS: from the first byte
    d.s.add_message(simple_envelope({"b@x.test", "c@x.test"}), "");
    CHECK(d.run() == client_event::need_reply);
    CHECK(d.reply(greeting_and_ehlo + "250-mx.test\r\n250-PIPELINING\r\n250-STARTTLS\r\n250 AUTH LOGIN PLAIN\r\n") ==
          client_event::need_reply);
    CHECK(d.take() == "EHLO client.example\r\nAUTH PLAIN AGFsaWNlAHMzY3JldC1QVw==\r\n");
    CHECK(d.s.read_timeout() == std::chrono::seconds(300));
    CHECK_FALSE(d.s.authenticated());
    d.largest_write = 0;
    CHECK(d.reply("235 2.7.0 Authentication successful\r\n") == client_event::need_reply);
    CHECK(d.s.authenticated());
    // RFC 2920: MAIL, both RCPTs and DATA in one write after the 235.
    const std::string group = "MAIL FROM:<alice@example.org>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n";
    CHECK(d.largest_write == group.size());
    CHECK(d.take() == group);
    CHECK(d.reply("250 Ok\r\n250 Ok\r\n250 Ok\r\n354 go\r\n") == client_event::need_reply);
    CHECK(d.take() == ".\r\n");
    CHECK(d.reply("250 2.0.0 queued\r\n") == client_event::message_done);
    REQUIRE(d.s.results().size() == 2);
    CHECK(d.s.results()[1].code == 250);
    CHECK(d.s.messages() == 1);
}

TEST_CASE("without AUTH configured the AUTH capability is not used")
{
    auto cfg = default_config();
    cfg.implicit_tls = true;
    client_driver d(cfg);
    d.run();
    CHECK(d.reply(greeting_and_ehlo + "250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n") == client_event::message_done);
    CHECK(d.take() == "EHLO client.example\r\n");
    CHECK_FALSE(d.s.authenticated());
}

TEST_CASE("no AUTH without TLS: nothing secret is sent and the connection fails")
{
    SUBCASE("STARTTLS not offered")
    {
        client_driver d(auth_config(false));
        d.s.add_message(simple_envelope({"b@x.test"}), "");
        d.run();
        CHECK(d.reply(greeting_and_ehlo + "250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n") == client_event::message_done);
        CHECK(d.take() == "EHLO client.example\r\nQUIT\r\n");
        REQUIRE(d.s.results().size() == 1);
        CHECK(d.s.results()[0].code / 100 == 4);
        CHECK(d.s.failure().enhanced == "4.7.11");
        CHECK(d.s.failure().text.starts_with("TLS required for AUTH"));
        CHECK(d.s.failure().try_next_host);
    }
    SUBCASE("tls=none ignores an offered STARTTLS, so AUTH cannot happen")
    {
        auto cfg = auth_config(false);
        cfg.offer_starttls_allowed = false;
        client_driver d(cfg);
        d.run();
        CHECK(d.reply(greeting_and_ehlo + "250-mx.test\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n") == client_event::need_reply);
        CHECK(d.take() == "EHLO client.example\r\nQUIT\r\n");
        CHECK(d.s.failure().enhanced == "4.7.11");
    }
}

TEST_CASE("credentials PLAIN cannot carry are a configuration failure, sent nowhere")
{
    auto cfg = auth_config(true);
    SUBCASE("NUL in the username") { cfg.auth_username = std::string("al\0ice", 6); }
    SUBCASE("NUL in the password") { cfg.auth_password = std::string("s3cret\0PW", 9); }
    SUBCASE("a password over 255 octets") { cfg.auth_password = std::string(256, 'p'); }
    client_driver d(cfg);
    d.s.add_message(simple_envelope({"b@x.test"}), "");
    d.run();
    CHECK(d.reply(greeting_and_ehlo + "250-mx.test\r\n250 AUTH PLAIN LOGIN\r\n") == client_event::message_done);
    CHECK(d.take() == "EHLO client.example\r\nQUIT\r\n");
    REQUIRE(d.s.results().size() == 1);
    CHECK(d.s.results()[0].code / 100 == 4);
    CHECK_FALSE(d.s.failure().try_next_host);
}

TEST_CASE("the password appears in no result or failure text, whatever goes wrong during AUTH")
{
    struct scenario {
        std::string_view name;
        std::string_view ehlo_auth;
        std::vector<std::string_view> replies; // after the EHLO reply; "" = peer_closed, "T" = timeout
    };
    const scenario scenarios[] = {
        {"535 echoing the PLAIN response", "PLAIN", {"535 5.7.8 bad AGFsaWNlAHMzY3JldC1QVw==\r\n"}},
        {"454 echoing the password", "PLAIN", {"454 4.7.0 s3cret-PW is not it\r\n"}},
        {"421 echoing the password", "PLAIN", {"421 4.7.0 no s3cret-PW\r\n"}},
        {"a garbage reply echoing the password", "PLAIN", {"s3cret-PW\r\n"}},
        {"a 250 echoing the password", "PLAIN", {"250 s3cret-PW\r\n"}},
        {"334 after the PLAIN response", "PLAIN", {"334 czNjcmV0LVBX\r\n", "501 s3cret-PW\r\n"}},
        {"LOGIN 535 echoing base64", "LOGIN", {"334 x\r\n", "334 y\r\n", "535 5.7.8 czNjcmV0LVBX\r\n"}},
        {"LOGIN 334 after the password", "LOGIN", {"334 x\r\n", "334 y\r\n", "334 z\r\n", "501 no\r\n"}},
        {"LOGIN peer gone after the password", "LOGIN", {"334 x\r\n", "334 y\r\n", ""}},
        {"LOGIN timeout after the password", "LOGIN", {"334 x\r\n", "334 y\r\n", "T"}},
        {"peer gone after the PLAIN response", "PLAIN", {""}},
    };
    for (const auto& sc : scenarios) {
        CAPTURE(sc.name);
        client_driver d(auth_config(true));
        d.s.add_message(simple_envelope({"b@x.test", "c@x.test"}), "");
        d.run();
        d.reply(greeting_and_ehlo + "250-mx.test\r\n250 AUTH " + std::string(sc.ehlo_auth) + "\r\n");
        for (auto r : sc.replies) {
            if (d.last != client_event::need_reply)
                break;
            if (r.empty())
                d.s.peer_closed();
            else if (r == "T")
                d.s.timeout();
            else
                d.s.feed(r);
            d.run();
        }
        CHECK(d.last == client_event::message_done);
        REQUIRE(d.s.results().size() == 2);
        for (const auto& r : d.s.results())
            CHECK(r.code / 100 == 4); // deferred, never bounced
        CHECK(d.s.failure().any);
        CHECK_FALSE(d.s.authenticated());
        check_no_password(d.s);
        // Later messages on the dead connection inherit the failure text.
        d.run();
        d.s.add_message(simple_envelope({"late@x.test"}), "");
        CHECK(d.run() == client_event::message_done);
        check_no_password(d.s);
    }
}

TEST_CASE("after AUTH the peer's echo of the password in a transaction reply is scrubbed too")
{
    client_driver d(auth_config(true));
    d.s.add_message(simple_envelope({"b@x.test"}), "");
    d.run();
    d.reply(greeting_and_ehlo + "250-mx.test\r\n250 AUTH PLAIN\r\n");
    d.reply("235 ok\r\n");
    CHECK(d.reply("250 Ok\r\n250 Ok\r\n354 go\r\n") == client_event::need_reply);
    CHECK(d.reply("550 5.7.1 user alice (password s3cret-PW) may not send\r\n") == client_event::message_done);
    REQUIRE(d.s.results().size() == 1);
    CHECK(d.s.results()[0].text == "user alice (password ***) may not send");
    check_no_password(d.s);
}

// ---------------------------------------------------------------------------
// BDAT (RFC 3030) and LMTP (RFC 2033): what transcripts cannot show well
// (many chunks, octets that are not text).
// ---------------------------------------------------------------------------

namespace {

const std::string ehlo_chunking = "250-mx.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 CHUNKING\r\n";

// The BDAT commands in what the client wrote, with their sizes, and the
// octets that followed them, concatenated.
struct chunks {
    std::vector<std::string> commands;
    std::string data;
};

chunks split_chunks(std::string_view written)
{
    chunks c;
    for (auto at = written.find("BDAT "); at != std::string_view::npos; at = written.find("BDAT ")) {
        written.remove_prefix(at);
        auto eol = written.find("\r\n");
        auto cmd = std::string(written.substr(0, eol));
        auto n = std::stoul(cmd.substr(5));
        c.commands.push_back(cmd);
        c.data.append(written.substr(eol + 2, n));
        written.remove_prefix(eol + 2 + n);
    }
    return c;
}

std::string big_message()
{
    std::string raw;
    for (int i = 0; i < 6000; ++i)
        raw += (i % 5 == 0 ? ".line " : "line ") + std::to_string(i) + "\n"; // bare LF, leading dots
    return raw;
}

} // namespace

TEST_CASE("BDAT sends a large message unchanged in chunks of at most 64 KiB, pipelined within a window")
{
    std::string raw;
    for (int i = 0; i < 6; ++i)
        raw += big_message();
    REQUIRE(raw.size() > 5 * 64 * 1024);
    client_driver d(default_config());
    auto env = simple_envelope({"b@x.test", "c@x.test"});
    env.size = raw.size();
    d.s.add_message(env, raw);
    d.run();
    CHECK(d.reply(greeting_and_ehlo + ehlo_chunking) == client_event::need_reply);
    // Commands and the first chunks went out before any reply: at most four
    // chunks ahead of their replies.
    std::string all = d.take();
    CHECK(all.starts_with("EHLO client.example\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<b@x.test>\r\n"
                          "RCPT TO:<c@x.test>\r\nBDAT 65536\r\n"));
    auto first = split_chunks(all);
    CHECK(first.commands.size() == 4);
    CHECK(d.largest_write <= 64 * 1024 + 128);
    CHECK(d.reply("250 Ok\r\n250 Ok\r\n250 Ok\r\n") == client_event::need_reply);
    CHECK(d.take().empty()); // the window is full
    CHECK(d.reply("250 Ok\r\n") == client_event::need_reply);
    all += d.written;
    CHECK(split_chunks(d.take()).commands.size() == 1); // one more chunk per chunk answered
    for (int i = 0; i < 8; ++i) {
        if (d.last != client_event::need_reply)
            break;
        d.reply("250 Ok\r\n");
        all += d.take();
    }
    CHECK(d.last == client_event::message_done);
    auto c = split_chunks(all);
    CHECK(c.data == raw); // no dot-stuffing, bare LFs as they are
    REQUIRE(c.commands.size() == (raw.size() + 65535) / 65536);
    for (std::size_t i = 0; i + 1 < c.commands.size(); ++i)
        CHECK(c.commands[i] == "BDAT 65536");
    CHECK(c.commands.back() == "BDAT " + std::to_string(raw.size() % 65536) + " LAST");
    CHECK(d.largest_write <= 64 * 1024 + 128);
    REQUIRE(d.s.results().size() == 2);
    CHECK(d.s.results()[0].code == 250);
    CHECK(d.s.results()[1].code == 250);
    CHECK(d.s.messages() == 1);
}

TEST_CASE("a refused chunk stops the chunks and is the result of every accepted recipient")
{
    const auto raw = big_message() + big_message() + big_message() + big_message() + big_message();
    SUBCASE("pipelined: the replies to chunks already sent are read and ignored")
    {
        client_driver d(default_config());
        d.s.add_message(simple_envelope({"b@x.test", "c@x.test"}), raw);
        d.run();
        d.reply(greeting_and_ehlo + ehlo_chunking);
        d.take();
        CHECK(d.reply("250 Ok\r\n250 Ok\r\n550 5.1.1 no c\r\n452 4.3.1 out of space\r\n") ==
              client_event::need_reply);
        CHECK(d.take().empty()); // no chunk after the refusal
        CHECK(d.reply("503 5.5.1 bad sequence\r\n503 5.5.1 bad sequence\r\n") == client_event::need_reply);
        CHECK(d.reply("503 5.5.1 bad sequence\r\n") == client_event::message_done);
        REQUIRE(d.s.results().size() == 2);
        CHECK(format_result(d.s.results()[0]) == "452 4.3.1 out of space");
        CHECK(format_result(d.s.results()[1]) == "550 5.1.1 no c");
        // The transaction may be open at the server: RSET first.
        d.s.add_message(simple_envelope({"b@x.test"}), "x\r\n");
        d.run();
        CHECK(d.take().starts_with("RSET\r\nMAIL FROM:<alice@example.org>\r\n"));
    }
    SUBCASE("lock-step: the next chunk waits for the reply to this one")
    {
        client_driver d(default_config());
        d.s.add_message(simple_envelope({"b@x.test"}), raw);
        d.run();
        d.reply(greeting_and_ehlo + "250-mx.test\r\n250 CHUNKING\r\n");
        CHECK(d.take() == "EHLO client.example\r\nMAIL FROM:<alice@example.org>\r\n");
        CHECK(d.reply("250 Ok\r\n") == client_event::need_reply);
        CHECK(d.take() == "RCPT TO:<b@x.test>\r\n");
        CHECK(d.reply("250 Ok\r\n") == client_event::need_reply);
        CHECK(split_chunks(d.take()).commands == std::vector<std::string>{"BDAT 65536"});
        CHECK(d.reply("250 Ok\r\n") == client_event::need_reply);
        CHECK(split_chunks(d.take()).commands == std::vector<std::string>{"BDAT 65536"});
        CHECK(d.reply("554 5.3.4 message too big\r\n") == client_event::message_done);
        CHECK(d.take().empty());
        CHECK(format_result(d.s.results()[0]) == "554 5.3.4 message too big");
    }
}

TEST_CASE("BINARYMIME octets go with BDAT as they are; an empty message is BDAT 0 LAST")
{
    const std::string binary("\0\r\x01\n\r\n\xff.\r\n.", 11);
    client_driver d(default_config());
    auto env = simple_envelope({"b@x.test"});
    env.binary = true;
    env.eight_bit = true;
    d.s.add_message(env, binary);
    d.run();
    d.reply(greeting_and_ehlo + "250-mx.test\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 BINARYMIME\r\n");
    CHECK(d.take() == "EHLO client.example\r\nMAIL FROM:<alice@example.org> BODY=BINARYMIME\r\nRCPT TO:<b@x.test>\r\n"
                      "BDAT 11 LAST\r\n" + binary);
    CHECK(d.reply("250 Ok\r\n250 Ok\r\n250 Ok\r\n") == client_event::message_done);
    CHECK(d.s.results()[0].code == 250);
    d.s.add_message(simple_envelope({"b@x.test"}), "");
    d.run();
    CHECK(d.take() == "MAIL FROM:<alice@example.org>\r\nRCPT TO:<b@x.test>\r\nBDAT 0 LAST\r\n");
    CHECK(d.s.read_timeout() == std::chrono::seconds(300)); // MAIL
    d.reply("250 Ok\r\n250 Ok\r\n");
    CHECK(d.s.read_timeout() == std::chrono::seconds(600)); // BDAT LAST: as the final dot
    CHECK(d.reply("250 Ok\r\n") == client_event::message_done);
    CHECK(d.s.messages() == 2);
}

TEST_CASE("LMTP: a 354 with no recipient accepted is out of step, since LMTP refuses DATA then")
{
    auto cfg = default_config();
    cfg.lmtp = true;
    client_driver d(cfg);
    d.s.add_message(simple_envelope({"b@x.test"}), "x\r\n");
    d.run();
    CHECK(d.reply("220 lmtp.test\r\n250-lmtp.test\r\n250 PIPELINING\r\n") == client_event::need_reply);
    CHECK(d.take() == "LHLO client.example\r\nMAIL FROM:<alice@example.org>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n");
    CHECK(d.reply("250 Ok\r\n550 5.1.1 unknown\r\n354 go\r\n") == client_event::message_done);
    CHECK(format_result(d.s.results()[0]) == "550 5.1.1 unknown");
    CHECK(d.s.failure().any);
    CHECK(d.s.failure().text.starts_with("protocol error: "));
    CHECK(d.run() == client_event::closed);
}

TEST_CASE("LMTP: AUTH credentials and required TLS are not used")
{
    auto cfg = auth_config(false);
    cfg.lmtp = true;
    cfg.require_tls = true;
    client_driver d(cfg);
    d.s.add_message(simple_envelope({"b@x.test"}), "x\r\n");
    d.run();
    CHECK(d.reply("220 lmtp.test\r\n250-lmtp.test\r\n250-STARTTLS\r\n250 AUTH PLAIN\r\n") == client_event::need_reply);
    CHECK(d.take() == "LHLO client.example\r\nMAIL FROM:<alice@example.org>\r\n");
}

} // TEST_SUITE
