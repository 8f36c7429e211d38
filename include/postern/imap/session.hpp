// imap/session.hpp — the IMAP server protocol as a pure state machine
// (RFC 9051 IMAP4rev2, RFC 3501 IMAP4rev1; STARTTLS 6.2.1; AUTHENTICATE
// PLAIN RFC 4616 with SASL-IR RFC 4959; IDLE RFC 2177; ID RFC 2971;
// NAMESPACE RFC 2342).
//
// Sans-I/O, the shape of pop3::session: bytes in, events out; no socket,
// file or clock. The shell:
//   s.start();
//   for (;;) switch (s.next()) {
//     case event::need_input: send(s.output()); if s.idling(): watch the
//                             selected folder until input comes; read with a
//                             deadline (else s.timeout()); s.feed(bytes);
//     case event::check_auth: s.answer_auth(verify(s.pending_user(), s.pending_password()));
//     case event::execute:    run s.pending_command() against the user's
//                             store (imapd::executor), s.executed(outcome);
//     case event::start_tls:  send(s.output()); s.tls_started(handshake());
//     case event::close:      send(s.output()); close;
//   }
// What the session answers itself: framing and syntax (imap::reader,
// parse_command), the state rules (RFC 9051 3; "BAD" for a command not
// valid now), CAPABILITY, NOOP before login, LOGOUT, ID, NAMESPACE,
// STARTTLS, LOGIN and AUTHENTICATE (the password check is the shell's), the
// IDLE exchange. Everything that touches mail is handed over as a command:
// ENABLE too, as what it enables (IMAP4rev2, UTF8=ACCEPT) changes how the
// executor answers. The executor says whether a mailbox is now selected.
// Security: STARTTLS drops every byte the client sent before the handshake
// (reader::discard_input, the CVE-2011-0411 defence) and forgets nothing
// else, as nothing is remembered before login. LOGIN and AUTHENTICATE are
// refused outside TLS unless the shell's auth_offer allows it
// (LOGINDISABLED advertised, RFC 9051 6.2.3). Bad commands and failed
// logins are counted; past the bounds the session says BYE and closes.
// pending_password() is a credential: never log it.
// Thread: one session belongs to one coroutine.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "postern/imap/command.hpp"
#include "postern/imap/reader.hpp"
#include "postern/smtp/server_session.hpp"

namespace postern::imap {

using smtp::auth_offer;

struct session_config {
    bool starttls = false;     // offer STARTTLS until TLS is active
    bool implicit_tls = false; // port 993 (RFC 8314): TLS from the first byte
    auth_offer auth = auth_offer::tls_only;
    std::uint32_t max_errors = 10;       // BADs before "* BYE" and close
    std::uint32_t max_auth_failures = 3; // failed logins before "* BYE" and close
    reader_limits limits;                // max_append is advertised as APPENDLIMIT
    parse_limits parsing;
};

enum class event { need_input, check_auth, execute, start_tls, close };

// The shell's answer to check_auth (RFC 5530 response codes).
//   ok        credentials good: "OK [CAPABILITY ...] Logged in", authenticated
//   invalid   "NO [AUTHENTICATIONFAILED]"; counts toward max_auth_failures
//   locked    "NO [AUTHENTICATIONFAILED]", "* BYE", close (address locked out)
//   temp_fail "NO [UNAVAILABLE]" (no verdict could be had)
enum class auth_verdict { ok, invalid, locked, temp_fail };

// What the executor made of a command.
struct outcome {
    std::string text;      // untagged responses, then the tagged one
    bool selected = false; // a mailbox is selected afterwards
    bool close = false;    // text ends with "* BYE": end the session
};

class session {
public:
    explicit session(session_config cfg);

    // Queues the greeting ("* OK [CAPABILITY ...]").
    void start();
    // The read deadline passed: "* BYE" and close (RFC 9051 5.4).
    void timeout();
    // "* BYE [UNAVAILABLE] why" and close: instead of start() (a connection
    // limit) or between commands (the server shutting down, or in IDLE).
    void refuse(std::string_view why);

    void feed(std::string_view bytes);
    event next();

    // Bytes to send; the shell clears it after writing.
    std::string& output() noexcept { return out_; }

    // check_auth
    const std::string& pending_user() const noexcept { return user_; }
    const std::string& pending_password() const noexcept { return password_; }
    void answer_auth(auth_verdict v);
    bool authenticated() const noexcept;
    // The login name once authenticated (as the client sent it).
    const std::string& user() const noexcept { return user_; }
    std::uint32_t auth_failures() const noexcept { return auth_failures_; }

    // execute: the command to run; answered with executed().
    const command& pending_command() const noexcept { return *pending_; }
    void executed(outcome o);
    bool selected() const noexcept { return state_ == session_state::selected; }

    // In IDLE (RFC 2177): the shell reports changes of the selected folder
    // as they happen (untagged responses written straight to the client)
    // until input comes.
    bool idling() const noexcept { return step_ == step::idle; }

    // start_tls: the "OK" is in output(); the shell sends it, handshakes,
    // then reports. Not ok: event close, nothing more to send.
    void tls_started(bool ok);
    bool tls_active() const noexcept { return tls_active_; }

    std::uint32_t errors() const noexcept { return errors_; }
    // The reader (for the log: bytes in, a command cut off at close).
    const imap::reader& input() const noexcept { return reader_; }

    // The capabilities of the moment (RFC 9051 7.2.2), without "CAPABILITY".
    std::string capabilities() const;

private:
    // Where the session is, across the states of RFC 9051 3.
    enum class step {
        fresh,         // before start()
        ready,         // reading commands
        auth_response, // "+" sent, an AUTHENTICATE response line expected
        auth_wait,     // check_auth outstanding
        executing,     // execute outstanding
        idle,          // "+ idling" sent, DONE expected
        tls_pending,   // STARTTLS "OK" queued, handshake outstanding
        closing,
        closed,
    };

    void handle(command cmd);
    void cmd_capability(const command& c);
    void cmd_noop(command c);
    void cmd_logout(const command& c);
    void cmd_id(const command& c);
    void cmd_namespace(const command& c);
    void cmd_starttls(const command& c);
    void cmd_login(command& c);
    void cmd_authenticate(command& c);
    void cmd_idle(const command& c);
    void check_plain(std::string_view response);
    void handle_raw_line(std::string line);
    bool login_allowed() const noexcept;
    void bad(std::string_view tag, response_code code, std::string_view text);
    void bye(std::string_view text);

    session_config cfg_;
    reader reader_;
    step step_ = step::fresh;
    session_state state_ = session_state::not_authenticated;
    std::string out_;
    std::optional<command> pending_;
    std::string tag_; // of the command in AUTHENTICATE, IDLE or check_auth
    std::string user_;
    std::string password_;
    bool tls_active_ = false;
    std::uint32_t errors_ = 0;
    std::uint32_t auth_failures_ = 0;
};

} // namespace postern::imap
