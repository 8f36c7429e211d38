#include "postern/imap/session.hpp"

#include <string>
#include <string_view>

#include <doctest/doctest.h>

using namespace postern::imap;

namespace {

// Drives a session as the shell does: feed, then next() until an event that
// needs the shell; what the session wrote meanwhile is returned.
struct driver {
    explicit driver(session_config cfg = plain_loopback()) : s(std::move(cfg)) {}

    static session_config plain_loopback()
    {
        session_config c;
        c.starttls = true;
        c.auth = auth_offer::always;
        return c;
    }

    std::string start()
    {
        s.start();
        return step();
    }
    std::string send(std::string_view bytes)
    {
        s.feed(bytes);
        return step();
    }
    std::string step()
    {
        last = s.next();
        std::string out = s.output();
        s.output().clear();
        return out;
    }
    // LOGIN as alice, answered ok.
    void login()
    {
        send("l1 LOGIN alice secret\r\n");
        REQUIRE(last == event::check_auth);
        s.answer_auth(auth_verdict::ok);
        REQUIRE(step().rfind("l1 OK [CAPABILITY ", 0) == 0);
    }
    // SELECT INBOX, answered by a fake executor.
    void select()
    {
        send("s1 SELECT INBOX\r\n");
        REQUIRE(last == event::execute);
        REQUIRE(s.pending_command().verb == verb::select);
        s.executed({"* 0 EXISTS\r\ns1 OK [READ-WRITE] SELECT completed\r\n", true, false});
        REQUIRE(step() == "* 0 EXISTS\r\ns1 OK [READ-WRITE] SELECT completed\r\n");
    }

    session s;
    event last = event::need_input;
};

bool contains(std::string_view hay, std::string_view needle)
{
    return hay.find(needle) != std::string_view::npos;
}

} // namespace

