#include "postern/pop3/session.hpp"

#include <deque>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <doctest/doctest.h>

// The text helpers of the SMTP transcript runners are protocol-free (C
// escapes, words, reading files): shared rather than copied.
#include "../smtp/transcript_text.hpp"

#ifndef POSTERN_POP3_TRANSCRIPT_DIR
#error "tests/pop3/meson.build defines POSTERN_POP3_TRANSCRIPT_DIR"
#endif

using namespace postern::pop3;

namespace {

using postern::smtp::transcript::files_in;
using postern::smtp::transcript::read_all;
using postern::smtp::transcript::unescape;
using postern::smtp::transcript::words;

// ---------------------------------------------------------------------------
// The transcript runner: drives a pop3::session as the shell will.
//
//   # comment                  blank lines and comments are ignored
//   @config key=value ...      before anything else: stls, implicit_tls (0|1),
//                              auth (never|tls_only|always), max_errors,
//                              max_auth_failures
//   @message <uid> <bytes>     before anything else: a message of the mailbox
//                              (C-escaped); its size is its length
//   C: <line>                  client line, sent with CRLF; consecutive C: and
//                              @raw lines form one write (pipelining)
//   @raw <bytes>               C-escaped bytes, no CRLF added
//   @flush                     ends the current write
//   S: <line>                  the next reply line, compared exactly
//   @auth <verdict> [user [password...]]
//                              answers check_auth (ok invalid locked in_use
//                              temp_fail) after checking the pending credentials
//   @listing ok|fail           answers need_listing with the @message list
//   @retrieve <n> [top <lines>] | fail
//                              answers retrieve after checking what is asked
//                              (n from 1), feeding the message 7 octets at a time
//   @update ok|fail <n,n,...|-> [seen <n,n,...|->]
//                              answers update after checking deletions() (and
//                              retrieved()), numbers from 1
//   @starttls                  the session must be at event start_tls
//   @tls ok|fail               answers start_tls
//   @timeout                   the read deadline passed
//   @closed                    the session must have returned event::close
//
// Replies are seen when the session returns need_input, close or start_tls
// (the shell never writes at check_auth and the like), so the replies to a
// pipelined group come after the group's answers.
// ---------------------------------------------------------------------------

std::string_view event_name(event e)
{
    switch (e) {
    case event::need_input:
        return "need_input";
    case event::check_auth:
        return "check_auth";
    case event::need_listing:
        return "need_listing";
    case event::retrieve:
        return "retrieve";
    case event::update:
        return "update";
    case event::start_tls:
        return "start_tls";
    case event::close:
        return "close";
    }
    return "?";
}

// "1,3" → {0, 2}; "-" → {}.
std::vector<std::size_t> indices(std::string_view s)
{
    std::vector<std::size_t> out;
    if (s == "-")
        return out;
    std::size_t pos = 0;
    while (pos <= s.size()) {
        auto comma = s.find(',', pos);
        auto part = s.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
        out.push_back(std::stoul(std::string(part)) - 1);
        if (comma == std::string_view::npos)
            break;
        pos = comma + 1;
    }
    return out;
}

// The header, the blank line and n body lines (what mailbox::read_top gives).
std::string top_of(const std::string& m, std::uint64_t n)
{
    auto h = m.find("\r\n\r\n");
    if (h == std::string::npos)
        return m;
    std::size_t pos = h + 4;
    for (std::uint64_t i = 0; i < n && pos < m.size(); ++i) {
        auto eol = m.find("\r\n", pos);
        pos = eol == std::string::npos ? m.size() : eol + 2;
    }
    return m.substr(0, pos);
}

class transcript_runner {
public:
    explicit transcript_runner(std::string name) : name_(std::move(name)) {}

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
        if (!fatal_) {
            ensure_started();
            flush_write();
            for (const auto& r : replies_)
                fail("unexpected reply at the end: \"" + r + "\"");
        }
        return errors_;
    }

private:
    void fail(const std::string& what) { errors_.push_back(name_ + ":" + std::to_string(lineno_) + ": " + what); }
    void fatal(const std::string& what)
    {
        fail(what);
        fatal_ = true;
    }

