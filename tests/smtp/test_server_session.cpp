#include "postern/smtp/server_session.hpp"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <cstdlib>
#include <fstream>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <doctest/doctest.h>

#include "transcript_text.hpp"

#include "postern/mail/envelope.hpp"
#include "postern/util/error.hpp"
#include "postern/util/result.hpp"

#ifndef POSTERN_TRANSCRIPT_DIR
#error "tests/smtp/meson.build defines POSTERN_TRANSCRIPT_DIR"
#endif

using namespace postern::smtp;
using namespace std::string_literals;
namespace mail = postern::mail;
namespace util = postern::util;

namespace {

using postern::smtp::transcript::read_all;
using postern::smtp::transcript::unescape;
using postern::smtp::transcript::words;

// The largest single allocation while tracking is on: a session that kept a
// 10 MB line in memory would have to ask for a buffer at least that large.
bool tracking_allocations = false;
std::size_t largest_allocation = 0;

} // namespace

// Replaceable global allocation functions (array forms forward to these).
void* operator new(std::size_t n)
{
    if (tracking_allocations && n > largest_allocation)
        largest_allocation = n;
    if (void* p = std::malloc(n == 0 ? 1 : n))
        return p;
    throw std::bad_alloc();
}

// g++ 12 flags free() here as mismatched with new (a false positive: this
// operator new allocates with malloc).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept
{
    std::free(p);
}

void operator delete(void* p, std::size_t) noexcept
{
    std::free(p);
}
#pragma GCC diagnostic pop

namespace {

// ---------------------------------------------------------------------------
// The transcript runner.
//
// A transcript drives a server_session through its public API exactly as the
// shell (src/server/smtp_server.cpp) does, and compares every reply line.
//
//   # comment                 blank lines and comments are ignored
//   @config key=value ...     before anything else: max_message_size,
//                             max_recipients, max_errors, starttls (0|1),
//                             implicit_tls (0|1), auth (never|tls_only|always),
//                             submission (0|1), max_auth_failures (hostname is mx.test)
//   C: <line>                 client line, sent with CRLF. Consecutive C: and
//                             @raw lines form one write (one feed()), so a
//                             pipelined group is just C: lines with no S:
//                             between them
//   @raw <bytes>              C-escaped bytes (\r \n \t \0 \\ \xHH), no CRLF added
//   @flush                    ends the current write (the next C:/@raw starts another)
//   S: <line>                 the next server reply line, compared exactly
//   @rcpt <verdict> [addr]    answers the outstanding check_rcpt (accept,
//                             unknown_user, relay_denied, temp_fail); with
//                             addr, pending_rcpt().str() must equal it
//   @sender owned|not_owned [addr]
//                             answers check_sender; with addr, the MAIL FROM
//                             path (envelope().sender.str()) must equal it
//   @auth <verdict> [plain|login [first [second]]]
//                             answers check_auth (ok, invalid, malformed,
//                             locked, temp_fail) after checking pending_auth()
//                             ("-" for an empty response)
//   @commit ok <ID> | enospc | fail
//                             answers the outstanding commit
//   @envelope <from> [<to>...]   at a commit: sender path and recipients
//   @smtputf8 0|1, @bodytype 7bit|8bitmime|binarymime, @protocol SMTP|ESMTP|UTF8SMTP,
//   @dsn <unspecified|full|hdrs> [envid]   RET and ENVID (decoded)
//   @notify <n> <never|success,failure,delay|-> [orcpt]
//                             the n-th recipient's (from 1) NOTIFY and ORCPT
//   @body <C-escaped>         more checks at a commit
//   @tlsinfo <description>    at a commit: tls_description() (empty: none)
//   @starttls                 the session must be at event start_tls (the
//                             220 was sent before it, as the shell does)
//   @tls ok <description> | fail
//                             answers start_tls (the handshake's outcome);
//                             first line with implicit_tls: the handshake
//                             before start() (no greeting when it failed)
//   @storage low|ok           set_storage_low() before the next write
//   @timeout                  the read deadline passed
//   @refuse <why>             first line only: refused at connect (no greeting)
//   @closed                   the session must have returned event::close
//
// In C:, @raw and @body lines "{{N*c}}" stands for N copies of the character c.
//
// Replies are only seen when the session returns need_input or close (the
// shell writes output() then, never at check_rcpt or commit), so replies to a
// pipelined group are expected after the group's @rcpt/@commit answers.
// The runner fails on a reply that came but was not expected (checked before
// each write, each answer and at the end), on a reply expected that did not
// come, and on any event the transcript did not ask for.
// ---------------------------------------------------------------------------

std::string_view event_name(event e)
{
    switch (e) {
    case event::need_input:
        return "need_input";
    case event::check_rcpt:
        return "check_rcpt";
    case event::check_sender:
        return "check_sender";
    case event::check_auth:
        return "check_auth";
    case event::commit:
        return "commit";
    case event::start_tls:
        return "start_tls";
    case event::close:
        return "close";
    }
    return "?";
}

// Expands {{N*c}} repetitions.
std::string expand(std::string_view s)
{
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        if (s.substr(i, 2) == "{{") {
            auto star = s.find('*', i);
            auto close = s.find("}}", i);
            if (star != std::string_view::npos && close != std::string_view::npos && star < close &&
                close == star + 2) {
                auto n = std::stoul(std::string(s.substr(i + 2, star - i - 2)));
                out.append(n, s[star + 1]);
                i = close + 2;
                continue;
            }
        }
        out.push_back(s[i++]);
    }
    return out;
}

class transcript_runner {
public:
    explicit transcript_runner(std::string name) : name_(std::move(name))
    {
        cfg_.hostname = "mx.test";
        cfg_.max_message_size = 10000;
        cfg_.max_recipients = 100;
        cfg_.max_errors = 20;
    }

