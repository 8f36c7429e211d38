// pop3/session.hpp — the POP3 server protocol as a pure state machine
// (RFC 1939; CAPA and response codes RFC 2449; STLS RFC 2595; AUTH RFC 5034
// with SASL PLAIN RFC 4616).
//
// Sans-I/O, the shape of smtp::server_session: the session takes bytes and
// yields events; it never touches a socket, a file or a clock. The shell:
//   s.start();
//   for (;;) switch (s.next()) {
//     case event::need_input:   send(s.output()); read with a deadline (else s.timeout()); s.feed(bytes);
//     case event::check_auth:   s.answer_auth(verify_and_lock(s.pending_user(), s.pending_password()));
//     case event::need_listing: s.listing(entries of mailbox::snapshot()) or s.listing_failed();
//     case event::retrieve:     s.message_chunk(piece)... then s.message_end(), or s.message_failed();
//                               (RETR: the whole message; TOP: mailbox::read_top(pending_top_lines()))
//     case event::update:       delete s.deletions(), mark s.retrieved() seen; s.updated(ok);
//     case event::start_tls:    send(s.output()); s.tls_started(handshake());
//     case event::close:        send(s.output()); close;
//   }
// Replies accumulate in output() and are flushed when the session needs
// input (RFC 2449 6.6 PIPELINING). A message is stuffed into output() piece
// by piece as the shell hands it over (the shell may flush between pieces),
// so a large message is never held twice.
// Deletions (RFC 1939 6): DELE only marks; the shell is asked to remove
// files only by event update, after QUIT in TRANSACTION. A connection that
// ends any other way deletes nothing.
// STLS (RFC 2595 4): after "+OK" every byte the client sent in plain text
// is dropped — buffered or fed before tls_started() — so nothing pipelined
// before the handshake is ever run (the CVE-2011-0411 defence of SMTP), and
// the session forgets any USER.
// The session never sees mailbox files: the shell hands it the listing
// (size, unique-id) after authentication, and message bytes on request.
// pending_password() is a credential: never log it.
// Thread: one session belongs to one coroutine.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "postern/smtp/dot_encoder.hpp"
#include "postern/smtp/server_session.hpp"

namespace postern::pop3 {

// never / tls_only / always, as for SMTP AUTH (RFC 2595 2.3 and RFC 1939
// 13: USER/PASS send the password in clear).
using smtp::auth_offer;

struct session_config {
    bool stls = false;          // offer STLS until TLS is active
    bool implicit_tls = false;  // port 995 (RFC 8314): TLS from the first byte
    auth_offer auth = auth_offer::tls_only;
    std::uint32_t max_errors = 10;       // bad commands before "-ERR" and close
    std::uint32_t max_auth_failures = 3; // "-ERR [AUTH]"s before close
};

enum class event { need_input, check_auth, need_listing, retrieve, update, start_tls, close };

// The shell's answer to check_auth (RFC 2449 8 response codes).
//   ok        credentials good and the mailbox locked: event need_listing next
//   invalid   "-ERR [AUTH] ..."; counts toward max_auth_failures
//   locked    "-ERR [AUTH] ..." and close (this client failed too often)
//   in_use    "-ERR [IN-USE] ..." (another session holds the mailbox lock)
//   temp_fail "-ERR [SYS/TEMP] ..." (no verdict could be had)
enum class auth_verdict { ok, invalid, locked, in_use, temp_fail };

// One message of the listing, in mailbox order (message n is entry n-1).
struct listing_entry {
    std::uint64_t size = 0; // octets as sent (stored with CRLF)
    std::string uid;        // RFC 1939 7 unique-id: 1-70 chars 0x21-0x7E
};

class session {
public:
    explicit session(session_config cfg);

    // Queues the greeting.
    void start();
    // The read deadline passed: "-ERR" and close.
    void timeout();
    // "-ERR [SYS/TEMP] why" and close: instead of start() (a connection
    // limit) or between commands (the server shutting down). Nothing marked
    // deleted is removed (RFC 1939 6: only QUIT enters UPDATE).
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
    std::uint32_t auth_failures() const noexcept { return auth_failures_; }

