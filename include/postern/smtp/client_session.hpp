// smtp/client_session.hpp — the SMTP client protocol (the relay side) as a
// pure state machine, the mirror of server_session (RFC 5321; PIPELINING
// 2920, SIZE 1870, 8BITMIME 6152, STARTTLS 3207, ENHANCEDSTATUSCODES 2034,
// SMTPUTF8 6531, AUTH 4954 with PLAIN 4616 and LOGIN, CHUNKING and
// BINARYMIME 3030), and LMTP (RFC 2033) for delivery to a local LMTP server.
//
// Sans-I/O (DESIGN "The protocol core is sans-I/O"): no sockets, files,
// clocks or TLS inside. The shell (delivery::remote_agent, delivery::lmtp_agent)
// connects, then:
//   client_session s(cfg);
//   s.add_message(env, body);                  // optional before the first next()
//   for (;;) switch (s.next()) {
//     case client_event::send:         write(s.output()); s.output().clear(); break;
//     case client_event::need_reply:   read with s.read_timeout(): s.feed(bytes),
//                                      or s.peer_closed() / s.timeout(); break;
//     case client_event::start_tls:    handshake; s.tls_started(ok); break;
//     case client_event::message_done: record(s.results()); then s.add_message(next) or s.quit(); break;
//     case client_event::closed:       close; if (s.failure().try_next_host) next MX; return;
//   }
//
// Contract and invariants:
//  - every add_message() is answered by exactly one message_done, with one
//    rcpt_result per recipient in recipient order: 2xx delivered, 4xx
//    deferred, 5xx bounced. When the connection fails (greeting refused,
//    TLS failure, peer gone, 421, protocol error) recipients without a final
//    answer get a 4xx result, message_done comes first and closed after it;
//    failure() is already set at that message_done;
//  - message_done with no message added means "ready": add_message() or quit();
//  - a recipient's 250 to RCPT is provisional: its result is the reply to
//    the end of data (RFC 5321 3.3); with LMTP, each accepted recipient's
//    own reply after the end of data, in RCPT order (RFC 2033 4.2);
//  - the message goes with BDAT (RFC 3030) when the peer offers CHUNKING
//    (SMTP only): chunks of at most 64 KiB, pipelined when PIPELINING is
//    offered, no dot-stuffing; a 4xx/5xx to a chunk is the result of every
//    accepted recipient and no further chunk is sent. A BINARYMIME message
//    goes only to a peer offering CHUNKING and BINARYMIME; otherwise every
//    recipient fails 554 5.6.3 (no conversion: RFC 3030 3, RFC 3463 5.6.3);
//  - LMTP: LHLO instead of EHLO, no HELO fallback, no STARTTLS, no AUTH, DATA
//    only (RFC 2033 defines the per-recipient replies for DATA alone);
//  - after STARTTLS everything buffered from the peer is discarded and all
//    knowledge of it forgotten; EHLO is sent again (RFC 3207 4.2, CVE-2011-0411);
//  - AUTH (client_config::auth_username set) follows the final EHLO and
//    precedes the first message; credentials go only over a TLS-active
//    connection (RFC 4954 4, RFC 8314): without TLS the connection fails
//    4.7.11 before anything is sent. PLAIN is preferred, then LOGIN. Any
//    AUTH failure defers (4xx), never bounces: it is our configuration;
//    try_next_host is false for a 5xx or no common mechanism, true for 4xx;
//  - the password (raw or base64) appears in no result or failure text,
//    not even when the peer echoes it back (STYLE 12);
//  - bounded: one reply at most 512 octets a line, 100 lines, 64 KiB
//    (reply_parser); unread input at most 256 KiB; the body goes out in
//    pieces of at most 64 KiB, so output() never holds a whole message.
// The body is borrowed: add_message() keeps a view of the message as queued
// (raw octets: one buffer serves DATA, dot-encoded piece by piece as it goes
// out, and BDAT, sent as is), and the shell keeps that buffer alive until the
// message's message_done (the one exception to "no string_view members", to
// avoid a copy of every outgoing message).
// Thread: one session belongs to one coroutine.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "postern/smtp/dot_encoder.hpp"
#include "postern/smtp/reply_parser.hpp"