    // Every problem found, "name:line: what"; empty when the transcript passed.
    std::vector<std::string> run(std::string_view text)
    {
        std::size_t lineno = 0;
        std::size_t pos = 0;
        while (pos <= text.size() && !fatal_) {
            auto nl = text.find('\n', pos);
            auto line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
            pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
            ++lineno;
            lineno_ = lineno;
            if (!line.empty() && line.back() == '\r')
                line.remove_suffix(1);
            step(line);
        }
        if (!fatal_)
            finish();
        return errors_;
    }

private:
    void fail(const std::string& what)
    {
        errors_.push_back(name_ + ":" + std::to_string(lineno_) + ": " + what);
    }
    // Stops the replay; the replies not yet matched help to see why.
    void fatal(const std::string& what)
    {
        fail(what);
        for (const auto& r : replies_)
            fail("  unread reply: \"" + r + "\"");
        fatal_ = true;
    }

    void step(std::string_view line)
    {
        if (line.empty() || line.front() == '#')
            return;
        if (line.starts_with("C: ") || line == "C:") {
            pending_ += expand(line.size() > 3 ? line.substr(3) : std::string_view{});
            pending_ += "\r\n";
            return;
        }
        auto sp = line.find(' ');
        std::string_view head = line.substr(0, sp);
        std::string_view rest = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
        if (head == "@raw") {
            std::string bytes;
            if (!unescape(expand(rest), bytes))
                return fatal("bad escape in @raw");
            pending_ += bytes;
            return;
        }
        if (head == "@config") {
            if (session_)
                return fatal("@config after the session started");
            for (const auto& w : words(rest)) {
                auto eq = w.find('=');
                if (eq == std::string::npos)
                    return fatal("bad @config word " + w);
                auto key = w.substr(0, eq);
                auto text = w.substr(eq + 1);
                if (key == "auth") {
                    if (text == "never")
                        cfg_.auth = auth_offer::never;
                    else if (text == "tls_only")
                        cfg_.auth = auth_offer::tls_only;
                    else if (text == "always")
                        cfg_.auth = auth_offer::always;
                    else
                        return fatal("bad @config auth " + text);
                    continue;
                }
                auto v = std::stoull(text);
                if (key == "max_message_size")
                    cfg_.max_message_size = v;
                else if (key == "max_recipients")
                    cfg_.max_recipients = static_cast<std::uint32_t>(v);
                else if (key == "max_errors")
                    cfg_.max_errors = static_cast<std::uint32_t>(v);
                else if (key == "starttls")
                    cfg_.starttls = v != 0;
                else if (key == "implicit_tls")
                    cfg_.implicit_tls = v != 0;
                else if (key == "submission")
                    cfg_.submission = v != 0;
                else if (key == "max_auth_failures")
                    cfg_.max_auth_failures = static_cast<std::uint32_t>(v);
                else
                    return fatal("unknown @config key " + key);
            }
            return;
        }
        if (head == "@refuse" && !session_) {
            session_.emplace(cfg_);
            session_->refuse(rest);
            drive();
            return;
        }
        if (head == "@tls" && !session_) {
            // The implicit-TLS shell handshakes before it greets.
            session_.emplace(cfg_);
            if (!answer_tls(rest))
                return;
            if (rest != "fail")
                session_->start();
            drive();
            return;
        }
        ensure_started();
        flush_write();
        if (fatal_)
            return;

        if (head == "S:" || line == "S:") {
            if (replies_.empty())
                return fail("expected reply did not come: \"" + std::string(rest) + "\"" +
                            unflushed_note());
            auto got = replies_.front();
            replies_.pop_front();
            if (got != rest)
                fail("reply mismatch: expected \"" + std::string(rest) + "\", got \"" + got + "\"");
            return;
        }
        if (head == "@rcpt")
            return do_rcpt(rest);
        if (head == "@sender")
            return do_sender(rest);
        if (head == "@auth")
            return do_auth(rest);
        if (head == "@commit")
            return do_commit(rest);
        if (head == "@envelope" || head == "@smtputf8" || head == "@bodytype" || head == "@protocol" ||
            head == "@body" || head == "@tlsinfo" || head == "@dsn" || head == "@notify")
            return check_commit(head, rest);
        if (head == "@starttls") {
            if (last_ != event::start_tls)
                fatal("expected event start_tls, got " + std::string(event_name(last_)));
            return;
        }
        if (head == "@tls") {
            expect_no_unread_replies("@tls");
            if (last_ != event::start_tls)
                return fatal("@tls but the session is at event " + std::string(event_name(last_)));
            if (answer_tls(rest))
                drive();
            return;
        }
        if (head == "@storage") {
            if (rest != "low" && rest != "ok")
                return fatal("@storage needs low or ok");
            session_->set_storage_low(rest == "low");
            return;
        }
        if (head == "@timeout") {
            expect_no_unread_replies("@timeout");
            session_->timeout();
            return drive();
        }
        if (head == "@refuse") {
            expect_no_unread_replies("@refuse");
            session_->refuse(rest);
            return drive();
        }
        if (head == "@flush")
            return; // the write was flushed above
        if (head == "@closed") {
            if (last_ != event::close)
                return fatal("expected event close, got " + std::string(event_name(last_)));
            if (session_->next() != event::close)
                fail("next() after close did not return close again");
            return;
        }
        fatal("unknown directive: " + std::string(line));
    }

    void ensure_started()
    {
        if (session_)
            return;
        session_.emplace(cfg_);
        session_->start();
        drive();
    }

    std::string unflushed_note()
    {
        if (session_ && !session_->output().empty())
            return " (session holds unsent output at event " + std::string(event_name(last_)) + ")";
        return {};
    }

    void expect_no_unread_replies(std::string_view before)
    {
        while (!replies_.empty()) {
            fail("unexpected reply before " + std::string(before) + ": \"" + replies_.front() + "\"");
            replies_.pop_front();
        }
    }