TEST_SUITE("imap")
{
    TEST_CASE("the greeting carries the capabilities of the moment (RFC 9051 7.1.1)")
    {
        SUBCASE("plain text with login only inside TLS: STARTTLS and LOGINDISABLED")
        {
            session_config c;
            c.starttls = true;
            c.auth = auth_offer::tls_only;
            driver d(c);
            const auto g = d.start();
            CHECK(g.rfind("* OK [CAPABILITY IMAP4rev1 IMAP4rev2 ", 0) == 0);
            CHECK(contains(g, " STARTTLS"));
            CHECK(contains(g, " LOGINDISABLED"));
            CHECK_FALSE(contains(g, "AUTH=PLAIN"));
            CHECK(d.last == event::need_input);
        }
        SUBCASE("implicit TLS: AUTH=PLAIN, no STARTTLS")
        {
            session_config c;
            c.implicit_tls = true;
            c.auth = auth_offer::tls_only;
            driver d(c);
            const auto g = d.start();
            CHECK(contains(g, " AUTH=PLAIN"));
            CHECK_FALSE(contains(g, "STARTTLS"));
            CHECK_FALSE(contains(g, "LOGINDISABLED"));
            CHECK(d.s.tls_active());
        }
        SUBCASE("APPENDLIMIT is the configured APPEND bound (RFC 7889)")
        {
            session_config c;
            c.limits.max_append = 12345;
            driver d(c);
            CHECK(contains(d.start(), " APPENDLIMIT=12345"));
        }
    }

    TEST_CASE("LOGIN outside TLS is refused when login needs TLS (RFC 9051 6.2.3)")
    {
        session_config c;
        c.starttls = true;
        c.auth = auth_offer::tls_only;
        driver d(c);
        d.start();
        CHECK(d.send("a LOGIN alice secret\r\n") == "a NO [PRIVACYREQUIRED] Login only after STARTTLS\r\n");
        CHECK(d.send("b AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n") ==
              "b NO [PRIVACYREQUIRED] Login only after STARTTLS\r\n");
        CHECK(d.last == event::need_input);
        CHECK_FALSE(d.s.authenticated());
    }

    TEST_CASE("STARTTLS drops what was pipelined behind it and offers login afterwards (RFC 9051 6.2.1)")
    {
        session_config c;
        c.starttls = true;
        c.auth = auth_offer::tls_only;
        driver d(c);
        d.start();
        CHECK(d.send("t STARTTLS\r\nx LOGIN alice secret\r\n") == "t OK Begin TLS negotiation now\r\n");
        CHECK(d.last == event::start_tls);
        d.s.feed("y LOGIN alice secret\r\n"); // plain text before the handshake: dropped too
        d.s.tls_started(true);
        CHECK(d.step().empty());
        CHECK(d.last == event::need_input);
        const auto caps = d.send("c CAPABILITY\r\n");
        CHECK(contains(caps, " AUTH=PLAIN"));
        CHECK_FALSE(contains(caps, "STARTTLS"));
        CHECK(d.send("t2 STARTTLS\r\n") == "t2 BAD STARTTLS is not available\r\n");
    }

    TEST_CASE("a failed handshake closes without another word")
    {
        driver d;
        d.start();
        d.send("t STARTTLS\r\n");
        REQUIRE(d.last == event::start_tls);
        d.s.tls_started(false);
        CHECK(d.step().empty());
        CHECK(d.last == event::close);
    }

    TEST_CASE("LOGIN asks the shell, and the answer is the verdict's")
    {
        driver d;
        d.start();
        SUBCASE("ok: capabilities in the tagged OK, authenticated")
        {
            d.send("a LOGIN \"alice@example.test\" {6}\r\n");
            CHECK(d.last == event::need_input);
            d.s.feed("secret\r\n");
            d.step();
            REQUIRE(d.last == event::check_auth);
            CHECK(d.s.pending_user() == "alice@example.test");
            CHECK(d.s.pending_password() == "secret");
            d.s.answer_auth(auth_verdict::ok);
            const auto out = d.step();
            CHECK(out.rfind("a OK [CAPABILITY IMAP4rev1 ", 0) == 0);
            CHECK_FALSE(contains(out, "AUTH=PLAIN"));
            CHECK(d.s.authenticated());
            CHECK(d.s.pending_password().empty());
        }
        SUBCASE("invalid: AUTHENTICATIONFAILED; after max_auth_failures BYE and close")
        {
            for (int i = 1; i <= 3; ++i) {
                CAPTURE(i);
                d.send("a LOGIN alice wrong\r\n");
                REQUIRE(d.last == event::check_auth);
                d.s.answer_auth(auth_verdict::invalid);
                const auto out = d.step();
                CHECK(out.rfind("a NO [AUTHENTICATIONFAILED] Invalid credentials\r\n", 0) == 0);
                CHECK(contains(out, "* BYE") == (i == 3));
                CHECK(d.last == (i == 3 ? event::close : event::need_input));
            }
        }
        SUBCASE("locked: BYE at once")
        {
            d.send("a LOGIN alice secret\r\n");
            d.s.answer_auth(auth_verdict::locked);
            CHECK(d.step() == "a NO [AUTHENTICATIONFAILED] Invalid credentials\r\n* BYE Too many authentication failures\r\n");
            CHECK(d.last == event::close);
        }
        SUBCASE("temp_fail: UNAVAILABLE, the session goes on")
        {
            d.send("a LOGIN alice secret\r\n");
            d.s.answer_auth(auth_verdict::temp_fail);
            CHECK(d.step() == "a NO [UNAVAILABLE] Authentication is unavailable, try later\r\n");
            CHECK(d.last == event::need_input);
            CHECK_FALSE(d.s.authenticated());
        }
    }

    TEST_CASE("AUTHENTICATE PLAIN with and without an initial response (RFC 9051 6.2.2, RFC 4959)")
    {
        driver d;
        d.start();
        SUBCASE("SASL-IR")
        {
            d.send("a AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n");
            REQUIRE(d.last == event::check_auth);
            CHECK(d.s.pending_user() == "alice");
            CHECK(d.s.pending_password() == "secret");
        }
        SUBCASE("challenge and response")
        {
            CHECK(d.send("a AUTHENTICATE PLAIN\r\n") == "+ \r\n");
            CHECK(d.last == event::need_input);
            d.send("AGFsaWNlAHNlY3JldA==\r\n");
            REQUIRE(d.last == event::check_auth);
            CHECK(d.s.pending_user() == "alice");
        }
        SUBCASE("\"*\" cancels with BAD")
        {
            d.send("a AUTHENTICATE PLAIN\r\n");
            CHECK(d.send("*\r\n") == "a BAD AUTHENTICATE cancelled\r\n");
            CHECK(d.last == event::need_input);
        }
        SUBCASE("garbage is BAD, an authorization identity of another user a failure")
        {
            d.send("a AUTHENTICATE PLAIN\r\n");
            CHECK(d.send("!!!\r\n") == "a BAD Malformed SASL PLAIN response\r\n");
            // "bob\0alice\0secret": alice would act as bob
            CHECK(d.send("b AUTHENTICATE PLAIN Ym9iAGFsaWNlAHNlY3JldA==\r\n") ==
                  "b NO [AUTHENTICATIONFAILED] Invalid credentials\r\n");
        }
        SUBCASE("other mechanisms are refused")
        {
            CHECK(d.send("a AUTHENTICATE CRAM-MD5\r\n") == "a NO [CANNOT] Unsupported authentication mechanism\r\n");
        }
    }

    TEST_CASE("commands outside their state are BAD; mail commands go to the executor")
    {
        driver d;
        d.start();
        CHECK(d.send("a SELECT INBOX\r\n") == "a BAD [CLIENTBUG] SELECT needs a login first\r\n");
        d.login();
        CHECK(d.send("b FETCH 1 FLAGS\r\n") == "b BAD [CLIENTBUG] FETCH needs a selected mailbox\r\n");
        CHECK(d.send("c LOGIN alice secret\r\n") == "c BAD [CLIENTBUG] LOGIN is not valid in this state\r\n");
        CHECK(d.send("n NOOP\r\n") == "n OK NOOP completed\r\n"); // nothing selected: nothing to report
        d.send("l LIST \"\" \"*\"\r\n");
        CHECK(d.last == event::execute);
        CHECK(d.s.pending_command().verb == verb::list);
        d.s.executed({"l OK LIST completed\r\n", false, false});
        CHECK(d.step() == "l OK LIST completed\r\n");
        d.select();
        CHECK(d.s.selected());
        d.send("f FETCH 1 FLAGS\r\n");
        CHECK(d.last == event::execute);
        d.s.executed({"f OK FETCH completed\r\n", true, false});
        d.step();
        d.send("n2 NOOP\r\n"); // selected: NOOP polls for changes (RFC 9051 6.1.2)
        CHECK(d.last == event::execute);
        d.s.executed({"* 1 EXISTS\r\nn2 OK NOOP completed\r\n", true, false});
        CHECK(d.step() == "* 1 EXISTS\r\nn2 OK NOOP completed\r\n");
        d.send("c CLOSE\r\n");
        d.s.executed({"c OK CLOSE completed\r\n", false, false});
        d.step();
        CHECK_FALSE(d.s.selected());
        CHECK(d.send("f FETCH 1 FLAGS\r\n") == "f BAD [CLIENTBUG] FETCH needs a selected mailbox\r\n");
    }

    TEST_CASE("an outcome with close ends the session")
    {
        driver d;
        d.start();
        d.login();
        d.select();
        d.send("n NOOP\r\n");
        d.s.executed({"* BYE [UNAVAILABLE] The mailbox was re-created; please reconnect\r\n", false, true});
        CHECK(d.step() == "* BYE [UNAVAILABLE] The mailbox was re-created; please reconnect\r\n");
        CHECK(d.last == event::close);
    }

    TEST_CASE("IDLE: a continuation, then DONE ends it (RFC 2177 3)")
    {
        driver d;
        d.start();
        d.login();
        d.select();
        CHECK(d.send("i IDLE\r\n") == "+ idling\r\n");
        CHECK(d.last == event::need_input);
        CHECK(d.s.idling());
        SUBCASE("DONE, in any case")
        {
            CHECK(d.send("done\r\n") == "i OK IDLE terminated\r\n");
            CHECK_FALSE(d.s.idling());
        }
        SUBCASE("DONE in two pieces")
        {
            CHECK(d.send("DO").empty());
            CHECK(d.s.idling());
            CHECK(d.send("NE\r\n") == "i OK IDLE terminated\r\n");
        }
        SUBCASE("anything else is BAD")
        {
            CHECK(d.send("x NOOP\r\n") == "i BAD Expected DONE\r\n");
            CHECK_FALSE(d.s.idling());
        }
        SUBCASE("a shutdown while idling says BYE")
        {
            d.s.refuse("Server shutting down");
            CHECK(d.step() == "* BYE [UNAVAILABLE] Server shutting down\r\n");
            CHECK(d.last == event::close);
        }
    }

    TEST_CASE("the session's own commands: CAPABILITY, ID, NAMESPACE, LOGOUT")
    {
        driver d;
        d.start();
        CHECK(d.send("i ID (\"name\" \"test\")\r\n") == "* ID (\"name\" \"postern\")\r\ni OK ID completed\r\n");
        d.login();
        CHECK(d.send("n NAMESPACE\r\n") == "* NAMESPACE ((\"\" \".\")) NIL NIL\r\nn OK NAMESPACE completed\r\n");
        const auto caps = d.send("c CAPABILITY\r\n");
        CHECK(caps.rfind("* CAPABILITY IMAP4rev1 IMAP4rev2 LITERAL+ ", 0) == 0);
        for (auto cap : {"IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "ESEARCH", "UNSELECT", "NAMESPACE", "ENABLE"}) {
            CAPTURE(cap);
            CHECK(contains(caps, std::string(" ") + cap));
        }
        CHECK(d.send("e ENABLE UTF8=ACCEPT\r\n").empty()); // the executor's (it changes how names are sent)
        CHECK(d.last == event::execute);
        d.s.executed({"* ENABLED UTF8=ACCEPT\r\ne OK ENABLE completed\r\n", false, false});
        d.step();
        CHECK(d.send("q LOGOUT\r\n") == "* BYE postern logging out\r\nq OK LOGOUT completed\r\n");
        CHECK(d.last == event::close);
    }

    TEST_CASE("literals get a continuation request; an APPEND over APPENDLIMIT gets none (RFC 7889 4)")
    {
        session_config c = driver::plain_loopback();
        c.limits.max_append = 100;
        driver d(c);
        d.start();
        d.login();
        CHECK(d.send("a APPEND INBOX {5}\r\n") == "+ Ready for literal data\r\n");
        d.send("hello\r\n");
        CHECK(d.last == event::execute);
        const auto& append = std::get<append_args>(d.s.pending_command().args);
        CHECK(append.message == "hello");
        d.s.executed({"a OK [APPENDUID 1 1] APPEND completed\r\n", false, false});
        d.step();
        CHECK(d.send("b APPEND INBOX {101}\r\n") == "b NO [TOOBIG] Message too large\r\n");
        CHECK(d.s.errors() == 0);
    }

    TEST_CASE("too many bad commands end the session")
    {
        session_config c = driver::plain_loopback();
        c.max_errors = 3;
        driver d(c);
        d.start();
        CHECK(d.send("a FROB\r\n").rfind("a BAD ", 0) == 0);
        CHECK(d.send("\r\n").empty()); // empty lines are not commands
        CHECK(d.send("(x\r\n").rfind("* BAD", 0) == 0); // no valid tag
        const auto out = d.send("b FROB\r\n");
        CHECK(out.rfind("b BAD ", 0) == 0);
        CHECK(contains(out, "* BYE Too many invalid commands\r\n"));
        CHECK(d.last == event::close);
    }

    TEST_CASE("timeout and refuse say BYE and close")
    {
        driver d;
        d.start();
        SUBCASE("timeout")
        {
            d.s.timeout();
            CHECK(d.step() == "* BYE Autologout; idle for too long\r\n");
        }
        SUBCASE("refuse: reasons cannot split the line")
        {
            d.s.refuse("Too many\r\nconnections");
            CHECK(d.step() == "* BYE [UNAVAILABLE] Too many  connections\r\n");
        }
        CHECK(d.last == event::close);
        d.s.feed("a NOOP\r\n");
        CHECK(d.step().empty());
        CHECK(d.last == event::close);
    }
}
