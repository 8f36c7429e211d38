#include "postern/smtp/client_session.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <string_view>
#include <utility>

#include "postern/util/base64.hpp"
#include "postern/util/strings.hpp"

namespace postern::smtp {

namespace {

// Unread input the peer may push at us beyond the reply we wait for: a few
// pipelined replies fit many times over; a peer flooding us does not.
constexpr std::size_t max_unread_input = 256 * 1024;
// The body goes to output() in pieces of at most this size (STYLE 10):
// BDAT chunks of body_piece octets; for DATA half of it, since dot-encoding
// can at most double a piece (a bare LF becomes CRLF, a leading '.' two).
constexpr std::size_t body_piece = 64 * 1024;
// Pipelined BDAT (RFC 3030 2): chunks sent ahead of their replies. Bounded
// so a refused transaction stops within a few chunks, not at the message end.
constexpr std::size_t max_chunks_in_flight = 4;
constexpr std::size_t max_auth_mechanisms = 16;
// RFC 5321 4.5.3.1.4: a command line, CRLF included. An AUTH initial
// response that would not fit is sent after a 334 instead (RFC 4954 4).
constexpr std::size_t max_command_line = 512;
// RFC 4616 2: servers accept authcid and passwd of up to 255 octets; longer
// ones are a configuration error, and keep every AUTH line well below the
// 12288 octets RFC 4954 4 has servers accept.
constexpr std::size_t max_credential = 255;
// AUTH mechanisms we speak, in order of preference: PLAIN needs one round
// trip, LOGIN (draft-murchison-sasl-login) two more.
constexpr std::array<std::string_view, 2> auth_mechanisms{"PLAIN", "LOGIN"};

// ---------------------------------------------------------------------------
// EHLO keywords (RFC 5321 4.1.1.1, 2.2.2), table-driven (STYLE 7). Matching
// is case-insensitive; unknown keywords are kept in no list but ignored.
// ---------------------------------------------------------------------------

enum class ext { pipelining, size, eight_bit_mime, smtputf8, starttls, chunking, binarymime, dsn, enhanced_status_codes, auth };

struct ext_spec {
    ext e;
    std::string_view keyword;
};

constexpr std::array<ext_spec, 10> extensions{{
    {ext::pipelining, "PIPELINING"},
    {ext::size, "SIZE"},
    {ext::eight_bit_mime, "8BITMIME"},
    {ext::smtputf8, "SMTPUTF8"},
    {ext::starttls, "STARTTLS"},
    {ext::chunking, "CHUNKING"},
    {ext::binarymime, "BINARYMIME"},
    {ext::dsn, "DSN"},
    {ext::enhanced_status_codes, "ENHANCEDSTATUSCODES"},
    {ext::auth, "AUTH"},
}};

std::string to_upper(std::string_view s)
{
    std::string out(s);
    for (auto& c : out)
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
    return out;
}

void apply_extension(capabilities& caps, ext e, std::string_view params)
{
    switch (e) {
    case ext::pipelining:
        caps.pipelining = true;
        return;
    case ext::size:
        // RFC 1870 4: "SIZE" alone or "SIZE 0" means no fixed limit; a
        // value we cannot read is taken the same way (the peer still
        // answers 552 to MAIL if the message is too big for it).
        caps.size = true;
        caps.size_limit = util::parse_uint(params).value_or(0);
        return;
    case ext::eight_bit_mime:
        caps.eight_bit_mime = true;
        return;
    case ext::smtputf8:
        caps.smtputf8 = true;
        return;
    case ext::starttls:
        caps.starttls = true;
        return;
    case ext::chunking:
        caps.chunking = true;
        return;
    case ext::binarymime:
        caps.binarymime = true;
        return;
    case ext::dsn:
        caps.dsn = true;
        return;
    case ext::enhanced_status_codes:
        caps.enhanced_status_codes = true;
        return;
    case ext::auth:
        for (auto m : util::split(params, ' '))
            if (!m.empty() && caps.auth.size() < max_auth_mechanisms)
                caps.auth.push_back(to_upper(m));
        return;
    }
}

// The first line greets; each further line is "keyword [params]".
capabilities parse_ehlo(const reply& r)
{
    capabilities caps;
    caps.esmtp = true;
    for (std::size_t i = 1; i < r.lines.size(); ++i) {
        auto line = util::trim(r.lines[i]);
        auto sp = line.find(' ');
        auto keyword = line.substr(0, sp);
        auto params = sp == std::string_view::npos ? std::string_view{} : util::trim(line.substr(sp + 1));
        for (const auto& spec : extensions)
            if (util::iequals(keyword, spec.keyword))
                apply_extension(caps, spec.e, params);
    }
    return caps;
}

bool has_control(std::string_view s)
{
    return std::any_of(s.begin(), s.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u < 0x20 || u == 0x7f;
    });
}

bool is_ascii(std::string_view s)
{
    return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

// The EHLO keyword a MAIL/RCPT parameter needs (RFC 3461 4: RET, ENVID,
// NOTIFY, ORCPT come with DSN); other parameters are named like theirs.
std::string_view extension_of(std::string_view param)
{
    auto keyword = param.substr(0, param.find('='));
    for (std::string_view dsn_param : {"RET", "ENVID", "NOTIFY", "ORCPT"})
        if (util::iequals(keyword, dsn_param))
            return "DSN";
    return keyword;
}

bool offers(const capabilities& caps, std::string_view keyword)
{
    for (const auto& spec : extensions) {
        if (!util::iequals(keyword, spec.keyword))
            continue;
        switch (spec.e) {
        case ext::pipelining:
            return caps.pipelining;
        case ext::size:
            return caps.size;
        case ext::eight_bit_mime:
            return caps.eight_bit_mime;
        case ext::smtputf8:
            return caps.smtputf8;
        case ext::starttls:
            return caps.starttls;
        case ext::chunking:
            return caps.chunking;
        case ext::binarymime:
            return caps.binarymime;
        case ext::dsn:
            return caps.dsn;
        case ext::enhanced_status_codes:
            return caps.enhanced_status_codes;
        case ext::auth:
            return !caps.auth.empty();
        }
    }
    return false;
}

// Appends " P" for each space-separated parameter the peer has the
// extension for; the others are left out (RFC 3461 4.1: no DSN parameters
// to a server without DSN; the relaying MTA then reports for it).
void append_params(std::string& cmd, std::string_view params, const capabilities& caps)
{
    for (auto p : util::split(params, ' '))
        if (!p.empty() && offers(caps, extension_of(p)))
            cmd.append(" ").append(p);
}

// RFC 4616 2: message = [authzid] UTF8NUL authcid UTF8NUL passwd, with no
// authzid (act as ourselves), in base64 (RFC 4954 4).
std::string plain_response(std::string_view user, std::string_view pass)
{
    std::string message;
    message.reserve(user.size() + pass.size() + 2);
    message.push_back('\0');
    message.append(user);
    message.push_back('\0');
    message.append(pass);
    return util::base64_encode(message);
}

void replace_all(std::string& text, std::string_view what, std::string_view with)
{
    if (what.empty())
        return;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + with.size()))
        text.replace(at, what.size(), with);
}

