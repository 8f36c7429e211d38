// smtp/server_session.hpp — the SMTP server protocol as a pure state machine
// (RFC 5321, with PIPELINING 2920, SIZE 1870, 8BITMIME 6152,
// ENHANCEDSTATUSCODES 2034, SMTPUTF8 6531, STARTTLS 3207; implicit TLS 8314).
//
// Sans-I/O (DESIGN "The protocol core is sans-I/O"): the session takes bytes
// and yields events; it never touches a socket, a file or a clock. The shell:
//   s.start();
//   for (;;) switch (s.next()) {
//     case event::need_input:  send(s.output()); read with s.deadline(); s.feed(bytes);
//     case event::check_rcpt:  s.answer_rcpt(policy(s.pending_rcpt()));
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
// Thread: one session belongs to one coroutine.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "postern/mail/envelope.hpp"
#include "postern/smtp/data_reader.hpp"
#include "postern/util/result.hpp"

namespace postern::smtp {

struct session_config {
    std::string hostname;
    std::uint64_t max_message_size = 36700160;
    std::uint32_t max_recipients = 100;
    std::uint32_t max_errors = 20;
    bool starttls = false;     // offer STARTTLS in EHLO until TLS is active
    bool implicit_tls = false; // the connection is TLS from its first byte (port 465)
};

enum class event { need_input, check_rcpt, commit, start_tls, close };
enum class input_phase { command, data };

// The shell's answer to check_rcpt.
enum class rcpt_verdict { accept, unknown_user, relay_denied, temp_fail };

class server_session {
public:
    explicit server_session(session_config cfg);

    // Queues the greeting.
    void start();
    // Queues "421 4.7.0" and closes (connection limits at connect).
    void refuse(std::string_view why);
    // The read deadline passed: "421 4.4.2", close.
    void timeout();

    void feed(std::string_view bytes);
    event next();

    // Bytes to send; the shell clears it after writing.
    std::string& output() noexcept { return out_; }
    input_phase phase() const noexcept;

    // check_rcpt
    const mail::address& pending_rcpt() const noexcept { return pending_rcpt_; }
    bool pending_rcpt_is_bare_postmaster() const noexcept { return pending_rcpt_.domain.empty(); }
    void answer_rcpt(rcpt_verdict v);

    // commit
    const mail::envelope& envelope() const noexcept { return env_; }
    std::string& body() noexcept { return data_.body(); }
    std::string_view helo() const noexcept { return helo_; }
    // "SMTP", "ESMTP" or "UTF8SMTP", with an "S" appended after EHLO over TLS
    // ("ESMTPS", "UTF8SMTPS"; RFC 3848, RFC 6531 3.7.3), for Received:.
    // HELO stays "SMTP" over TLS: RFC 3848 defines the S forms for EHLO only.
    std::string_view protocol() const noexcept;
    // The store's answer: a queue id, or the reason it could not be stored.
    void committed(const util::result<std::string>& id);

    // start_tls: the 220 is in output(); the shell sends it, handshakes, then
    // reports. ok: the session is back before EHLO, inside TLS, and
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
        greeted,   // before HELO/EHLO
        ready,     // after HELO/EHLO, no transaction
        mail,      // after MAIL
        rcpt_wait, // check_rcpt outstanding
        data,      // reading the message
        commit_wait,
        tls_pending, // 220 to STARTTLS sent, handshake outstanding
        closing,
        closed,
    };

    bool take_line(std::string_view& line);
    void handle_line(std::string_view line);
    void handle_ehlo(std::string_view args, bool extended);
    void handle_mail(std::string_view args);
    void handle_rcpt(std::string_view args);
    void handle_data();
    void handle_starttls();
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
    bool rcpt_attempted_ = false;
    std::uint64_t declared_size_ = 0;
    data_reader data_{0};
    std::uint32_t errors_ = 0;
    std::uint32_t messages_ = 0;
    bool tls_active_ = false;
    std::string tls_description_;
};

} // namespace postern::smtp