    void step(std::string_view line)
    {
        if (line.empty() || line.front() == '#')
            return;
        if (line.starts_with("C: ") || line == "C:") {
            pending_ += line.size() > 3 ? line.substr(3) : std::string_view{};
            pending_ += "\r\n";
            return;
        }
        auto sp = line.find(' ');
        std::string_view head = line.substr(0, sp);
        std::string_view rest = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
        if (head == "@raw") {
            std::string bytes;
            if (!unescape(rest, bytes))
                return fatal("bad escape in @raw");
            pending_ += bytes;
            return;
        }
        if (head == "@config" || head == "@message") {
            if (session_)
                return fatal(std::string(head) + " after the session started");
            if (head == "@message") {
                auto msp = rest.find(' ');
                std::string bytes;
                if (msp == std::string_view::npos || !unescape(rest.substr(msp + 1), bytes))
                    return fatal("bad @message");
                mailbox_.push_back({std::string(rest.substr(0, msp)), bytes});
                return;
            }
            for (const auto& w : words(rest)) {
                auto eq = w.find('=');
                if (eq == std::string::npos)
                    return fatal("bad @config word " + w);
                auto key = w.substr(0, eq);
                auto value = w.substr(eq + 1);
                if (key == "auth")
                    cfg_.auth = value == "never" ? auth_offer::never
                                : value == "always" ? auth_offer::always
                                                    : auth_offer::tls_only;
                else if (key == "stls")
                    cfg_.stls = value == "1";
                else if (key == "implicit_tls")
                    cfg_.implicit_tls = value == "1";
                else if (key == "max_errors")
                    cfg_.max_errors = static_cast<std::uint32_t>(std::stoul(value));
                else if (key == "max_auth_failures")
                    cfg_.max_auth_failures = static_cast<std::uint32_t>(std::stoul(value));
                else
                    return fatal("unknown @config key " + key);
            }
            return;
        }
        ensure_started();
        flush_write();
        if (fatal_)
            return;
        if (head == "S:" || line == "S:") {
            if (replies_.empty())
                return fail("expected reply did not come: \"" + std::string(rest) + "\" (at event " +
                            std::string(event_name(last_)) + ")");
            auto got = replies_.front();
            replies_.pop_front();
            if (got != rest)
                fail("reply mismatch: expected \"" + std::string(rest) + "\", got \"" + got + "\"");
            return;
        }
        if (head == "@flush")
            return;
        auto w = words(rest);
        if (head == "@auth") {
            if (!expect(event::check_auth) || w.empty())
                return fatal("bad @auth");
            if (w.size() > 1 && session_->pending_user() != w[1])
                fail("pending user is \"" + session_->pending_user() + "\", expected " + w[1]);
            if (w.size() > 2) {
                // The password is the rest of the line (it may hold spaces).
                std::string pw = w[2];
                for (std::size_t i = 3; i < w.size(); ++i)
                    pw += " " + w[i];
                if (session_->pending_password() != pw)
                    fail("pending password is \"" + session_->pending_password() + "\", expected " + pw);
            }
            const auto& v = w[0];
            session_->answer_auth(v == "ok"        ? auth_verdict::ok
                                  : v == "invalid" ? auth_verdict::invalid
                                  : v == "locked"  ? auth_verdict::locked
                                  : v == "in_use"  ? auth_verdict::in_use
                                                   : auth_verdict::temp_fail);
            return drive();
        }
        if (head == "@listing") {
            if (!expect(event::need_listing))
                return;
            if (rest == "fail") {
                session_->listing_failed();
            } else {
                std::vector<listing_entry> l;
                for (const auto& m : mailbox_)
                    l.push_back({m.second.size(), m.first});
                session_->listing(std::move(l));
            }
            return drive();
        }
        if (head == "@retrieve") {
            if (!expect(event::retrieve) || w.empty())
                return fatal("bad @retrieve");
            if (w[0] == "fail") {
                session_->message_failed();
                return drive();
            }
            const auto n = std::stoul(w[0]) - 1;
            if (session_->pending_message() != n)
                fail("pending message is " + std::to_string(session_->pending_message() + 1));
            const bool top = w.size() == 3 && w[1] == "top";
            if (session_->pending_top() != top)
                fail("pending_top() differs");
            std::string bytes = n < mailbox_.size() ? mailbox_[n].second : std::string{};
            if (top) {
                if (session_->pending_top_lines() != std::stoull(w[2]))
                    fail("pending_top_lines() is " + std::to_string(session_->pending_top_lines()));
                bytes = top_of(bytes, session_->pending_top_lines());
            }
            for (std::size_t i = 0; i < bytes.size(); i += 7)
                session_->message_chunk(std::string_view(bytes).substr(i, 7));
            session_->message_end();
            return drive();
        }
        if (head == "@update") {
            if (!expect(event::update) || w.size() < 2)
                return fatal("bad @update");
            if (session_->deletions() != indices(w[1]))
                fail("deletions() differ from " + w[1]);
            if (w.size() == 4 && session_->retrieved() != indices(w[3]))
                fail("retrieved() differ from " + w[3]);
            session_->updated(w[0] == "ok");
            return drive();
        }
        if (head == "@starttls") {
            expect(event::start_tls);
            return;
        }
        if (head == "@tls") {
            no_unread(line);
            if (!expect(event::start_tls))
                return;
            session_->tls_started(rest == "ok");
            return drive();
        }
        if (head == "@timeout") {
            no_unread(line);
            session_->timeout();
            return drive();
        }
        if (head == "@closed") {
            if (expect(event::close) && session_->next() != event::close)
                fail("next() after close did not return close again");
            return;
        }
        fatal("unknown directive: " + std::string(line));
    }

    bool expect(event e)
    {
        if (last_ == e)
            return true;
        fatal("expected event " + std::string(event_name(e)) + ", got " + std::string(event_name(last_)));
        return false;
    }

