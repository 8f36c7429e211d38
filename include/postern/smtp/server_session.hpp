// smtp/server_session.hpp — the SMTP server protocol as a pure state machine
// (RFC 5321, with PIPELINING 2920, SIZE 1870, 8BITMIME 6152, CHUNKING and
// BINARYMIME 3030, DSN 3461, ENHANCEDSTATUSCODES 2034, SMTPUTF8 6531,
// STARTTLS 3207, AUTH 4954; implicit TLS 8314; submission 6409).
//
// Sans-I/O (DESIGN "The protocol core is sans-I/O"): the session takes bytes
// and yields events; it never touches a socket, a file or a clock. The shell:
//   s.start();
//   for (;;) switch (s.next()) {
//     case event::need_input:  send(s.output()); read with s.deadline(); s.feed(bytes);
//     case event::check_rcpt:  s.answer_rcpt(policy(s.pending_rcpt()));
//     case event::check_sender: s.answer_sender(owns(user, s.envelope().sender));
//     case event::check_auth:  s.answer_auth(verify(decode(s.pending_auth())));
//     case event::commit:      s.committed(store(s.envelope(), s.body()));
//     case event::start_tls:   send(s.output()); s.tls_started(handshake(), "TLSv1.3 <cipher>");
//     case event::close:       send(s.output()); close;
//   }
// Replies accumulate in output() and are flushed only when the session needs
// input (RFC 2920 3.2: the server may batch replies to a pipelined group).
// STARTTLS (RFC 3207): after the 220 every byte the client sent in plain text
// is dropped — those already buffered and any fed before tls_started() — so
// nothing pipelined before the handshake is ever run (CVE-2011-0411), and the
// session forgets HELO/EHLO and any transaction (RFC 3207 4.2).
// Implicit TLS (RFC 8314): cfg.implicit_tls, and tls_started(true, ...)
// before start() to record the description; STARTTLS is then never offered.
// AUTH (RFC 4954): the session runs the exchange (334 prompts, "*" cancels,
// base64 checked, response lines up to 12288 octets) and hands the shell the
// responses still in base64; SASL decoding and the password check are the
// shell's (auth module, on a worker thread), and so is any failure delay.
// The responses are credentials: never log pending_auth().
// BDAT (RFC 3030): every chunk is read to its last octet, even when the
// command is refused, so the session never takes message content for
// commands; only a chunk size that cannot be read ends the connection. Text
// chunks (7BIT, 8BITMIME) keep DATA's rules — CRLF lines of at most 1000
// octets, no bare CR or LF (DESIGN promise 4) — checked at LAST; BINARYMIME
// content may hold any octets and is accepted only with BDAT.
// Thread: one session belongs to one coroutine.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "postern/mail/envelope.hpp"
#include "postern/smtp/data_reader.hpp"
#include "postern/util/result.hpp"