namespace postern::smtp {

struct client_config {
    std::string helo_name;
    // tls_policy "none" → false; "may", "encrypt", "verify" → true.
    bool offer_starttls_allowed = true;
    // tls_policy "encrypt" / "verify": no STARTTLS offered (or refused) means
    // no delivery to this host (4.7.4, try the next one).
    bool require_tls = false;
    // relay "tls": "implicit": the connection is TLS from the first byte
    // (RFC 8314 3.3): tls_active() from the start, no STARTTLS.
    bool implicit_tls = false;
    // SMTP AUTH credentials (relay "username", "password_file"); an empty
    // username means no AUTH. Never logged.
    std::string auth_username;
    std::string auth_password;
    // Speak LMTP (RFC 2033): LHLO, and one reply per accepted recipient
    // after the end of data. STARTTLS and AUTH are not used.
    bool lmtp = false;
};

struct envelope_out {
    std::string sender; // "" for the null reverse path <>
    std::vector<std::string> recipients;
    bool smtputf8 = false;  // needs SMTPUTF8 (UTF-8 addresses or headers)
    bool eight_bit = false; // the body has octets >= 0x80 (BODY=8BITMIME)
    bool binary = false;    // BODY=BINARYMIME (RFC 3030 3): sent only with BDAT
    std::uint64_t size = 0; // message octets, declared as SIZE= when offered
    // Extra MAIL FROM parameters, each "KEYWORD[=value]" (DSN RET=, ENVID=).
    std::vector<std::string> mail_params;
    // Empty, or one string per recipient appended to its RCPT TO (DSN
    // "NOTIFY=… ORCPT=…"); an empty string adds nothing.
    std::vector<std::string> rcpt_params;
};

struct rcpt_result {
    int code = 0;         // 2xx done, 4xx deferred, 5xx bounced
    std::string enhanced; // "5.1.1"; may be empty when the peer gave none
    std::string text;     // the peer's text (or ours, for local decisions)
};

// What the peer said in its EHLO reply (all false/empty after HELO).
struct capabilities {
    bool esmtp = false; // EHLO was accepted
    bool pipelining = false;
    bool size = false;
    std::uint64_t size_limit = 0; // SIZE n; 0: no fixed limit (RFC 1870 4)
    bool eight_bit_mime = false;
    bool smtputf8 = false;
    bool starttls = false;
    bool chunking = false;
    bool binarymime = false;
    bool dsn = false;
    bool enhanced_status_codes = false;
    std::vector<std::string> auth; // mechanisms, upper-case
};

enum class client_event {
    send,         // output() has bytes: write them, clear output(), next() again
    need_reply,   // read and feed() (or peer_closed() / timeout())
    start_tls,    // do the TLS handshake, then tls_started(ok)
    message_done, // results() ready (or nothing added yet): add_message() or quit()
    closed,       // the connection is finished or unusable; see failure()
};

class client_session {
public:
    struct failure_info {
        bool any = false;
        bool try_next_host = false;
        int code = 0;
        std::string enhanced;
        std::string text;
    };

    explicit client_session(client_config cfg);

    void feed(std::string_view bytes);
    // The peer closed the connection (EOF or reset) / the read deadline passed.
    void peer_closed();
    void timeout();
    client_event next();
    // Bytes to write; the shell clears it after writing.
    std::string& output() noexcept { return out_; }

    // Before the first next(), or at message_done. message: as queued (CRLF
    // line ends, not dot-encoded); kept alive until message_done.
    void add_message(envelope_out env, std::string_view message);
    void quit();
    void tls_started(bool ok);

    const std::vector<rcpt_result>& results() const noexcept { return results_; }
    const failure_info& failure() const noexcept { return failure_; }
    const capabilities& peer() const noexcept { return caps_; }
    bool tls_active() const noexcept { return tls_active_; }
    // How long the shell should wait for the reply now awaited (RFC 5321
    // 4.5.3.2: 5 min greeting, MAIL, RCPT; 2 min DATA; 10 min after the body).
    std::chrono::seconds read_timeout() const noexcept;
    // Messages the peer took (2xx to the end of data) on this connection.
    std::uint32_t messages() const noexcept { return messages_; }
    // The peer answered 235 to our AUTH (RFC 4954 4).
    bool authenticated() const noexcept { return authenticated_; }
    // The last transaction started went with BDAT (RFC 3030), not DATA.
    bool chunking_used() const noexcept { return bdat_; }

private:
    enum class state {
        greeting,      // awaiting 220
        ehlo,          // EHLO sent
        helo,          // HELO sent (EHLO refused)
        starttls,      // STARTTLS sent
        tls_handshake, // start_tls returned; awaiting tls_started()
        auth,          // AUTH exchange in progress (auth_phase_)
        ready,         // no transaction: start the next message, QUIT, or message_done
        transaction,   // RSET/MAIL/RCPT/DATA replies outstanding
        body,          // sending the body after 354
        final_reply,   // awaiting the reply to the end of data
        quitting,      // QUIT sent; any reply or EOF ends it
        closed,
    };
    enum class step_kind { rset, mail, rcpt, data, bdat };
    struct step {
        step_kind kind;
        std::size_t rcpt;  // for step_kind::rcpt
        bool last = false; // for step_kind::bdat: BDAT ... LAST
    };
    enum class rcpt_state { none, accepted, final };
    // Where the AUTH exchange is: what the last line we sent was.
    enum class auth_phase {
        plain,          // "AUTH PLAIN <initial response>", or the response after plain_no_ir's 334
        plain_no_ir,    // "AUTH PLAIN" alone: the initial response would pass 512 octets
        login,          // "AUTH LOGIN"
        login_username, // base64 username, after the first 334
        login_password, // base64 password, after the second 334
        cancelled,      // "*" (RFC 4954 4); any reply ends in failure
    };