    void flush_write()
    {
        if (pending_.empty())
            return;
        expect_no_unread_replies("the next client write");
        if (last_ != event::need_input) {
            pending_.clear();
            return fatal("the client wrote but the session is at event " + std::string(event_name(last_)));
        }
        session_->feed(pending_);
        pending_.clear();
        drive();
    }

    // Runs the session to its next event; collects what a shell would send.
    void drive()
    {
        last_ = session_->next();
        // The shell sends output() before it reads, before it closes and
        // before the TLS handshake (the client waits for the 220).
        if (last_ == event::need_input || last_ == event::close || last_ == event::start_tls) {
            std::string_view out = session_->output();
            while (!out.empty()) {
                auto crlf = out.find("\r\n");
                if (crlf == std::string_view::npos) {
                    fail("output does not end in CRLF: \"" + std::string(out) + "\"");
                    break;
                }
                replies_.emplace_back(out.substr(0, crlf));
                out.remove_prefix(crlf + 2);
            }
            session_->output().clear();
        }
    }

    // "ok <description>" or "fail" to tls_started(); false after a fatal error.
    bool answer_tls(std::string_view rest)
    {
        if (rest.starts_with("ok ")) {
            session_->tls_started(true, std::string(rest.substr(3)));
        } else if (rest == "fail") {
            session_->tls_started(false, {});
        } else {
            fatal("bad @tls answer " + std::string(rest));
            return false;
        }
        return true;
    }

    void do_rcpt(std::string_view rest)
    {
        expect_no_unread_replies("@rcpt");
        if (last_ != event::check_rcpt)
            return fatal("@rcpt but the session is at event " + std::string(event_name(last_)));
        auto w = words(rest);
        if (w.empty())
            return fatal("@rcpt needs a verdict");
        if (w.size() > 1 && session_->pending_rcpt().str() != w[1])
            fail("pending_rcpt() is \"" + session_->pending_rcpt().str() + "\", expected \"" + w[1] + "\"");
        rcpt_verdict v{};
        if (w[0] == "accept")
            v = rcpt_verdict::accept;
        else if (w[0] == "unknown_user")
            v = rcpt_verdict::unknown_user;
        else if (w[0] == "relay_denied")
            v = rcpt_verdict::relay_denied;
        else if (w[0] == "temp_fail")
            v = rcpt_verdict::temp_fail;
        else
            return fatal("unknown @rcpt verdict " + w[0]);
        session_->answer_rcpt(v);
        drive();
    }

    void do_sender(std::string_view rest)
    {
        expect_no_unread_replies("@sender");
        if (last_ != event::check_sender)
            return fatal("@sender but the session is at event " + std::string(event_name(last_)));
        auto w = words(rest);
        if (w.empty() || (w[0] != "owned" && w[0] != "not_owned"))
            return fatal("@sender needs owned or not_owned");
        if (w.size() > 1 && session_->envelope().sender.str() != w[1])
            fail("sender is \"" + session_->envelope().sender.str() + "\", expected \"" + w[1] + "\"");
        session_->answer_sender(w[0] == "owned");
        drive();
    }

    void do_auth(std::string_view rest)
    {
        expect_no_unread_replies("@auth");
        if (last_ != event::check_auth)
            return fatal("@auth but the session is at event " + std::string(event_name(last_)));
        auto w = words(rest);
        if (w.empty())
            return fatal("@auth needs a verdict");
        const auto& req = session_->pending_auth();
        if (w.size() > 1) {
            auto mech = req.mechanism == sasl_mechanism::plain ? "plain" : "login";
            if (w[1] != mech)
                fail("pending_auth() mechanism is "s + mech + ", expected " + w[1]);
        }
        auto field = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
        if (w.size() > 2 && field(req.first) != w[2])
            fail("pending_auth().first is \"" + req.first + "\", expected \"" + w[2] + "\"");
        if (w.size() > 3 && field(req.second) != w[3])
            fail("pending_auth().second is \"" + req.second + "\", expected \"" + w[3] + "\"");
        auth_verdict v{};
        if (w[0] == "ok")
            v = auth_verdict::ok;
        else if (w[0] == "invalid")
            v = auth_verdict::invalid;
        else if (w[0] == "malformed")
            v = auth_verdict::malformed;
        else if (w[0] == "locked")
            v = auth_verdict::locked;
        else if (w[0] == "temp_fail")
            v = auth_verdict::temp_fail;
        else
            return fatal("unknown @auth verdict " + w[0]);
        session_->answer_auth(v);
        drive();
    }

    void do_commit(std::string_view rest)
    {
        expect_no_unread_replies("@commit");
        if (last_ != event::commit)
            return fatal("@commit but the session is at event " + std::string(event_name(last_)));
        auto w = words(rest);
        if (w.empty())
            return fatal("@commit needs an answer");
        if (w[0] == "ok" && w.size() == 2)
            session_->committed(util::result<std::string>(w[1]));
        else if (w[0] == "enospc")
            session_->committed(std::errc::no_space_on_device);
        else if (w[0] == "fail")
            session_->committed(util::errc::io);
        else
            return fatal("bad @commit answer " + std::string(rest));
        drive();
    }