namespace postern::smtp {

// When AUTH is advertised and accepted: never (no users with passwords),
// only inside TLS (RFC 4954 4: plain-text passwords need a protected
// channel), or always (loopback testing, by configuration).
enum class auth_offer { never, tls_only, always };

// Whether a login may happen now under that policy (SMTP AUTH, POP3 USER/AUTH).
constexpr bool login_offered(auth_offer offer, bool tls_active) noexcept
{
    switch (offer) {
    case auth_offer::never:
        return false;
    case auth_offer::tls_only:
        return tls_active;
    case auth_offer::always:
        return true;
    }
    return false;
}

struct session_config {
    std::string hostname;
    std::uint64_t max_message_size = 36700160;
    std::uint32_t max_recipients = 100;
    std::uint32_t max_errors = 20;
    bool starttls = false;     // offer STARTTLS in EHLO until TLS is active
    bool implicit_tls = false; // the connection is TLS from its first byte (port 465)
    auth_offer auth = auth_offer::never;
    // RFC 6409 4.3/6.1: a submission listener; MAIL needs AUTH first (530 5.7.0).
    bool submission = false;
    std::uint32_t max_auth_failures = 3; // 535s before 421 4.7.0 and close
};

enum class event { need_input, check_rcpt, check_sender, check_auth, commit, start_tls, close };
enum class input_phase { command, data };

// The shell's answer to check_rcpt.
enum class rcpt_verdict { accept, unknown_user, relay_denied, temp_fail };

// The SASL exchange the shell is asked to check: each response as sent
// (base64, already checked to be valid base64). PLAIN: first only; LOGIN:
// first the user name, second the password.
enum class sasl_mechanism { plain, login };
struct auth_request {
    sasl_mechanism mechanism = sasl_mechanism::plain;
    std::string first;
    std::string second;
};

// The shell's answer to check_auth.
//   ok        235 2.7.0; the session is authenticated
//   invalid   535 5.7.8 (wrong user or password); counts toward max_auth_failures
//   malformed 501 5.5.2 (the decoded SASL message is not well formed)
//   locked    421 4.7.0 and close (this client address failed too often)
//   temp_fail 454 4.7.0 (no verdict could be had)
enum class auth_verdict { ok, invalid, malformed, locked, temp_fail };

class server_session {
public:
    explicit server_session(session_config cfg);

    // Queues the greeting.
    void start();
    // Queues "421 4.7.0" and closes (connection limits at connect).
    void refuse(std::string_view why);
    // The read deadline passed: "421 4.4.2", close.
    void timeout();
    // The server is going down (RFC 5321 3.8): "421 4.3.2", close. An open
    // transaction is abandoned, its message not accepted (the client keeps
    // it and retries).
    void shutting_down();
    // MAIL given and the transaction neither committed nor reset: the
    // client would lose work if the session ended now.
    bool in_transaction() const noexcept;

    void feed(std::string_view bytes);
    event next();

    // The shell's view of the disks: while low, MAIL and DATA get 452 4.3.1
    // (RFC 3463 4.3.1; RFC 5321 4.2.5: the client keeps the message and
    // retries later). Set before feeding; it takes effect at the next command.
    void set_storage_low(bool low) noexcept { storage_low_ = low; }

    // Bytes to send; the shell clears it after writing.
    std::string& output() noexcept { return out_; }
    input_phase phase() const noexcept;

    // check_rcpt
    const mail::address& pending_rcpt() const noexcept { return pending_rcpt_; }
    bool pending_rcpt_is_bare_postmaster() const noexcept { return pending_rcpt_.domain.empty(); }
    // The forward-path carried a source route ("@a,@b:user@c"); the route is
    // ignored (RFC 5321 4.1.1.3), but the shell declines to relay for it.
    bool pending_rcpt_source_routed() const noexcept { return pending_rcpt_routed_; }
    void answer_rcpt(rcpt_verdict v);

    // check_sender (only once authenticated): envelope().sender is the MAIL
    // FROM path; false refuses it with 553 5.7.1 (RFC 6409 6.1, a user may
    // only send as one of their addresses).
    void answer_sender(bool owned);

    // check_auth
    const auth_request& pending_auth() const noexcept { return auth_; }
    void answer_auth(auth_verdict v);
    bool authenticated() const noexcept { return authenticated_; }
    // 535s so far; the shell grows its delay with it.
    std::uint32_t auth_failures() const noexcept { return auth_failures_; }

    // commit
    const mail::envelope& envelope() const noexcept { return env_; }
    std::string& body() noexcept { return data_.body(); }
    std::string_view helo() const noexcept { return helo_; }
    // "SMTP", "ESMTP" or "UTF8SMTP", with "S" appended after EHLO over TLS
    // and "A" once authenticated ("ESMTPS", "ESMTPSA", "UTF8SMTPSA"; RFC 3848,
    // RFC 6531 3.7.3), for Received:. HELO stays "SMTP" over TLS: RFC 3848
    // defines the S and A forms for EHLO only (and AUTH needs EHLO).
    std::string_view protocol() const noexcept;
    // The store's answer: a queue id, or the reason it could not be stored.
    void committed(const util::result<std::string>& id);