    void handle_reply(const reply& r);
    void handle_greeting(const reply& r);
    void handle_hello(const reply& r, bool extended);
    void handle_starttls(const reply& r);
    void after_hello();
    void authenticate_or_ready();
    void handle_auth(const reply& r);
    void auth_failed(const reply& r);
    std::string scrub(std::string text) const;
    rcpt_result result_of(const reply& r) const;
    void handle_txn_reply(const reply& r);
    void handle_final_reply(const reply& r);
    void send_hello(bool extended);
    void start_message();
    void send_step(const step& s);
    void send_next_lockstep();
    void finish_message(bool final_seen);
    void send_body_piece();
    bool may_send_chunk() const noexcept;
    void send_chunk();
    void handle_chunk_reply(const step& s, const reply& r);
    void transaction_progress();
    void connection_ended(std::string_view why);
    void fail(int code, std::string_view enhanced, std::string text, bool send_quit);
    void fail_with(const reply& r, std::string_view what, bool send_quit);
    void protocol_error(const reply& r, std::string_view command);
    void reject_all(int code, std::string_view enhanced, std::string_view text);
    std::string context() const;
    std::string_view awaited_command() const noexcept;

    client_config cfg_;
    state state_ = state::greeting;
    std::string in_;
    std::size_t in_pos_ = 0;
    bool input_overflow_ = false;
    reply_parser parser_;
    std::string out_;

    capabilities caps_;
    bool tls_active_ = false;
    bool authenticated_ = false;
    auth_phase auth_phase_ = auth_phase::plain;
    bool auth_plain_ = true; // the mechanism: PLAIN, else LOGIN
    bool quit_requested_ = false;
    failure_info failure_;

    // The current message.
    bool msg_pending_ = false;   // added, not started
    bool report_done_ = false;   // message_done owed before closed
    envelope_out env_;
    std::string_view body_;      // borrowed, see the header comment
    std::size_t body_pos_ = 0;   // octets of body_ sent
    dot_encoder dot_;            // DATA: the body is dot-encoded as it goes out
    std::vector<rcpt_result> results_;
    std::vector<rcpt_state> rcpt_states_;
    std::vector<step> plan_;
    std::size_t next_send_ = 0;  // plan_ steps written
    std::size_t next_reply_ = 0; // plan_ steps answered
    bool pipelined_ = false;
    bool use_utf8_ = false;      // MAIL FROM … SMTPUTF8
    bool mail_ok_ = false;
    std::size_t accepted_ = 0;
    bool discard_final_ = false; // only "." was sent (RFC 2920 3.1)
    bool need_rset_ = false;
    std::uint32_t messages_ = 0;
    // BDAT (RFC 3030): this transaction's chunks.
    bool bdat_ = false;
    std::size_t command_steps_ = 0;   // plan_ steps before the first chunk
    std::size_t chunks_sent_ = 0;
    std::size_t chunks_answered_ = 0;
    bool last_sent_ = false;          // BDAT ... LAST is out
    bool chunk_failed_ = false;       // a chunk got 4xx/5xx: send no more (RFC 3030 2)
    // LMTP (RFC 2033 4.2): accepted recipients in RCPT order, and how many
    // of them have their reply to the end of data.
    std::vector<std::size_t> lmtp_order_;
    std::size_t lmtp_answered_ = 0;
};

} // namespace postern::smtp