    void check_commit(std::string_view head, std::string_view rest)
    {
        if (last_ != event::commit)
            return fatal(std::string(head) + " but the session is at event " + std::string(event_name(last_)));
        const auto& env = session_->envelope();
        if (head == "@envelope") {
            auto w = words(rest);
            if (w.empty())
                return fatal("@envelope needs a sender");
            if (env.sender.str() != w[0])
                fail("sender is " + env.sender.str() + ", expected " + w[0]);
            std::vector<std::string> got;
            for (const auto& r : env.recipients)
                got.push_back("<" + r.str() + ">");
            std::vector<std::string> want(w.begin() + 1, w.end());
            if (got != want) {
                std::string g;
                for (const auto& r : got)
                    g += " " + r;
                fail("recipients are" + g + ", expected" + std::string(rest.substr(w[0].size())));
            }
        } else if (head == "@smtputf8") {
            if (env.smtputf8 != (rest == "1"))
                fail("envelope smtputf8 is " + std::to_string(env.smtputf8) + ", expected " + std::string(rest));
        } else if (head == "@bodytype") {
            auto got = env.body == mail::body_type::eight_bit_mime ? "8bitmime"
                       : env.body == mail::body_type::binary_mime  ? "binarymime"
                                                                   : "7bit";
            if (got != rest)
                fail("body type is "s + got + ", expected " + std::string(rest));
        } else if (head == "@protocol") {
            if (session_->protocol() != rest)
                fail("protocol() is " + std::string(session_->protocol()) + ", expected " + std::string(rest));
        } else if (head == "@body") {
            std::string want;
            if (!unescape(expand(rest), want))
                return fatal("bad escape in @body");
            if (session_->body() != want)
                fail("body differs: got \"" + session_->body() + "\"");
        } else if (head == "@dsn") {
            auto w = words(rest);
            const char* ret = env.ret == mail::dsn_ret::full      ? "full"
                              : env.ret == mail::dsn_ret::headers ? "hdrs"
                                                                  : "unspecified";
            if (w.empty() || w[0] != ret)
                fail("RET is "s + ret + ", expected " + std::string(rest));
            std::string envid = w.size() > 1 ? w[1] : std::string();
            if (env.envid != envid)
                fail("ENVID is \"" + env.envid + "\", expected \"" + envid + "\"");
        } else if (head == "@notify") {
            auto w = words(rest);
            if (w.size() < 2)
                return fatal("@notify needs an index and the NOTIFY bits");
            const auto n = std::stoul(w[0]);
            if (env.rcpt_dsn.size() != env.recipients.size())
                fail("rcpt_dsn has " + std::to_string(env.rcpt_dsn.size()) + " entries for " +
                     std::to_string(env.recipients.size()) + " recipients");
            if (n == 0 || n > env.rcpt_dsn.size())
                return fatal("@notify: no recipient " + w[0]);
            const auto& d = env.rcpt_dsn[n - 1];
            std::string bits;
            for (auto [bit, name] : {std::pair{mail::notify::never, "never"}, {mail::notify::success, "success"},
                                     {mail::notify::failure, "failure"}, {mail::notify::delay, "delay"}})
                if ((d.notify & bit) != 0)
                    bits += (bits.empty() ? "" : ",") + std::string(name);
            if (bits.empty())
                bits = "-";
            if (bits != w[1])
                fail("recipient " + w[0] + " NOTIFY is " + bits + ", expected " + w[1]);
            std::string orcpt = w.size() > 2 ? w[2] : std::string();
            if (d.orcpt != orcpt)
                fail("recipient " + w[0] + " ORCPT is \"" + d.orcpt + "\", expected \"" + orcpt + "\"");
        } else if (head == "@tlsinfo") {
            if (session_->tls_description() != rest)
                fail("tls_description() is \"" + std::string(session_->tls_description()) + "\", expected \"" +
                     std::string(rest) + "\"");
        }
    }

    void finish()
    {
        ++lineno_;
        flush_write();
        if (fatal_)
            return;
        expect_no_unread_replies("the end of the transcript");
        if (last_ == event::check_rcpt || last_ == event::commit || last_ == event::start_tls ||
            last_ == event::check_sender || last_ == event::check_auth)
            fail("the transcript ended with event " + std::string(event_name(last_)) + " unanswered");
        if (session_ && !session_->output().empty())
            fail("the transcript ended with unsent output");
    }

    std::string name_;
    session_config cfg_;
    std::optional<server_session> session_;
    std::string pending_;
    std::deque<std::string> replies_;
    event last_ = event::need_input;
    std::size_t lineno_ = 0;
    bool fatal_ = false;
    std::vector<std::string> errors_;
};

std::vector<std::string> run_transcript(std::string name, std::string_view text)
{
    return transcript_runner(std::move(name)).run(text);
}

std::vector<std::filesystem::path> transcripts()
{
    return transcript::files_in(POSTERN_TRANSCRIPT_DIR);
}

void replay(const std::filesystem::path& p)
{
    const auto name = p.filename().string();
    CAPTURE(name);
    auto errors = run_transcript(name, read_all(p));
    for (const auto& e : errors)
        FAIL_CHECK(e);
    CHECK(errors.empty());
}

// ---------------------------------------------------------------------------
// A plain driver for the tests written in C++: answers every check_rcpt and
// commit the same way and returns everything the session sent.
// ---------------------------------------------------------------------------

struct driver {
    server_session s;
    std::string sent;
    event last = event::need_input;
    rcpt_verdict verdict = rcpt_verdict::accept;
    std::vector<mail::envelope> envelopes;
    std::vector<std::string> bodies;
    std::vector<std::string> protocols;
    std::uint32_t check_rcpts = 0;

    explicit driver(session_config cfg) : s(std::move(cfg)) {}

    // Runs until the session wants input or closes.
    event run()
    {
        for (;;) {
            last = s.next();
            switch (last) {
            case event::need_input:
            case event::start_tls:
            case event::close:
                sent += s.output();
                s.output().clear();
                return last;
            case event::check_rcpt:
                ++check_rcpts;
                s.answer_rcpt(verdict);
                break;
            case event::check_sender:
                s.answer_sender(true);
                break;
            case event::check_auth:
                s.answer_auth(auth_verdict::invalid);
                break;
            case event::commit:
                envelopes.push_back(s.envelope());
                bodies.push_back(s.body());
                protocols.emplace_back(s.protocol());
                s.committed(util::result<std::string>("Q" + std::to_string(envelopes.size())));
                break;
            }
        }
    }