// A connection-level failure as a per-recipient deferral: a 4xx code and a
// 4.x.x status whatever the peer said (RFC 3463 2: the class is the first
// digit; X.0.0 when the peer gave none).
rcpt_result deferral(int code, std::string_view enhanced, std::string_view text)
{
    rcpt_result d;
    d.code = code / 100 == 4 ? code : 421;
    d.enhanced = enhanced.empty() ? "4.0.0" : "4" + std::string(enhanced.substr(1));
    d.text.assign(text);
    return d;
}

std::string about(std::string_view command)
{
    return command == "greeting" ? " (greeting)" : " (in reply to " + std::string(command) + ")";
}

} // namespace

client_session::client_session(client_config cfg) : cfg_(std::move(cfg)), tls_active_(cfg_.implicit_tls) {}

// ---------------------------------------------------------------------------
// Input and the event loop
// ---------------------------------------------------------------------------

void client_session::feed(std::string_view bytes)
{
    if (state_ == state::closed)
        return;
    if (in_pos_ == in_.size()) {
        in_.clear();
        in_pos_ = 0;
    } else if (in_pos_ >= 4096) {
        in_.erase(0, in_pos_);
        in_pos_ = 0;
    }
    if (in_.size() - in_pos_ + bytes.size() > max_unread_input) {
        input_overflow_ = true;
        return;
    }
    in_.append(bytes);
}

void client_session::peer_closed()
{
    connection_ended("lost connection ");
}

void client_session::timeout()
{
    connection_ended("conversation timed out ");
}

// The transport is gone (EOF, reset, deadline): whatever was in progress
// ends in a 4xx for its recipients; a QUIT already sent ends cleanly.
void client_session::connection_ended(std::string_view why)
{
    switch (state_) {
    case state::closed:
        return;
    case state::quitting:
        state_ = state::closed;
        return;
    case state::greeting:
    case state::ehlo:
    case state::helo:
    case state::starttls:
    case state::tls_handshake:
    case state::auth:
    case state::ready:
    case state::transaction:
    case state::body:
    case state::final_reply:
        fail(421, "4.4.2", std::string(why) + context(), false);
        return;
    }
}

client_event client_session::next()
{
    for (;;) {
        if (!out_.empty())
            return client_event::send;
        if (report_done_) {
            report_done_ = false;
            return client_event::message_done;
        }
        switch (state_) {
        case state::greeting:
        case state::ehlo:
        case state::helo:
        case state::starttls:
        case state::auth:
        case state::transaction:
        case state::final_reply:
        case state::quitting: {
            if (input_overflow_) {
                input_overflow_ = false;
                if (state_ == state::quitting)
                    state_ = state::closed;
                else
                    fail(421, "4.5.0", "protocol error: more input than replies " + context(), false);
                continue;
            }
            std::string_view avail(in_);
            avail.remove_prefix(in_pos_);
            in_pos_ += parser_.consume(avail);
            switch (parser_.state()) {
            case reply_parser::status::incomplete:
                // Pipelined BDAT: the next chunk goes out before the
                // replies to the earlier ones are in (RFC 3030 4.2).
                if (state_ == state::transaction && may_send_chunk()) {
                    send_chunk();
                    continue;
                }
                return client_event::need_reply;
            case reply_parser::status::error:
                if (state_ == state::quitting)
                    state_ = state::closed;
                else
                    fail(421, "4.5.0", "protocol error: " + parser_.error() + " " + context(), false);
                continue;
            case reply_parser::status::complete:
                handle_reply(parser_.take());
                continue;
            }
            continue;
        }
        case state::tls_handshake:
            return client_event::start_tls;
        case state::body:
            send_body_piece();
            continue;
        case state::ready:
            if (msg_pending_) {
                start_message();
                continue;
            }
            if (quit_requested_) {
                out_.append("QUIT\r\n");
                state_ = state::quitting;
                continue;
            }
            results_.clear(); // idle: no message since the last message_done
            return client_event::message_done;
        case state::closed:
            return client_event::closed;
        }
    }
}