    // start_tls: the 220 is in output(); the shell sends it, handshakes, then
    // reports. ok: the session is back before EHLO and unauthenticated, inside TLS, and
    // description ("TLSv1.3 TLS_AES_256_GCM_SHA384": version, space, cipher)
    // is kept for Received:. Not ok: event close, with nothing more to send.
    // With implicit_tls it is called before start() instead. Ignored otherwise.
    void tls_started(bool ok, std::string description);
    bool tls_active() const noexcept { return tls_active_; }
    std::string_view tls_description() const noexcept { return tls_description_; }

    // Counters the shell logs.
    std::uint32_t errors() const noexcept { return errors_; }
    std::uint32_t messages() const noexcept { return messages_; }

private:
    enum class state {
        fresh,     // before start()
        chunk,     // reading the octets of a BDAT chunk
        greeted,   // before HELO/EHLO
        ready,     // after HELO/EHLO, no transaction
        mail,      // after MAIL
        rcpt_wait, // check_rcpt outstanding
        sender_wait,   // check_sender outstanding
        auth_response, // 334 sent, a SASL response line expected
        auth_wait,     // check_auth outstanding
        data,      // reading the message
        commit_wait,
        tls_pending, // 220 to STARTTLS sent, handshake outstanding
        closing,
        closed,
    };

    // A reply kept for later: the answer to a BDAT chunk, sent once its
    // octets are read.
    struct held_reply {
        int code = 0;
        std::string esc;
        std::string text;
    };

    bool take_line(std::string_view& line);
    void handle_line(std::string_view line);
    void handle_ehlo(std::string_view args, bool extended);
    void handle_mail(std::string_view args);
    void handle_rcpt(std::string_view args);
    void handle_data();
    void handle_bdat(std::string_view args);
    void end_of_chunk();
    void refuse_message();
    void handle_starttls();
    void handle_auth(std::string_view args);
    void handle_auth_response(std::string_view line);
    bool auth_available() const noexcept;
    std::size_t line_limit() const noexcept;
    void drop_input();
    void end_of_data();
    void reset_transaction();
    void reply(int code, std::string_view esc, std::string_view text);
    void error_reply(int code, std::string_view esc, std::string_view text);

    session_config cfg_;
    state state_ = state::fresh;
    std::string in_;
    std::size_t in_pos_ = 0;
    bool discarding_long_line_ = false;
    std::string out_;

    std::string helo_;
    bool extended_ = false;
    mail::envelope env_;
    mail::address pending_rcpt_;
    mail::recipient_dsn pending_rcpt_dsn_;
    bool pending_rcpt_routed_ = false;
    bool rcpt_attempted_ = false;
    std::uint64_t declared_size_ = 0;
    data_reader data_{0};
    // BDAT: the octets of the current chunk still to read, whether it is the
    // LAST, and what to answer when they are in (code 0: the chunk is good).
    std::uint64_t chunk_left_ = 0;
    std::uint64_t chunk_size_ = 0;
    bool chunk_last_ = false;
    held_reply chunk_reply_;
    state chunk_return_ = state::ready; // where the session goes back after the chunk
    bool bdat_used_ = false;     // this transaction's message comes by BDAT
    held_reply bdat_failure_;   // a refused chunk fails every later one until LAST or RSET
    std::uint32_t errors_ = 0;
    std::uint32_t messages_ = 0;
    bool tls_active_ = false;
    bool storage_low_ = false;
    std::string tls_description_;
    auth_request auth_;
    bool authenticated_ = false;
    std::uint32_t auth_failures_ = 0;
};

} // namespace postern::smtp