    event send(std::string_view bytes)
    {
        s.feed(bytes);
        return run();
    }

    std::string take()
    {
        std::string out;
        out.swap(sent);
        return out;
    }
};

session_config test_config()
{
    session_config c;
    c.hostname = "mx.test";
    c.max_message_size = 10000;
    return c;
}

std::size_t count(std::string_view hay, std::string_view needle)
{
    std::size_t n = 0;
    for (auto i = hay.find(needle); i != std::string_view::npos; i = hay.find(needle, i + 1))
        ++n;
    return n;
}

constexpr std::string_view ehlo_reply = "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 10000\r\n250-8BITMIME\r\n250-BINARYMIME\r\n250-CHUNKING\r\n250-DSN\r\n"
                                        "250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n";

} // namespace

TEST_SUITE("smtp") {

TEST_CASE("every golden transcript replays exactly")
{
    auto all = transcripts();
    std::size_t replayed = 0;
    for (const auto& p : all) {
        replay(p);
        ++replayed;
    }
    CHECK(replayed >= 15);
}

TEST_CASE("the transcript runner reports wrong, missing and unexpected replies and events")
{
    const std::string greet = "S: 220 mx.test ESMTP postern\n";
    SUBCASE("a correct transcript passes")
    {
        CHECK(run_transcript("t", greet + "C: NOOP\nS: 250 2.0.0 Ok\nC: QUIT\nS: 221 2.0.0 Bye\n@closed\n").empty());
    }
    SUBCASE("a reply with different text")
    {
        auto e = run_transcript("t", greet + "C: NOOP\nS: 250 2.0.0 OK\n");
        REQUIRE(e.size() == 1);
        CHECK(e[0].find("reply mismatch") != std::string::npos);
        CHECK(e[0].starts_with("t:3: "));
    }
    SUBCASE("a reply that came but was not expected, before the next write")
    {
        auto e = run_transcript("t", greet + "C: NOOP\nC: NOOP\nS: 250 2.0.0 Ok\nC: QUIT\nS: 221 2.0.0 Bye\n");
        REQUIRE(e.size() == 1);
        CHECK(e[0].find("unexpected reply") != std::string::npos);
    }
    SUBCASE("a reply that came but was not expected, at the end")
    {
        auto e = run_transcript("t", greet + "C: NOOP\n");
        REQUIRE(e.size() == 1);
        CHECK(e[0].find("unexpected reply before the end") != std::string::npos);
    }
    SUBCASE("a greeting that is not expected")
    {
        auto e = run_transcript("t", "C: QUIT\nS: 221 2.0.0 Bye\n");
        CHECK_FALSE(e.empty());
    }
    SUBCASE("a reply expected that did not come")
    {
        auto e = run_transcript("t", greet + "S: 250 2.0.0 Ok\n");
        REQUIRE(e.size() == 1);
        CHECK(e[0].find("did not come") != std::string::npos);
    }
    SUBCASE("an event the transcript did not answer")
    {
        auto e = run_transcript("t", greet + "C: HELO c\nS: 250 mx.test\nC: MAIL FROM:<a@x.test>\n"
                                             "S: 250 2.1.0 Ok\nC: RCPT TO:<b@x.test>\nS: 250 2.1.5 Ok\n");
        CHECK_FALSE(e.empty());
    }
    SUBCASE("an answer for an event that did not happen")
    {
        auto e = run_transcript("t", greet + "C: NOOP\nS: 250 2.0.0 Ok\n@rcpt accept\n");
        REQUIRE(e.size() == 1);
        CHECK(e[0].find("@rcpt but the session is at event need_input") != std::string::npos);
    }
    SUBCASE("@closed while the session is still open")
    {
        auto e = run_transcript("t", greet + "C: NOOP\nS: 250 2.0.0 Ok\n@closed\n");
        REQUIRE(e.size() == 1);
        CHECK(e[0].find("expected event close") != std::string::npos);
    }
    SUBCASE("envelope checks at commit")
    {
        auto e = run_transcript("t", greet + "C: HELO c\nS: 250 mx.test\nC: MAIL FROM:<a@x.test>\n"
                                             "S: 250 2.1.0 Ok\nC: RCPT TO:<b@x.test>\n@rcpt accept <b@x.test>\n"
                                             "S: 250 2.1.5 Ok\nC: DATA\nS: 354 End data with <CR><LF>.<CR><LF>\n"
                                             "C: hi\nC: .\n@envelope <a@x.test> <c@x.test>\n@body hi\n"
                                             "@protocol ESMTP\n@commit ok Q\nS: 250 2.0.0 Ok: queued as Q\n");
        CHECK(e.size() == 4); // pending_rcpt, recipients, body, protocol
    }
}

TEST_CASE("a 10 MB line without LF keeps memory bounded and gets exactly one 500 5.5.6")
{
    driver d(test_config());
    CHECK(d.run() == event::need_input);
    CHECK(d.take() == "220 mx.test ESMTP postern\r\n");
    CHECK(d.send("EHLO c\r\nNOOP") == event::need_input); // a partial line before the flood
    CHECK(d.take() == ehlo_reply);
    const std::string piece(64 * 1024, 'A');
    largest_allocation = 0;
    tracking_allocations = true;
    for (int i = 0; i < 160; ++i) { // 10 MiB
        CAPTURE(i);
        auto e = d.send(piece);
        if (e != event::need_input || !d.sent.empty() || !d.s.output().empty()) {
            tracking_allocations = false;
            FAIL("the flood produced an event or a reply");
        }
    }
    tracking_allocations = false;
    CHECK(largest_allocation < 1024 * 1024); // the session holds a few pieces at most
    CHECK(d.send("tail\r\n") == event::need_input);
    CHECK(d.take() == "500 5.5.6 Error: line too long\r\n");
    CHECK(d.s.errors() == 1);
    SUBCASE("the session goes on in step")
    {
        CHECK(d.send("NOOP\r\n") == event::need_input);
        CHECK(d.take() == "250 2.0.0 Ok\r\n");
    }
    SUBCASE("the LF may come alone, in its own feed")
    {
        CHECK(d.send(std::string(1000, 'B')) == event::need_input);
        CHECK(d.send("\n") == event::need_input);
        CHECK(d.take() == "500 5.5.6 Error: line too long\r\n");
        CHECK(d.send("QUIT\r\n") == event::close);
        CHECK(d.take() == "221 2.0.0 Bye\r\n");
    }
}

TEST_CASE("a command line of 512 octets with its CRLF is accepted and 513 is too long")
{
    for (std::size_t len : {510u, 511u, 512u, 513u, 600u}) {
        CAPTURE(len);
        driver d(test_config());
        d.run();
        d.take();
        auto line = "NOOP " + std::string(len - 5, 'x'); // len octets before the CRLF
        CHECK(d.send(line + "\r\n") == event::need_input);
        CHECK(d.take() == (len + 2 <= 512 ? "250 2.0.0 Ok\r\n" : "500 5.5.6 Error: line too long\r\n"));
    }
}

TEST_CASE("the envelope and body seen at commit are the transaction's")
{
    session_config cfg = test_config();
    server_session s(cfg);
    s.start();
    s.feed("EHLO client.example\r\n"
           "MAIL FROM:<Sender@Example.TEST> BODY=8BITMIME SIZE=120 SMTPUTF8\r\n"
           "RCPT TO:<r1@x.test>\r\n"
           "RCPT TO:<\xc3\xbc@x.test>\r\n"
           "RCPT TO:<R1@X.TEST>\r\n"
           "RCPT TO:<Postmaster>\r\n"
           "DATA\r\n"
           "Subject: t\r\n\r\n..leading dot\r\n..\r\nlast\r\n.\r\n");
    std::vector<std::string> pending;
    for (;;) {
        auto e = s.next();
        if (e == event::check_rcpt) {
            pending.push_back(s.pending_rcpt().str());
            if (pending.size() == 4)
                CHECK(s.pending_rcpt_is_bare_postmaster());
            else
                CHECK_FALSE(s.pending_rcpt_is_bare_postmaster());
            s.answer_rcpt(rcpt_verdict::accept);
            continue;
        }
        REQUIRE(e == event::commit);
        break;
    }
    CHECK(pending == std::vector<std::string>{"r1@x.test", "\xc3\xbc@x.test", "R1@X.TEST", "postmaster"});
    const auto& env = s.envelope();
    CHECK_FALSE(env.sender.null);
    CHECK(env.sender.addr.local_part == "Sender");
    CHECK(env.sender.addr.domain == "Example.TEST");
    REQUIRE(env.recipients.size() == 3); // R1@X.TEST folded into r1@x.test
    CHECK(env.recipients[0].str() == "r1@x.test");
    CHECK(env.recipients[1].str() == "\xc3\xbc@x.test");
    CHECK(env.recipients[2].str() == "postmaster");
    CHECK(env.smtputf8);
    CHECK(env.body == mail::body_type::eight_bit_mime);
    CHECK(s.helo() == "client.example");
    CHECK(s.protocol() == "UTF8SMTP");
    CHECK(s.body() == "Subject: t\r\n\r\n.leading dot\r\n.\r\nlast\r\n");
    s.committed(util::result<std::string>("ABC"));
    CHECK(s.next() == event::need_input);
    CHECK(s.messages() == 1);
    CHECK(s.output().ends_with("250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
                               "250 2.0.0 Ok: queued as ABC\r\n"));
}

TEST_CASE("the null reverse path and the 7BIT default reach the envelope")
{
    driver d(test_config());
    d.run();
    d.send("EHLO c\r\nMAIL FROM:<>\r\nRCPT TO:<a@x.test>\r\nDATA\r\nx\r\n.\r\n"
           "MAIL FROM:<b@x.test> BODY=7bit\r\nRCPT TO:<a@x.test>\r\nDATA\r\ny\r\n.\r\n");
    REQUIRE(d.envelopes.size() == 2);
    CHECK(d.envelopes[0].sender.null);
    CHECK(d.envelopes[0].body == mail::body_type::seven_bit);
    CHECK_FALSE(d.envelopes[0].smtputf8);
    CHECK_FALSE(d.envelopes[1].sender.null);
    CHECK(d.envelopes[1].body == mail::body_type::seven_bit);
    CHECK(d.bodies == std::vector<std::string>{"x\r\n", "y\r\n"});
    CHECK(d.protocols == std::vector<std::string>{"ESMTP", "ESMTP"});
    CHECK(d.s.messages() == 2);
}

TEST_CASE("protocol() names SMTP after HELO, ESMTP after EHLO and UTF8SMTP with SMTPUTF8")
{
    struct row {
        std::string_view greet;
        std::string_view mail;
        std::string_view protocol;
    };
    const row rows[] = {
        {"HELO c", "MAIL FROM:<a@x.test>", "SMTP"},
        {"EHLO c", "MAIL FROM:<a@x.test>", "ESMTP"},
        {"EHLO c", "MAIL FROM:<a@x.test> SMTPUTF8", "UTF8SMTP"},
        {"ehlo c", "mail from:<a@x.test> smtputf8", "UTF8SMTP"},
    };
    for (const auto& r : rows) {
        CAPTURE(r.mail);
        driver d(test_config());
        d.run();
        d.send(std::string(r.greet) + "\r\n" + std::string(r.mail) + "\r\nRCPT TO:<b@x.test>\r\nDATA\r\nx\r\n.\r\n");
        REQUIRE(d.protocols.size() == 1);
        CHECK(d.protocols[0] == r.protocol);
    }
}

TEST_CASE("feeding a whole session a byte at a time gives the same replies as one chunk")
{
    const std::string script = "EHLO c\r\nMAIL FROM:<a@x.test> SIZE=50\r\nRCPT TO:<b@x.test>\r\n"
                               "RCPT TO:<c@x.test>\r\nDATA\r\nSubject: s\r\n\r\n..x\r\n.\r\n"
                               "NOOP\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n"
                               "bad\n.\nstill data\r\n.\r\nRSET\r\nQUIT\r\n";
    driver whole(test_config());
    whole.run();
    CHECK(whole.send(script) == event::close);

    driver bytes(test_config());
    bytes.run();
    event last = event::need_input;
    for (char c : script) {
        REQUIRE(last == event::need_input);
        last = bytes.send(std::string_view(&c, 1));
    }
    CHECK(last == event::close);
    CHECK(bytes.sent == whole.sent);
    CHECK(bytes.bodies == whole.bodies);
    CHECK(whole.bodies == std::vector<std::string>{"Subject: s\r\n\r\n.x\r\n"});
    CHECK(count(whole.sent, "\r\n") == 22); // greeting, 9 for EHLO, 12 more
    CHECK(whole.sent.ends_with("354 End data with <CR><LF>.<CR><LF>\r\n"
                               "554 5.6.0 Error: message contains bare CR or LF, refused\r\n"
                               "250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n"));
}

TEST_CASE("pipelined replies are held until the session needs input (RFC 2920 3.2)")
{
    server_session s(test_config());
    s.start();
    CHECK(s.next() == event::need_input);
    s.output().clear();
    s.feed("EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nNOOP\r\n");
    CHECK(s.next() == event::check_rcpt);
    // EHLO and MAIL have been answered but nothing is flushed at check_rcpt:
    CHECK(s.output().ends_with("250 2.1.0 Ok\r\n"));
    CHECK(s.next() == event::check_rcpt); // asking again does not move on
    s.answer_rcpt(rcpt_verdict::accept);
    CHECK(s.next() == event::need_input);
    CHECK(s.output().ends_with("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok\r\n"));
}

TEST_CASE("answers given outside their events are ignored")
{
    server_session s(test_config());
    s.start();
    CHECK(s.next() == event::need_input);
    s.output().clear();
    s.answer_rcpt(rcpt_verdict::accept);
    s.committed(util::result<std::string>("X"));
    CHECK(s.output().empty());
    s.feed("HELO c\r\nMAIL FROM:<a@x.test>\r\nDATA\r\n");
    CHECK(s.next() == event::need_input);
    CHECK(s.output() == "250 mx.test\r\n250 2.1.0 Ok\r\n503 5.5.1 Error: need RCPT command\r\n");
    CHECK(s.messages() == 0);
}

TEST_CASE("phase() is data exactly while the message is being read")
{
    server_session s(test_config());
    CHECK(s.phase() == input_phase::command);
    s.start();
    s.feed("HELO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n");
    CHECK(s.next() == event::check_rcpt);
    CHECK(s.phase() == input_phase::command);
    s.answer_rcpt(rcpt_verdict::accept);
    s.feed("DATA\r\npart");
    CHECK(s.next() == event::need_input);
    CHECK(s.phase() == input_phase::data);
    s.feed("\r\n.\r\n");
    CHECK(s.next() == event::commit);
    CHECK(s.phase() == input_phase::command);
    s.committed(util::result<std::string>("Q"));
    CHECK(s.next() == event::need_input);
    CHECK(s.phase() == input_phase::command);
}

TEST_CASE("errors() counts refused commands and the limit closes the session")
{
    session_config cfg = test_config();
    cfg.max_errors = 3;
    driver d(cfg);
    d.run();
    d.take();
    CHECK(d.send("BOGUS\r\n") == event::need_input);
    CHECK(d.s.errors() == 1);
    CHECK(d.send("HELO c\r\nRCPT TO:<a@x.test>\r\nNOOP\r\n") == event::need_input);
    CHECK(d.s.errors() == 2);
    d.take();
    // The third error closes; commands pipelined after it are not run.
    CHECK(d.send("DATA\r\nNOOP\r\nNOOP\r\n") == event::close);
    CHECK(d.take() == "503 5.5.1 Error: need MAIL command\r\n421 4.7.0 mx.test Error: too many errors\r\n");
    CHECK(d.s.errors() == 3);
}

TEST_CASE("plaintext after STARTTLS is dropped however it arrives (CVE-2011-0411)")
{
    session_config cfg = test_config();
    cfg.starttls = true;
    driver d(cfg);
    d.run();
    d.send("EHLO c\r\n");
    d.take();
    SUBCASE("pipelined in the same write, with a partial line at the end")
    {
        CHECK(d.send("STARTTLS\r\nNOOP\r\nNOO") == event::start_tls);
    }
    SUBCASE("written after the 220, before the handshake finished")
    {
        CHECK(d.send("STARTTLS\r\n") == event::start_tls);
        CHECK(d.send("NOOP\r\nNOO") == event::start_tls);
    }
    CHECK(d.take() == "220 2.0.0 Ready to start TLS\r\n");
    CHECK_FALSE(d.s.tls_active());
    // The shell asks again before the handshake: still start_tls, nothing to send.
    CHECK(d.run() == event::start_tls);
    CHECK(d.take().empty());
    d.s.tls_started(true, "TLSv1.3 TLS_AES_256_GCM_SHA384");
    CHECK(d.s.tls_active());
    CHECK(d.s.tls_description() == "TLSv1.3 TLS_AES_256_GCM_SHA384");
    CHECK(d.s.helo().empty());
    CHECK(d.s.protocol() == "SMTP");
    CHECK(d.run() == event::need_input);
    CHECK(d.take().empty());
    // "P\r\n" would complete a kept "NOO" into a NOOP.
    CHECK(d.send("P\r\n") == event::need_input);
    CHECK(d.take() == "500 5.5.1 Error: command not recognized\r\n");
}

TEST_CASE("tls_started outside a handshake is ignored")
{
    session_config cfg = test_config();
    cfg.starttls = true;
    driver d(cfg);
    d.run();
    d.take();
    d.s.tls_started(true, "TLSv1.3 X");
    CHECK_FALSE(d.s.tls_active());
    CHECK(d.s.tls_description().empty());
    d.s.tls_started(false, {});
    CHECK(d.send("NOOP\r\n") == event::need_input);
    CHECK(d.take() == "250 2.0.0 Ok\r\n");
}

TEST_CASE("protocol() adds S after EHLO over TLS and keeps SMTP after HELO")
{
    session_config cfg = test_config();
    cfg.implicit_tls = true;
    driver d(cfg);
    CHECK(d.s.tls_active());
    d.s.tls_started(true, "TLSv1.3 TLS_AES_128_GCM_SHA256");
    d.run();
    CHECK(d.take() == "220 mx.test ESMTP postern\r\n");
    CHECK(d.s.tls_description() == "TLSv1.3 TLS_AES_128_GCM_SHA256");
    d.send("EHLO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n.\r\n");
    d.send("MAIL FROM:<a@x.test> SMTPUTF8\r\nRCPT TO:<b@x.test>\r\nDATA\r\n.\r\n");
    d.send("HELO c\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n.\r\n");
    CHECK(d.protocols == std::vector<std::string>{"ESMTPS", "UTF8SMTPS", "SMTP"});
    CHECK(d.take().find("STARTTLS") == std::string::npos);
}

TEST_CASE("a source-routed recipient is flagged for the relay check, and the flag does not stick")
{
    struct probe {
        std::string rcpt;
        bool routed;
    };
    const probe probes[] = {
        {"<@a.test,@b.test:user@c.test>", true},
        {"<@a.test:user@c.test>", true},
        {"<user@c.test>", false},
    };
    session_config cfg = test_config();
    server_session s(cfg);
    s.start();
    s.feed("EHLO c\r\nMAIL FROM:<a@x.test>\r\n");
    for (const auto& p : probes) {
        CAPTURE(p.rcpt);
        s.feed("RCPT TO:" + p.rcpt + "\r\n");
        REQUIRE(s.next() == event::check_rcpt);
        CHECK(s.pending_rcpt().str() == "user@c.test");
        CHECK(s.pending_rcpt_source_routed() == p.routed);
        s.answer_rcpt(rcpt_verdict::relay_denied);
    }
}

TEST_CASE("protocol() gains A once authenticated: ESMTPA, ESMTPSA, UTF8SMTPSA")
{
    session_config cfg = test_config();
    cfg.auth = auth_offer::always;
    cfg.implicit_tls = true;
    driver d(cfg);
    d.s.tls_started(true, "TLSv1.3 TLS_AES_128_GCM_SHA256");
    d.run();
    // The driver answers every check_auth "invalid"; answer this one by hand.
    d.s.feed("EHLO c\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n");
    REQUIRE(d.s.next() == event::check_auth);
    d.s.answer_auth(auth_verdict::ok);
    CHECK(d.s.authenticated());
    d.run();
    d.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n.\r\n");
    d.send("MAIL FROM:<a@x.test> SMTPUTF8\r\nRCPT TO:<b@x.test>\r\nDATA\r\n.\r\n");
    CHECK(d.protocols == std::vector<std::string>{"ESMTPSA", "UTF8SMTPSA"});

    session_config plain = test_config();
    plain.auth = auth_offer::always;
    driver p(plain);
    p.run();
    p.s.feed("EHLO c\r\nAUTH LOGIN YWxpY2U=\r\nc2VjcmV0\r\n");
    REQUIRE(p.s.next() == event::check_auth);
    CHECK(p.s.pending_auth().mechanism == sasl_mechanism::login);
    CHECK(p.s.pending_auth().first == "YWxpY2U=");
    CHECK(p.s.pending_auth().second == "c2VjcmV0");
    p.s.answer_auth(auth_verdict::ok);
    CHECK(p.s.pending_auth().first.empty()); // forgotten once judged
    p.run();
    p.send("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nDATA\r\n.\r\n");
    CHECK(p.protocols == std::vector<std::string>{"ESMTPA"});
}

} // TEST_SUITE