std::string client_session::context() const
{
    switch (state_) {
    case state::greeting:
        return "awaiting the greeting";
    case state::ehlo:
        return cfg_.lmtp ? "awaiting the reply to LHLO" : "awaiting the reply to EHLO";
    case state::helo:
        return "awaiting the reply to HELO";
    case state::starttls:
        return "awaiting the reply to STARTTLS";
    case state::tls_handshake:
        return "in the TLS handshake";
    case state::auth:
        return "awaiting the reply to " + std::string(awaited_command());
    case state::ready:
        return "while idle";
    case state::transaction:
        return "awaiting the reply to " + std::string(awaited_command());
    case state::body:
        return "sending the message body";
    case state::final_reply:
        return "awaiting the reply to end of data";
    case state::quitting:
        return "awaiting the reply to QUIT";
    case state::closed:
        return "after close";
    }
    return {};
}

std::string_view client_session::awaited_command() const noexcept
{
    switch (state_) {
    case state::greeting:
        return "greeting";
    case state::ehlo:
        return cfg_.lmtp ? "LHLO" : "EHLO";
    case state::helo:
        return "HELO";
    case state::starttls:
        return "STARTTLS";
    case state::auth:
        switch (auth_phase_) {
        case auth_phase::plain:
        case auth_phase::plain_no_ir:
            return "AUTH PLAIN";
        case auth_phase::login:
            return "AUTH LOGIN";
        case auth_phase::login_username:
            return "AUTH LOGIN username";
        case auth_phase::login_password:
            return "AUTH LOGIN password";
        case auth_phase::cancelled:
            return "AUTH cancellation";
        }
        return "AUTH";
    case state::final_reply:
        return "end of data";
    case state::quitting:
        return "QUIT";
    case state::transaction:
        if (next_reply_ < plan_.size()) {
            switch (plan_[next_reply_].kind) {
            case step_kind::rset:
                return "RSET";
            case step_kind::mail:
                return "MAIL FROM";
            case step_kind::rcpt:
                return "RCPT TO";
            case step_kind::data:
                return "DATA";
            case step_kind::bdat:
                return plan_[next_reply_].last ? "BDAT LAST" : "BDAT";
            }
        }
        return "?";
    case state::tls_handshake:
    case state::ready:
    case state::body:
    case state::closed:
        return "?";
    }
    return "?";
}