    // need_listing: the mailbox as opened after authentication.
    void listing(std::vector<listing_entry> entries);
    // The mailbox could not be opened: "-ERR [SYS/TEMP]", close.
    void listing_failed();

    // retrieve: pending_message() is 0-based into the listing; for TOP,
    // pending_top() and pending_top_lines() (body lines to send).
    std::size_t pending_message() const noexcept { return pending_; }
    bool pending_top() const noexcept { return top_; }
    std::uint64_t pending_top_lines() const noexcept { return top_lines_; }
    // The message as stored, any split; the first piece queues "+OK".
    void message_chunk(std::string_view piece);
    // Ends the message (CRLF.CRLF, RFC 1939 3).
    void message_end();
    // The file could not be read (moved or removed meanwhile): "-ERR".
    // Only before the first message_chunk().
    void message_failed();

    // update: 0-based indices marked deleted, and those retrieved (RETR)
    // and not deleted, for the shell to mark seen. Both ascending.
    std::vector<std::size_t> deletions() const;
    std::vector<std::size_t> retrieved() const;
    // The shell's outcome: ok "+OK", else "-ERR [SYS/TEMP]" (RFC 1939 6);
    // then close either way.
    void updated(bool ok);

    // start_tls: "+OK" is in output(); the shell sends it, handshakes, then
    // reports. ok: back in AUTHORIZATION, nothing remembered, inside TLS.
    // Not ok: event close, nothing more to send. With implicit_tls the
    // session starts with TLS active.
    void tls_started(bool ok);
    bool tls_active() const noexcept { return tls_active_; }

    std::uint32_t errors() const noexcept { return errors_; }

private:
    enum class state {
        fresh,          // before start()
        authorization,  // RFC 1939 4
        auth_response,  // "+ " sent, a SASL response line expected
        auth_wait,      // check_auth outstanding
        listing_wait,   // need_listing outstanding
        transaction,    // RFC 1939 5
        retrieve_wait,  // retrieve outstanding, no piece yet
        retrieving,     // "+OK" and some of the message sent
        update_wait,    // RFC 1939 6, update outstanding
        tls_pending,    // "+OK" to STLS sent, handshake outstanding
        closing,
        closed,
    };

    struct message {
        listing_entry entry;
        bool deleted = false;
        bool retrieved = false;
    };

    bool take_line(std::string& line);
    void handle_line(std::string_view line);
    void handle_auth_response(std::string_view line);
    void cmd_capa(std::string_view args);
    void cmd_user(std::string_view args);
    void cmd_pass(std::string_view args);
    void cmd_auth(std::string_view args);
    void cmd_stls(std::string_view args);
    void cmd_quit(std::string_view args);
    void cmd_stat(std::string_view args);
    void cmd_list(std::string_view args);
    void cmd_uidl(std::string_view args);
    void scan_listing(std::string_view args, std::string heading, std::string (*value)(const message&));
    void cmd_retr(std::string_view args);
    void cmd_top(std::string_view args);
    void cmd_dele(std::string_view args);
    void cmd_noop(std::string_view args);
    void cmd_rset(std::string_view args);
    void check_plain(std::string_view response);
    bool login_allowed() const noexcept;
    void refuse_login();
    message* find(std::string_view arg, bool& bad_syntax);
    void summary_counts(std::size_t& n, std::uint64_t& octets) const;
    void ok(std::string_view text);
    void err(std::string_view text);
    void error_reply(std::string_view text);
    void drop_input();

    session_config cfg_;
    state state_ = state::fresh;
    std::string in_;
    std::size_t in_pos_ = 0;
    bool discarding_long_line_ = false;
    std::string out_;

    std::string user_;
    std::string password_;
    bool have_user_ = false;
    std::vector<message> messages_;
    std::size_t pending_ = 0;
    bool top_ = false;
    std::uint64_t top_lines_ = 0;
    smtp::dot_encoder stuffer_;
    bool tls_active_ = false;
    std::uint32_t errors_ = 0;
    std::uint32_t auth_failures_ = 0;
};

} // namespace postern::pop3