TEST_CASE("a transaction is open from MAIL to its commit or RSET, and shutting down answers 421 4.3.2")
{
    server_session s(test_config());
    s.start();
    CHECK_FALSE(s.in_transaction());
    s.feed("EHLO client.example\r\n");
    CHECK(s.next() == event::need_input);
    CHECK_FALSE(s.in_transaction());
    s.feed("MAIL FROM:<a@x.test>\r\n");
    CHECK(s.next() == event::need_input);
    CHECK(s.in_transaction());
    s.feed("RSET\r\n");
    CHECK(s.next() == event::need_input);
    CHECK_FALSE(s.in_transaction());
    s.feed("MAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\n");
    REQUIRE(s.next() == event::check_rcpt);
    CHECK(s.in_transaction());
    s.answer_rcpt(rcpt_verdict::accept);
    s.feed("DATA\r\nSubject: s\r\n\r\nbody\r\n");
    CHECK(s.next() == event::need_input);
    CHECK(s.in_transaction()); // inside DATA
    s.feed(".\r\n");
    REQUIRE(s.next() == event::commit);
    CHECK(s.in_transaction()); // not yet durable
    s.committed(std::string("0123456789abcdef"));
    CHECK(s.next() == event::need_input);
    CHECK_FALSE(s.in_transaction());
    s.output().clear();
    s.shutting_down();
    CHECK(s.next() == event::close);
    CHECK(s.output().ends_with("421 4.3.2 " + test_config().hostname + " Service shutting down, try again later\r\n"));
}