std::chrono::seconds client_session::read_timeout() const noexcept
{
    using std::chrono::seconds;
    // RFC 5321 4.5.3.2.
    switch (state_) {
    case state::transaction:
        if (next_reply_ < plan_.size() && plan_[next_reply_].kind == step_kind::data)
            return seconds(120); // 4.5.3.2.3 DATA initiation
        // RFC 3030 names no timeouts: the reply to BDAT ... LAST ends the
        // message as the reply to the final dot does (4.5.3.2.6).
        if (next_reply_ < plan_.size() && plan_[next_reply_].kind == step_kind::bdat && plan_[next_reply_].last)
            return seconds(600);
        return seconds(300);     // 4.5.3.2.2 MAIL, 4.5.3.2.3 RCPT
    case state::body:
        return seconds(180); // 4.5.3.2.5 data block
    case state::final_reply:
        return seconds(600); // 4.5.3.2.6 DATA termination
    case state::greeting:      // 4.5.3.2.1
    case state::ehlo:
    case state::helo:
    case state::starttls:
    case state::tls_handshake:
    case state::auth:
    case state::ready:
    case state::quitting:
    case state::closed:
        return seconds(300);
    }
    return seconds(300);
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

void client_session::handle_reply(const reply& r)
{
    if (state_ == state::quitting) {
        state_ = state::closed; // whatever QUIT got, we are done
        return;
    }
    if (r.code == 421) {
        // RFC 5321 3.8: the server is closing; everything open is deferred.
        fail_with(r, awaited_command(), false);
        return;
    }
    switch (state_) {
    case state::greeting:
        handle_greeting(r);
        return;
    case state::ehlo:
        handle_hello(r, true);
        return;
    case state::helo:
        handle_hello(r, false);
        return;
    case state::starttls:
        handle_starttls(r);
        return;
    case state::auth:
        handle_auth(r);
        return;
    case state::transaction:
        handle_txn_reply(r);
        return;
    case state::final_reply:
        handle_final_reply(r);
        return;
    case state::tls_handshake:
    case state::ready:
    case state::body:
    case state::quitting:
    case state::closed:
        return; // not awaiting a reply: next() does not parse in these states
    }
}

void client_session::handle_greeting(const reply& r)
{
    if (r.positive()) {
        send_hello(true);
        return;
    }
    // RFC 5321 3.1: 554 (or any refusal) — QUIT politely; the next MX may talk.
    if (r.code / 100 == 3)
        return protocol_error(r, "greeting");
    fail_with(r, "greeting", true);
}

void client_session::send_hello(bool extended)
{
    // RFC 2033 4.1: LHLO takes EHLO's place (and its reply's form).
    out_.append(cfg_.lmtp ? "LHLO " : extended ? "EHLO " : "HELO ").append(cfg_.helo_name).append("\r\n");
    state_ = extended ? state::ehlo : state::helo;
}

void client_session::handle_hello(const reply& r, bool extended)
{
    if (r.positive()) {
        caps_ = extended ? parse_ehlo(r) : capabilities{};
        after_hello();
        return;
    }
    // RFC 5321 4.1.4: a server that does not know EHLO answers 500/502 (any
    // 5xx); the client then tries HELO, with no extensions. An LMTP server
    // has no HELO to fall back to (RFC 2033 4.1).
    if (extended && r.permanent() && !cfg_.lmtp) {
        send_hello(false);
        return;
    }
    if (r.code / 100 == 3)
        return protocol_error(r, awaited_command());
    fail_with(r, awaited_command(), true);
}

void client_session::after_hello()
{
    // LMTP is local delivery to a trusted server (RFC 2033 1): the socket is
    // ours, so no STARTTLS and no AUTH.
    if (cfg_.lmtp) {
        state_ = state::ready;
        return;
    }
    if (!tls_active_) {
        if (caps_.starttls && (cfg_.offer_starttls_allowed || cfg_.require_tls)) {
            // RFC 3207 4: STARTTLS is the last command of any group.
            out_.append("STARTTLS\r\n");
            state_ = state::starttls;
            return;
        }
        if (cfg_.require_tls) {
            fail(421, "4.7.4", "TLS is required, but was not offered by the peer", true);
            return;
        }
    }
    authenticate_or_ready();
}

void client_session::handle_starttls(const reply& r)
{
    if (r.code == 220) {
        state_ = state::tls_handshake;
        return;
    }
    if (r.positive() || r.code / 100 == 3)
        return protocol_error(r, "STARTTLS");
    if (cfg_.require_tls) {
        fail_with(r, "STARTTLS", true);
        return;
    }
    // Opportunistic TLS (RFC 3207 4.1: 454 TLS not available): carry on in
    // plaintext; what EHLO told us still holds. (No AUTH in plaintext:
    // authenticate_or_ready() fails the connection if AUTH is configured.)
    authenticate_or_ready();
}

void client_session::tls_started(bool ok)
{
    if (state_ != state::tls_handshake)
        return;
    if (!ok) {
        fail(421, "4.7.5", "TLS handshake failed", false);
        return;
    }
    // RFC 3207 4.2: discard any knowledge obtained from the server and
    // anything it sent before the handshake (plaintext injection,
    // CVE-2011-0411); EHLO again.
    tls_active_ = true;
    in_.clear();
    in_.shrink_to_fit();
    in_pos_ = 0;
    input_overflow_ = false;
    parser_.reset();
    caps_ = {};
    send_hello(true);
}

// ---------------------------------------------------------------------------
// AUTH (RFC 4954; PLAIN RFC 4616; LOGIN draft-murchison-sasl-login)
// ---------------------------------------------------------------------------

void client_session::authenticate_or_ready()
{
    const auto& user = cfg_.auth_username;
    const auto& pass = cfg_.auth_password;
    if (user.empty()) {
        state_ = state::ready;
        return;
    }
    // RFC 4954 4, RFC 8314: credentials never go over a connection without
    // TLS. X.7.11: encryption required for the authentication (RFC 5248).
    if (!tls_active_)
        return fail(421, "4.7.11", "TLS required for AUTH, but the connection is not encrypted", true);
    // Configuration errors: another host would not fare better.
    if (user.find('\0') != std::string::npos || pass.find('\0') != std::string::npos ||
        user.size() > max_credential || pass.size() > max_credential) {
        fail(554, "5.7.0", "AUTH username or password contains NUL or is longer than 255 octets", true);
        failure_.try_next_host = false;
        return;
    }
    for (auto mech : auth_mechanisms) {
        if (std::none_of(caps_.auth.begin(), caps_.auth.end(), [mech](const std::string& m) { return m == mech; }))
            continue;
        state_ = state::auth;
        auth_plain_ = mech == "PLAIN";
        if (!auth_plain_) {
            out_.append("AUTH LOGIN\r\n");
            auth_phase_ = auth_phase::login;
            return;
        }
        // RFC 4954 4: the initial response saves a round trip, unless it
        // would make the command line too long.
        auto response = plain_response(user, pass);
        if (response.size() + 13 <= max_command_line) {
            out_.append("AUTH PLAIN ").append(response).append("\r\n");
            auth_phase_ = auth_phase::plain;
        } else {
            out_.append("AUTH PLAIN\r\n");
            auth_phase_ = auth_phase::plain_no_ir;
        }
        return;
    }
    std::string offered;
    for (const auto& m : caps_.auth)
        offered += (offered.empty() ? "" : " ") + m;
    fail(554, "5.7.0",
         "no common AUTH mechanism (we speak PLAIN LOGIN, the peer offers " +
             (offered.empty() ? std::string("none") : offered) + ")",
         true);
    failure_.try_next_host = false;
}

void client_session::handle_auth(const reply& r)
{
    if (auth_phase_ == auth_phase::cancelled) {
        // Whatever the reply to "*" (501 expected), we are not authenticated.
        return fail(421, "4.7.0",
                    std::string("AUTH ") + (auth_plain_ ? "PLAIN" : "LOGIN") +
                        " cancelled: the peer asked for more than the mechanism has to send",
                    true);
    }
    if (r.code == 235) {
        authenticated_ = true;
        state_ = state::ready;
        return;
    }
    if (r.code == 334) {
        // The challenge text is not looked at: LOGIN's prompts vary
        // ("Username:", "User Name"), PLAIN's first one is empty.
        switch (auth_phase_) {
        case auth_phase::plain_no_ir:
            out_.append(plain_response(cfg_.auth_username, cfg_.auth_password)).append("\r\n");
            auth_phase_ = auth_phase::plain;
            return;
        case auth_phase::login:
            out_.append(util::base64_encode(cfg_.auth_username)).append("\r\n");
            auth_phase_ = auth_phase::login_username;
            return;
        case auth_phase::login_username:
            out_.append(util::base64_encode(cfg_.auth_password)).append("\r\n");
            auth_phase_ = auth_phase::login_password;
            return;
        case auth_phase::plain:
        case auth_phase::login_password:
            // RFC 4954 4: "*" cancels the exchange; the server answers 501.
            out_.append("*\r\n");
            auth_phase_ = auth_phase::cancelled;
            return;
        case auth_phase::cancelled:
            return; // handled above
        }
        return;
    }
    if (r.positive() || r.code / 100 == 3)
        return protocol_error(r, awaited_command());
    auth_failed(r);
}

void client_session::auth_failed(const reply& r)
{
    // 535 5.7.8 credentials invalid, 534 5.7.9 mechanism too weak, 454
    // 4.7.0 temporary (RFC 4954 6). Our configuration is at fault or the
    // peer is unwell: the recipients are deferred (fail() makes any code a
    // 4xx), never bounced. A permanent refusal would be the same at the
    // next host.
    const bool permanent = r.permanent();
    std::string enhanced = r.enhanced.empty() ? (permanent ? "5.7.8" : "4.7.0") : r.enhanced;
    fail(r.code, enhanced, r.text() + about(awaited_command()), true);
    if (permanent)
        failure_.try_next_host = false;
}

// The password, raw or in either base64 form we send, never reaches a text
// that can be logged or bounced, even if the peer echoes it.
std::string client_session::scrub(std::string text) const
{
    if (cfg_.auth_username.empty() || cfg_.auth_password.empty())
        return text;
    replace_all(text, plain_response(cfg_.auth_username, cfg_.auth_password), "***");
    replace_all(text, util::base64_encode(cfg_.auth_password), "***");
    replace_all(text, cfg_.auth_password, "***");
    return text;
}

rcpt_result client_session::result_of(const reply& r) const
{
    return {r.code, r.enhanced, scrub(r.text())};
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

void client_session::add_message(envelope_out env, std::string_view message)
{
    if (msg_pending_ || state_ == state::transaction || state_ == state::body || state_ == state::final_reply ||
        report_done_)
        return; // one message at a time: this one is still open
    env_ = std::move(env);
    body_ = message;
    body_pos_ = 0;
    results_.clear();
    rcpt_states_.clear();
    if (state_ == state::closed || state_ == state::quitting || quit_requested_ || failure_.any) {
        // A dead or closing connection: deferred at once, no traffic.
        auto d = failure_.any ? deferral(failure_.code, failure_.enhanced, failure_.text)
                              : deferral(421, "4.4.2", "connection is closing");
        results_.assign(env_.recipients.size(), d);
        rcpt_states_.assign(env_.recipients.size(), rcpt_state::final);
        report_done_ = true;
        return;
    }
    msg_pending_ = true;
}

void client_session::quit()
{
    quit_requested_ = true;
}

void client_session::reject_all(int code, std::string_view enhanced, std::string_view text)
{
    for (std::size_t i = 0; i < results_.size(); ++i) {
        if (rcpt_states_[i] == rcpt_state::final)
            continue;
        results_[i] = {code, std::string(enhanced), std::string(text)};
        rcpt_states_[i] = rcpt_state::final;
    }
}

void client_session::start_message()
{
    msg_pending_ = false;
    report_done_ = true; // unless a transaction starts below
    bdat_ = false;
    const auto n = env_.recipients.size();
    results_.assign(n, {});
    rcpt_states_.assign(n, rcpt_state::none);
    if (n == 0)
        return;

    // Control characters in a path or parameter would inject commands.
    if (has_control(env_.sender))
        return reject_all(553, "5.1.7", "bad sender address syntax");
    for (const auto& p : env_.mail_params)
        if (has_control(p))
            return reject_all(501, "5.5.4", "bad MAIL parameter");
    bool needs_utf8 = env_.smtputf8 || !is_ascii(env_.sender);
    for (std::size_t i = 0; i < n; ++i) {
        needs_utf8 = needs_utf8 || !is_ascii(env_.recipients[i]);
        bool bad_param = i < env_.rcpt_params.size() && has_control(env_.rcpt_params[i]);
        if (has_control(env_.recipients[i]) || bad_param) {
            results_[i] = bad_param ? rcpt_result{501, "5.5.4", "bad RCPT parameter"}
                                    : rcpt_result{553, "5.1.3", "bad recipient address syntax"};
            rcpt_states_[i] = rcpt_state::final;
        }
    }
    // RFC 6531 3.4: no SMTPUTF8 message to a server that does not offer it
    // (we do not downgrade): a permanent failure, 5.6.7 (RFC 6531 3.5).
    if (needs_utf8 && !caps_.smtputf8)
        return reject_all(553, "5.6.7", "message needs SMTPUTF8, but the peer does not support it");
    // RFC 1870 6.1: a message larger than the peer's fixed limit is not sent.
    if (caps_.size && caps_.size_limit > 0 && env_.size > caps_.size_limit)
        return reject_all(552, "5.3.4",
                          "message size " + std::to_string(env_.size) + " exceeds the peer's limit of " +
                              std::to_string(caps_.size_limit));
    // RFC 3030 2: BDAT when the peer offers CHUNKING. Not over LMTP: RFC
    // 2033 4.2 defines the per-recipient replies for DATA only.
    const bool bdat = caps_.chunking && !cfg_.lmtp;
    // RFC 3030 3: BINARYMIME content goes only with BDAT, to a peer that
    // offers BINARYMIME; we do not convert it (RFC 3463 5.6.3).
    if (env_.binary && !(bdat && caps_.binarymime))
        return reject_all(554, "5.6.3",
                          "conversion required and prohibited: BINARYMIME message and the peer does not offer "
                          "CHUNKING and BINARYMIME");
    // RFC 6152 3: 8-bit data only to a server that offers 8BITMIME; we do
    // not convert to 7 bit (RFC 3463 5.6.3). (BINARYMIME covers 8-bit.)
    if (env_.eight_bit && !env_.binary && !caps_.eight_bit_mime)
        return reject_all(554, "5.6.3", "conversion required but not supported: 8-bit message and no 8BITMIME");

    plan_.clear();
    if (need_rset_)
        plan_.push_back({step_kind::rset, 0});
    plan_.push_back({step_kind::mail, 0});
    std::size_t rcpts = 0;
    for (std::size_t i = 0; i < n; ++i) {
        if (rcpt_states_[i] == rcpt_state::none) {
            plan_.push_back({step_kind::rcpt, i});
            ++rcpts;
        }
    }
    if (rcpts == 0)
        return; // every recipient refused locally; nothing to send
    // With BDAT the chunks join the plan as they are sent (send_chunk()).
    if (!bdat)
        plan_.push_back({step_kind::data, 0});
    report_done_ = false;
    need_rset_ = false;
    use_utf8_ = needs_utf8;
    mail_ok_ = false;
    accepted_ = 0;
    discard_final_ = false;
    next_send_ = 0;
    next_reply_ = 0;
    bdat_ = bdat;
    command_steps_ = plan_.size();
    chunks_sent_ = 0;
    chunks_answered_ = 0;
    last_sent_ = false;
    chunk_failed_ = false;
    lmtp_order_.clear();
    lmtp_answered_ = 0;
    body_pos_ = 0;
    state_ = state::transaction;
    // RFC 2920 3.1: with PIPELINING, RSET, MAIL, every RCPT and DATA go in
    // one write, DATA last; the replies are matched in order. With BDAT the
    // first chunk follows the RCPTs at once (RFC 3030 4.2), and further
    // chunks go out ahead of their replies (next()). Without PIPELINING,
    // one command at a time.
    pipelined_ = caps_.pipelining;
    if (pipelined_) {
        while (next_send_ < plan_.size())
            send_step(plan_[next_send_++]);
        if (bdat_)
            send_chunk();
    } else {
        send_step(plan_[next_send_++]);
    }
}

void client_session::send_step(const step& s)
{
    switch (s.kind) {
    case step_kind::rset:
        out_.append("RSET\r\n");
        return;
    case step_kind::mail: {
        std::string cmd = "MAIL FROM:<" + env_.sender + ">";
        if (caps_.esmtp) {
            if (caps_.size && env_.size > 0)
                cmd += " SIZE=" + std::to_string(env_.size); // RFC 1870 6
            if (env_.binary)
                cmd += " BODY=BINARYMIME"; // RFC 3030 3
            else if (env_.eight_bit)
                cmd += " BODY=8BITMIME"; // RFC 6152 2
            if (use_utf8_)
                cmd += " SMTPUTF8"; // RFC 6531 3.4
            for (const auto& p : env_.mail_params)
                append_params(cmd, p, caps_);
        }
        out_.append(cmd).append("\r\n");
        return;
    }
    case step_kind::rcpt: {
        std::string cmd = "RCPT TO:<" + env_.recipients[s.rcpt] + ">";
        if (caps_.esmtp && s.rcpt < env_.rcpt_params.size())
            append_params(cmd, env_.rcpt_params[s.rcpt], caps_);
        out_.append(cmd).append("\r\n");
        return;
    }
    case step_kind::data:
        out_.append("DATA\r\n");
        return;
    case step_kind::bdat:
        return; // send_chunk() writes the command with its data
    }
}

void client_session::send_next_lockstep()
{
    const step& s = plan_[next_send_];
    bool go = true;
    switch (s.kind) {
    case step_kind::rset:
    case step_kind::mail:
        go = true;
        break;
    case step_kind::rcpt:
        go = mail_ok_;
        break;
    case step_kind::data:
    case step_kind::bdat:
        // RFC 5321 3.3: no DATA when no recipient was accepted.
        go = mail_ok_ && accepted_ > 0;
        break;
    }
    if (!go) {
        finish_message(false);
        return;
    }
    send_step(s);
    ++next_send_;
}

// After a reply in the transaction, with nothing left unanswered: the next
// command (lock-step), the next chunk, or the end of a transaction that
// sends nothing more.
void client_session::transaction_progress()
{
    if (state_ != state::transaction || next_reply_ != next_send_)
        return;
    if (next_send_ < plan_.size())
        return send_next_lockstep();
    if (!bdat_)
        return;
    // RFC 3030 2: no chunk without a recipient, and none after a chunk
    // failed; the transaction may be open at the server (RSET next time).
    if (!mail_ok_ || accepted_ == 0 || chunk_failed_ || last_sent_)
        return finish_message(false);
    send_chunk();
}

void client_session::handle_txn_reply(const reply& r)
{
    const step s = plan_[next_reply_];
    const bool is_data = s.kind == step_kind::data;
    // Only DATA may be answered 354, and DATA only 354 or a refusal: a 250
    // to DATA would have us believe a message was taken that was never sent.
    if ((r.code / 100 == 3) != (is_data && r.code == 354) || (is_data && r.positive()))
        return protocol_error(r, awaited_command());
    ++next_reply_;
    switch (s.kind) {
    case step_kind::rset:
        if (!r.positive())
            return fail_with(r, "RSET", true);
        break;
    case step_kind::mail:
        mail_ok_ = r.positive();
        if (!mail_ok_) {
            // Every recipient shares the sender's fate; pipelined RCPT
            // replies that follow (503 probably) are not theirs to keep.
            for (std::size_t i = 0; i < results_.size(); ++i) {
                if (rcpt_states_[i] == rcpt_state::final)
                    continue;
                results_[i] = result_of(r);
                rcpt_states_[i] = rcpt_state::final;
            }
        }
        break;
    case step_kind::rcpt:
        if (mail_ok_) {
            results_[s.rcpt] = result_of(r);
            rcpt_states_[s.rcpt] = r.positive() ? rcpt_state::accepted : rcpt_state::final;
            if (r.positive()) {
                ++accepted_;
                lmtp_order_.push_back(s.rcpt);
            }
        }
        break;
    case step_kind::data:
        if (r.code == 354) {
            if (mail_ok_ && accepted_ > 0) {
                body_pos_ = 0;
                dot_ = {};
                state_ = state::body;
                return;
            }
            // RFC 2033 4.2: an LMTP server refuses DATA (503) when no
            // recipient was accepted; a 354 then is out of step.
            if (cfg_.lmtp)
                return protocol_error(r, "DATA");
            // RFC 2920 3.1: DATA accepted although no recipient was: the
            // client "should send a single dot" and ignore the outcome.
            out_.append(".\r\n");
            discard_final_ = true;
            state_ = state::final_reply;
            return;
        }
        // DATA refused: accepted recipients get that reply.
        for (std::size_t i = 0; i < results_.size(); ++i) {
            if (rcpt_states_[i] != rcpt_state::accepted)
                continue;
            results_[i] = result_of(r);
            rcpt_states_[i] = rcpt_state::final;
        }
        finish_message(false);
        return;
    case step_kind::bdat:
        return handle_chunk_reply(s, r);
    }
    transaction_progress();
}

// RFC 3030 2: a 4xx/5xx to any chunk fails the transaction: the accepted
// recipients take that reply, no further chunk is sent, and the replies to
// chunks already pipelined are read and ignored. The reply to the LAST
// chunk is the message's, as the reply to the final dot is for DATA.
void client_session::handle_chunk_reply(const step& s, const reply& r)
{
    ++chunks_answered_;
    if (!r.positive()) {
        if (!chunk_failed_)
            for (std::size_t i = 0; i < results_.size(); ++i) {
                if (rcpt_states_[i] != rcpt_state::accepted)
                    continue;
                results_[i] = result_of(r);
                rcpt_states_[i] = rcpt_state::final;
            }
        chunk_failed_ = true;
    } else if (s.last && !chunk_failed_ && mail_ok_ && accepted_ > 0) {
        for (std::size_t i = 0; i < results_.size(); ++i) {
            if (rcpt_states_[i] != rcpt_state::accepted)
                continue;
            results_[i] = result_of(r);
            rcpt_states_[i] = rcpt_state::final;
        }
        ++messages_;
        return finish_message(true);
    }
    transaction_progress();
}

// Pipelined BDAT (RFC 3030 4.2): a chunk goes out ahead of the replies
// while few are unanswered, unless the commands' replies already say that
// no recipient (or no sender) was accepted.
bool client_session::may_send_chunk() const noexcept
{
    if (!bdat_ || !pipelined_ || last_sent_ || chunk_failed_ || next_send_ < command_steps_)
        return false;
    if (chunks_sent_ - chunks_answered_ >= max_chunks_in_flight)
        return false;
    return next_reply_ < command_steps_ || (mail_ok_ && accepted_ > 0);
}

// "BDAT <n>[ LAST]" and n octets, sent as they are (RFC 3030 2: no
// dot-stuffing); an empty message is "BDAT 0 LAST".
void client_session::send_chunk()
{
    auto piece = body_.substr(body_pos_, body_piece);
    body_pos_ += piece.size();
    const bool last = body_pos_ == body_.size();
    out_.append("BDAT ").append(std::to_string(piece.size())).append(last ? " LAST\r\n" : "\r\n").append(piece);
    plan_.push_back({step_kind::bdat, 0, last});
    ++next_send_;
    ++chunks_sent_;
    last_sent_ = last;
}

void client_session::send_body_piece()
{
    auto piece = body_.substr(body_pos_, body_piece / 2);
    dot_.encode(piece, out_);
    body_pos_ += piece.size();
    if (body_pos_ == body_.size()) {
        dot_.finish(out_);
        state_ = state::final_reply;
    }
}

void client_session::handle_final_reply(const reply& r)
{
    if (r.code / 100 == 3)
        return protocol_error(r, "end of data");
    if (discard_final_)
        return finish_message(true);
    if (cfg_.lmtp) {
        // RFC 2033 4.2: one reply per recipient accepted at RCPT, in RCPT
        // order, each that recipient's own result.
        const auto i = lmtp_order_[lmtp_answered_++];
        results_[i] = result_of(r);
        rcpt_states_[i] = rcpt_state::final;
        if (lmtp_answered_ < lmtp_order_.size())
            return; // more replies to come
        for (auto k : lmtp_order_) {
            if (results_[k].code / 100 == 2) {
                ++messages_;
                break;
            }
        }
        return finish_message(true);
    }
    // RFC 5321 3.3: one reply for the message, for every accepted recipient.
    for (std::size_t i = 0; i < results_.size(); ++i) {
        if (rcpt_states_[i] != rcpt_state::accepted)
            continue;
        results_[i] = result_of(r);
        rcpt_states_[i] = rcpt_state::final;
    }
    if (r.positive())
        ++messages_;
    finish_message(true);
}

void client_session::finish_message(bool final_seen)
{
    // Anything still provisional cannot be (every path above settles the
    // accepted recipients); defer rather than claim a delivery.
    for (std::size_t i = 0; i < results_.size(); ++i) {
        if (rcpt_states_[i] == rcpt_state::final)
            continue;
        results_[i] = {451, "4.3.0", "internal error: no final reply"};
        rcpt_states_[i] = rcpt_state::final;
    }
    // A transaction that did not end in a reply to its data may still be
    // open at the server: RSET before the next MAIL (RFC 5321 4.1.1.5).
    need_rset_ = !final_seen;
    body_ = {};
    state_ = state::ready;
    report_done_ = true;
}

// ---------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------

void client_session::fail_with(const reply& r, std::string_view command, bool send_quit)
{
    fail(r.code, r.enhanced, r.text() + about(command), send_quit);
}

void client_session::protocol_error(const reply& r, std::string_view command)
{
    fail(421, "4.5.0", "protocol error: unexpected reply " + r.str() + about(command), false);
}

void client_session::fail(int code, std::string_view enhanced, std::string text, bool send_quit)
{
    if (state_ == state::closed)
        return;
    const bool active =
        msg_pending_ || state_ == state::transaction || state_ == state::body || state_ == state::final_reply;
    failure_.any = true;
    // Any failure of the connection (not of a message) is worth another MX:
    // the transaction outcomes already reached are in results().
    failure_.try_next_host = true;
    failure_.code = code;
    failure_.enhanced.assign(enhanced);
    failure_.text = scrub(std::move(text));
    if (active) {
        if (msg_pending_) {
            results_.assign(env_.recipients.size(), {});
            rcpt_states_.assign(env_.recipients.size(), rcpt_state::none);
        }
        auto d = deferral(code, enhanced, failure_.text);
        for (std::size_t i = 0; i < results_.size(); ++i) {
            if (rcpt_states_[i] == rcpt_state::final)
                continue;
            results_[i] = d;
            rcpt_states_[i] = rcpt_state::final;
        }
        msg_pending_ = false;
        body_ = {};
        report_done_ = true;
    }
    out_.clear();
    if (send_quit) {
        out_.append("QUIT\r\n");
        state_ = state::quitting;
    } else {
        state_ = state::closed;
    }
}

} // namespace postern::smtp