    void no_unread(std::string_view before)
    {
        while (!replies_.empty()) {
            fail("unexpected reply before " + std::string(before) + ": \"" + replies_.front() + "\"");
            replies_.pop_front();
        }
    }

    void ensure_started()
    {
        if (session_)
            return;
        session_.emplace(cfg_);
        session_->start();
        drive();
    }

    void flush_write()
    {
        if (pending_.empty())
            return;
        no_unread("the next client write");
        if (last_ != event::need_input) {
            pending_.clear();
            return fatal("the client wrote but the session is at event " + std::string(event_name(last_)));
        }
        session_->feed(pending_);
        pending_.clear();
        drive();
    }

    // Runs the session to its next event; collects what a shell would send.
    // The shell writes output() before it reads, closes or handshakes (and
    // while streaming a message, which the runner does not need to model).
    void drive()
    {
        last_ = session_->next();
        if (last_ != event::need_input && last_ != event::close && last_ != event::start_tls)
            return;
        std::string_view out = session_->output();
        while (!out.empty()) {
            auto crlf = out.find("\r\n");
            if (crlf == std::string_view::npos) {
                fail("output does not end in CRLF");
                break;
            }
            replies_.emplace_back(out.substr(0, crlf));
            out.remove_prefix(crlf + 2);
        }
        session_->output().clear();
    }

    std::string name_;
    std::size_t lineno_ = 0;
    session_config cfg_;
    std::vector<std::pair<std::string, std::string>> mailbox_;
    std::optional<session> session_;
    event last_ = event::need_input;
    std::string pending_;
    std::deque<std::string> replies_;
    std::vector<std::string> errors_;
    bool fatal_ = false;
};

std::vector<std::string> run_transcript(const std::filesystem::path& p)
{
    transcript_runner r(p.filename().string());
    return r.run(read_all(p));
}

} // namespace

TEST_SUITE("pop3")
{
    TEST_CASE("every golden transcript replays exactly")
    {
        const auto files = files_in(POSTERN_POP3_TRANSCRIPT_DIR);
        REQUIRE(files.size() >= 10);
        for (const auto& f : files) {
            const auto name = f.filename().string();
            CAPTURE(name);
            for (const auto& e : run_transcript(f))
                FAIL_CHECK(e);
        }
    }

    TEST_CASE("a connection cut before QUIT deletes nothing")
    {
        session s({.stls = false, .implicit_tls = false, .auth = auth_offer::always});
        s.start();
        CHECK(s.next() == event::need_input);
        s.feed("USER u\r\nPASS p\r\n");
        REQUIRE(s.next() == event::check_auth);
        s.answer_auth(auth_verdict::ok);
        REQUIRE(s.next() == event::need_listing);
        s.listing({{10, "a"}, {20, "b"}});
        s.feed("DELE 1\r\nDELE 2\r\n");
        CHECK(s.next() == event::need_input);
        CHECK(s.deletions() == std::vector<std::size_t>{0, 1});
        s.timeout();
        CHECK(s.next() == event::close);
        CHECK(s.output().ends_with("-ERR connection timed out\r\n"));
        // The shell only deletes at event update, which never came.
    }

    TEST_CASE("a refused connection gets -ERR [SYS/TEMP] instead of the greeting, then closes")
    {
        session s({.stls = true, .implicit_tls = false, .auth = auth_offer::always});
        s.refuse("too many connections");
        CHECK(s.next() == event::close);
        CHECK(s.output() == "-ERR [SYS/TEMP] too many connections\r\n");
        s.feed("USER u\r\n"); // nothing more is read or answered
        s.output().clear();
        CHECK(s.next() == event::close);
        CHECK(s.output().empty());
    }

    TEST_CASE("a large message is stuffed piece by piece without being held twice")
    {
        session s({.stls = false, .implicit_tls = false, .auth = auth_offer::always});
        s.start();
        s.feed("USER u\r\nPASS p\r\n");
        REQUIRE(s.next() == event::check_auth);
        s.answer_auth(auth_verdict::ok);
        REQUIRE(s.next() == event::need_listing);
        const std::string piece = ".line\r\n" + std::string(65536, 'x') + "\r\n";
        s.listing({{piece.size() * 100, "big"}});
        s.feed("RETR 1\r\n");
        REQUIRE(s.next() == event::retrieve);
        s.output().clear();
        std::size_t sent = 0;
        for (int i = 0; i < 100; ++i) {
            s.message_chunk(piece);
            CHECK(s.output().size() <= piece.size() + 64);
            CHECK(s.output().find("..line\r\n") != std::string::npos);
            sent += s.output().size();
            s.output().clear();
        }
        s.message_end();
        CHECK(s.output() == ".\r\n");
        const std::string ok_line = "+OK " + std::to_string(piece.size() * 100) + " octets\r\n";
        CHECK(sent == piece.size() * 100 + 100 + ok_line.size());
        CHECK(s.next() == event::need_input);
    }
}
