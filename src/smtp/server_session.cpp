#include "postern/smtp/server_session.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <string_view>
#include <vector>

#include "postern/smtp/command.hpp"
#include "postern/smtp/reply.hpp"
#include "postern/util/base64.hpp"
#include "postern/util/strings.hpp"
#include "postern/util/xtext.hpp"

namespace postern::smtp {

namespace {

// RFC 5321 4.5.3.1.4: a command line is at most 512 octets with its CRLF.
constexpr std::size_t max_command_line = 512;
// RFC 4954 4: an AUTH command line and each SASL response line may be up to
// 12288 octets (initial responses grow with the credentials).
constexpr std::size_t max_auth_line = 12288;

// RFC 4954 4: "334 " then the base64 challenge; LOGIN's are the fixed
// prompts every client expects: "Username:" and "Password:".
constexpr std::string_view login_user_prompt = "VXNlcm5hbWU6";
constexpr std::string_view login_password_prompt = "UGFzc3dvcmQ6";

bool is_printable_word(std::string_view s)
{
    for (unsigned char c : s)
        if (c <= 32 || c == 127)
            return false;
    return !s.empty();
}

// "FROM:" / "TO:" then the path; RFC 5321 allows no space after the colon,
// but clients that send one are common and harmless (Postfix accepts them).
bool strip_prefix(std::string_view& args, std::string_view prefix)
{
    if (!util::istarts_with(args, prefix))
        return false;
    args.remove_prefix(prefix.size());
    while (!args.empty() && args.front() == ' ')
        args.remove_prefix(1);
    return true;
}

// RFC 3461 4.4: ENVID is at most 100 characters; 4.2: ORCPT at most 500.
constexpr std::size_t max_envid = 100;
constexpr std::size_t max_orcpt = 500;

// RFC 3461 4.1: NOTIFY = "NEVER" / 1#("SUCCESS" / "FAILURE" / "DELAY"),
// each at most once, NEVER alone.
std::optional<std::uint8_t> parse_notify(std::string_view v)
{
    struct keyword {
        std::string_view name;
        std::uint8_t bit;
    };
    static constexpr std::array<keyword, 4> keywords{{
        {"NEVER", mail::notify::never},
        {"SUCCESS", mail::notify::success},
        {"FAILURE", mail::notify::failure},
        {"DELAY", mail::notify::delay},
    }};
    std::uint8_t bits = 0;
    for (auto word : util::split(v, ',')) {
        std::uint8_t bit = 0;
        for (const auto& k : keywords)
            if (util::iequals(word, k.name))
                bit = k.bit;
        if (bit == 0 || (bits & bit) != 0)
            return std::nullopt;
        bits |= bit;
    }
    if ((bits & mail::notify::never) != 0 && bits != mail::notify::never)
        return std::nullopt;
    return bits;
}

// RFC 3461 4.2: ORCPT = addr-type ";" xtext, kept as "addr-type;decoded".
// RFC 6533 3's "utf-8" type carries its own escaping (\x{..}) and may carry
// raw UTF-8 under SMTPUTF8: it is kept as sent, for the DSN to show.
std::optional<std::string> parse_orcpt(std::string_view v)
{
    auto semi = v.find(';');
    if (semi == std::string_view::npos || semi == 0 || v.size() > max_orcpt)
        return std::nullopt;
    auto type = v.substr(0, semi);
    for (char c : type)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return std::nullopt;
    auto value = v.substr(semi + 1);
    if (value.empty())
        return std::nullopt;
    if (util::iequals(type, "utf-8"))
        return std::string(v);
    auto decoded = util::xtext_decode(value);
    if (!decoded)
        return std::nullopt;
    for (unsigned char c : *decoded)
        if (c < 32 || c == 127)
            return std::nullopt; // a control character is no address (and no header injection)
    return std::string(type) + ";" + *decoded;
}

bool same_address(const mail::address& a, const mail::address& b)
{
    // Duplicates are folded case-insensitively, as Postfix's cleanup does.
    return util::iequals(a.local_part, b.local_part) && util::iequals(a.domain, b.domain);
}

} // namespace

server_session::server_session(session_config cfg) : cfg_(std::move(cfg)), tls_active_(cfg_.implicit_tls) {}

void server_session::start()
{
    reply(220, {}, cfg_.hostname + " ESMTP postern");
    state_ = state::greeted;
}

void server_session::refuse(std::string_view why)
{
    reply(421, "4.7.0", cfg_.hostname + " " + std::string(why));
    state_ = state::closing;
}

void server_session::timeout()
{
    reply(421, "4.4.2", cfg_.hostname + " Error: timeout exceeded");
    state_ = state::closing;
}

void server_session::shutting_down()
{
    reply(421, "4.3.2", cfg_.hostname + " Service shutting down, try again later");
    state_ = state::closing;
}

bool server_session::in_transaction() const noexcept
{
    switch (state_) {
    case state::mail:
    case state::rcpt_wait:
    case state::sender_wait:
    case state::data:
    case state::chunk:
    case state::commit_wait:
        return true;
    case state::fresh:
    case state::greeted:
    case state::ready:
    case state::auth_response:
    case state::auth_wait:
    case state::tls_pending:
    case state::closing:
    case state::closed:
        return false;
    }
    return false;
}

input_phase server_session::phase() const noexcept
{
    return state_ == state::data || state_ == state::chunk ? input_phase::data : input_phase::command;
}

std::string_view server_session::protocol() const noexcept
{
    if (!extended_)
        return "SMTP";
    // Indexed by [smtputf8][tls][authenticated].
    static constexpr std::string_view names[2][2][2] = {
        {{"ESMTP", "ESMTPA"}, {"ESMTPS", "ESMTPSA"}},
        {{"UTF8SMTP", "UTF8SMTPA"}, {"UTF8SMTPS", "UTF8SMTPSA"}},
    };
    return names[env_.smtputf8 ? 1 : 0][tls_active_ ? 1 : 0][authenticated_ ? 1 : 0];
}

void server_session::feed(std::string_view bytes)
{
    if (state_ == state::tls_pending)
        return; // plaintext sent after our 220 is never run (CVE-2011-0411)
    if (in_pos_ == in_.size()) {
        in_.clear();
        in_pos_ = 0;
        if (in_.capacity() > 65536)
            in_.shrink_to_fit(); // an idle session keeps no large buffer
    } else if (in_pos_ >= 4096) {
        in_.erase(0, in_pos_);
        in_pos_ = 0;
    }
    in_.append(bytes);
}

void server_session::reply(int code, std::string_view esc, std::string_view text)
{
    append_reply(out_, code, esc, text);
}

void server_session::error_reply(int code, std::string_view esc, std::string_view text)
{
    reply(code, esc, text);
    // Postfix's smtpd_hard_error_limit: a client that keeps erring is cut off.
    if (++errors_ >= cfg_.max_errors) {
        reply(421, "4.7.0", cfg_.hostname + " Error: too many errors");
        state_ = state::closing;
    }
}

bool server_session::take_line(std::string_view& line)
{
    std::string_view avail(in_);
    avail.remove_prefix(in_pos_);
    auto nl = avail.find('\n');
    const std::size_t limit = line_limit();
    if (nl == std::string_view::npos) {
        if (avail.size() > limit) {
            // Keep memory bounded: drop what we have and skip to the next LF.
            discarding_long_line_ = true;
            in_.clear();
            in_pos_ = 0;
        }
        return false;
    }
    line = avail.substr(0, nl);
    in_pos_ += nl + 1;
    // A bare LF ends a command line too (Postfix and OpenSMTPD accept it);
    // only the DATA phase is strict about CRLF.
    if (!line.empty() && line.back() == '\r')
        line.remove_suffix(1);
    if (discarding_long_line_ || line.size() + 2 > limit) {
        discarding_long_line_ = false;
        line = {};
        if (state_ == state::auth_response) {
            auth_ = {}; // the exchange is over; RFC 4954 4 gives 500 for a bad line
            state_ = state::ready;
        }
        error_reply(500, "5.5.6", "Error: line too long");
        return false;
    }
    return true;
}

std::size_t server_session::line_limit() const noexcept
{
    if (state_ == state::auth_response)
        return max_auth_line;
    std::string_view avail(in_);
    avail.remove_prefix(in_pos_);
    return util::istarts_with(avail, "AUTH ") ? max_auth_line : max_command_line;
}

event server_session::next()
{
    for (;;) {
        switch (state_) {
        case state::fresh:
            start();
            break;
        case state::closing:
            state_ = state::closed;
            return event::close;
        case state::closed:
            return event::close;
        case state::rcpt_wait:
            return event::check_rcpt;
        case state::sender_wait:
            return event::check_sender;
        case state::auth_wait:
            return event::check_auth;
        case state::commit_wait:
            return event::commit;
        case state::tls_pending:
            return event::start_tls;
        case state::data: {
            std::string_view avail(in_);
            avail.remove_prefix(in_pos_);
            in_pos_ += data_.consume(avail);
            if (!data_.done())
                return event::need_input;
            end_of_data();
            break;
        }
        case state::chunk: {
            std::string_view avail(in_);
            avail.remove_prefix(in_pos_);
            const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(avail.size(), chunk_left_));
            if (chunk_reply_.code == 0)
                data_.consume(avail.substr(0, take));
            in_pos_ += take;
            chunk_left_ -= take;
            if (chunk_left_ > 0)
                return event::need_input;
            end_of_chunk();
            break;
        }
        case state::greeted:
        case state::ready:
        case state::mail:
        case state::auth_response: {
            std::string_view line;
            std::size_t before = in_pos_;
            if (take_line(line)) {
                if (state_ == state::auth_response)
                    handle_auth_response(line);
                else
                    handle_line(line);
            } else if (in_pos_ == before) {
                return event::need_input; // no complete line yet
            }
            break;
        }
        }
    }
}

void server_session::handle_line(std::string_view line)
{
    auto cmd = parse_command(line);
    if (!cmd) {
        error_reply(500, "5.5.1", "Error: command not recognized");
        return;
    }
    auto args = util::trim(cmd->args);
    const auto& spec = *cmd->spec;
    if (spec.args == arg_rule::none && !args.empty()) {
        error_reply(501, "5.5.4", "Syntax: " + std::string(spec.name) + " takes no arguments");
        return;
    }
    if (spec.args == arg_rule::required && args.empty()) {
        error_reply(501, "5.5.4", "Syntax: " + std::string(spec.name) + " needs an argument");
        return;
    }
    switch (spec.v) {
    case verb::ehlo:
        handle_ehlo(args, true);
        return;
    case verb::helo:
        handle_ehlo(args, false);
        return;
    case verb::mail:
        if (state_ == state::greeted)
            error_reply(503, "5.5.1", "Error: send HELO/EHLO first");
        else if (state_ == state::mail)
            error_reply(503, "5.5.1", "Error: nested MAIL command");
        else if (storage_low_)
            reply(452, "4.3.1", "Error: insufficient system storage");
        else if (cfg_.submission && !authenticated_)
            // RFC 6409 4.3 (and RFC 3207 4 for the wording before TLS).
            error_reply(530, "5.7.0", auth_available() || cfg_.auth == auth_offer::never
                                          ? "Error: authentication required"
                                          : "Must issue a STARTTLS command first");
        else
            handle_mail(args);
        return;
    case verb::rcpt:
        if (state_ != state::mail)
            error_reply(503, "5.5.1", "Error: need MAIL command");
        else
            handle_rcpt(args);
        return;
    case verb::data:
        handle_data();
        return;
    case verb::bdat:
        handle_bdat(args);
        return;
    case verb::rset:
        reset_transaction();
        reply(250, "2.0.0", "Ok");
        return;
    case verb::noop:
        reply(250, "2.0.0", "Ok");
        return;
    case verb::quit:
        reply(221, "2.0.0", "Bye");
        state_ = state::closing;
        return;
    case verb::vrfy:
        // RFC 5321 3.5.3: 252 when we will not verify but will accept.
        reply(252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery");
        return;
    case verb::help:
        reply(214, "2.0.0", "Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP");
        return;
    case verb::starttls:
        handle_starttls();
        return;
    case verb::auth:
        handle_auth(args);
        return;
    }
}

void server_session::handle_ehlo(std::string_view args, bool extended)
{
    auto name = args.substr(0, args.find(' '));
    if (!is_printable_word(name)) {
        error_reply(501, "5.5.4", "Syntax: EHLO hostname");
        return;
    }
    // RFC 5321 4.1.4: EHLO/HELO resets any transaction in progress.
    reset_transaction();
    helo_.assign(name);
    extended_ = extended;
    state_ = state::ready;
    if (!extended) {
        reply(250, {}, cfg_.hostname);
        return;
    }
    std::vector<std::string> lines{
        cfg_.hostname,
        "PIPELINING",
        "SIZE " + std::to_string(cfg_.max_message_size),
        "8BITMIME",
        "BINARYMIME",
        "CHUNKING",
    };
    if (cfg_.starttls && !tls_active_)
        lines.emplace_back("STARTTLS");
    // RFC 4954 4: not advertised where it would be refused (before TLS), and
    // no longer once authenticated (a second AUTH is a 503).
    if (auth_available() && !authenticated_)
        lines.emplace_back("AUTH PLAIN LOGIN");
    lines.emplace_back("DSN");
    lines.emplace_back("ENHANCEDSTATUSCODES");
    lines.emplace_back("SMTPUTF8");
    append_multiline(out_, 250, lines);
}

bool server_session::auth_available() const noexcept
{
    return login_offered(cfg_.auth, tls_active_);
}

void server_session::handle_auth(std::string_view args)
{
    if (cfg_.auth == auth_offer::never) {
        // Not offered at all: as for STARTTLS, the answer from before AUTH
        // existed (RFC 5321 4.2.4).
        error_reply(500, "5.5.1", "Error: command not recognized");
        return;
    }
    if (!auth_available()) {
        // RFC 4954 6: the mechanisms need an encrypted channel first.
        error_reply(538, "5.7.11", "Encryption required for requested authentication mechanism");
        return;
    }
    if (authenticated_) {
        error_reply(503, "5.5.1", "Error: already authenticated");
        return;
    }
    if (state_ == state::greeted || !extended_) {
        error_reply(503, "5.5.1", "Error: send EHLO first");
        return;
    }
    if (state_ == state::mail) {
        error_reply(503, "5.5.1", "Error: MAIL transaction in progress");
        return;
    }
    const auto sp = args.find(' ');
    const auto mechanism = args.substr(0, sp);
    const bool has_initial = sp != std::string_view::npos;
    auto initial = has_initial ? util::trim(args.substr(sp + 1)) : std::string_view{};
    auth_ = {};
    if (util::iequals(mechanism, "PLAIN"))
        auth_.mechanism = sasl_mechanism::plain;
    else if (util::iequals(mechanism, "LOGIN"))
        auth_.mechanism = sasl_mechanism::login;
    else {
        error_reply(504, "5.5.4", "Error: unsupported authentication mechanism");
        return;
    }
    if (!has_initial) {
        state_ = state::auth_response;
        reply(334, {}, auth_.mechanism == sasl_mechanism::plain ? std::string_view{} : login_user_prompt);
        return;
    }
    // RFC 4954 4: "=" is an initial response of zero length.
    if (initial == "=")
        initial = {};
    state_ = state::auth_response;
    handle_auth_response(initial);
}

void server_session::handle_auth_response(std::string_view line)
{
    if (line == "*") {
        // RFC 4954 4: the client cancelled the exchange.
        auth_ = {};
        state_ = state::ready;
        error_reply(501, "5.0.0", "Authentication cancelled");
        return;
    }
    if (!util::base64_decode(line)) {
        auth_ = {};
        state_ = state::ready;
        error_reply(501, "5.5.2", "Error: cannot decode response (invalid base64)");
        return;
    }
    if (auth_.mechanism == sasl_mechanism::login && auth_.first.empty() && line.size() > 0) {
        auth_.first.assign(line);
        reply(334, {}, login_password_prompt);
        return;
    }
    if (auth_.mechanism == sasl_mechanism::login && auth_.first.empty()) {
        // An empty user name: nothing to check; refuse like bad credentials
        // would be wrong (no attempt was made), so it is malformed.
        auth_ = {};
        state_ = state::ready;
        error_reply(501, "5.5.2", "Error: empty user name");
        return;
    }
    (auth_.mechanism == sasl_mechanism::plain ? auth_.first : auth_.second).assign(line);
    state_ = state::auth_wait;
}

void server_session::answer_auth(auth_verdict v)
{
    if (state_ != state::auth_wait)
        return;
    // Forget the credentials as soon as they are judged.
    std::fill(auth_.first.begin(), auth_.first.end(), '\0');
    std::fill(auth_.second.begin(), auth_.second.end(), '\0');
    auth_ = {};
    state_ = state::ready;
    switch (v) {
    case auth_verdict::ok:
        authenticated_ = true;
        reply(235, "2.7.0", "Authentication successful");
        return;
    case auth_verdict::invalid:
        ++auth_failures_;
        reply(535, "5.7.8", "Error: authentication failed");
        if (auth_failures_ >= cfg_.max_auth_failures) {
            reply(421, "4.7.0", cfg_.hostname + " Error: too many failed authentications");
            state_ = state::closing;
        }
        return;
    case auth_verdict::malformed:
        error_reply(501, "5.5.2", "Error: malformed authentication response");
        return;
    case auth_verdict::locked:
        reply(421, "4.7.0", cfg_.hostname + " Error: too many failed authentications from your address, "
                                            "try again later");
        state_ = state::closing;
        return;
    case auth_verdict::temp_fail:
        reply(454, "4.7.0", "Temporary authentication failure");
        return;
    }
}

void server_session::handle_starttls()
{
    if (tls_active_) {
        error_reply(503, "5.5.1", "Error: TLS already active");
        return;
    }
    if (!cfg_.starttls) {
        // Not offered: the same answer as before STARTTLS existed (RFC 5321
        // 4.2.4 allows 500 for a command the server does not recognise).
        error_reply(500, "5.5.1", "Error: command not recognized");
        return;
    }
    if (state_ == state::greeted) {
        error_reply(503, "5.5.1", "Error: send EHLO first");
        return;
    }
    if (state_ == state::mail) {
        error_reply(503, "5.5.1", "Error: MAIL transaction in progress");
        return;
    }
    reply(220, "2.0.0", "Ready to start TLS");
    // What the client pipelined after STARTTLS came in plain text and must
    // not be run inside TLS (RFC 3207 4.2, CVE-2011-0411).
    drop_input();
    state_ = state::tls_pending;
}

void server_session::tls_started(bool ok, std::string description)
{
    bool implicit = state_ == state::fresh && cfg_.implicit_tls;
    if (state_ != state::tls_pending && !implicit)
        return;
    if (!ok) {
        // Nothing more can be said in plain text on a broken TLS stream.
        drop_input();
        state_ = state::closing;
        return;
    }
    tls_active_ = true;
    tls_description_ = std::move(description);
    if (implicit)
        return;
    // RFC 3207 4.2: forget everything learnt from the client; it must EHLO
    // again, and gets no second greeting.
    drop_input();
    reset_transaction();
    helo_.clear();
    extended_ = false;
    authenticated_ = false; // a plain-text login (auth=always) does not carry over
    state_ = state::greeted;
}

void server_session::drop_input()
{
    in_.clear();
    in_pos_ = 0;
    discarding_long_line_ = false;
}

void server_session::handle_mail(std::string_view args)
{
    if (!strip_prefix(args, "FROM:")) {
        error_reply(501, "5.5.4", "Syntax: MAIL FROM:<address>");
        return;
    }
    // Parse permissively first (to find the parameters), then hold the path
    // to the SMTPUTF8 rule once we know whether the client asked for it.
    auto parsed = mail::parse_path(args, mail::path_kind::reverse, {.smtputf8 = true});
    if (!parsed) {
        error_reply(501, "5.1.7", "Bad sender address syntax");
        return;
    }
    if (!parsed->rest.empty() && parsed->rest.front() != ' ') {
        error_reply(501, "5.1.7", "Bad sender address syntax");
        return;
    }
    auto params = parse_params(parsed->rest);
    if (!params) {
        error_reply(501, "5.5.4", "Syntax: bad MAIL parameters");
        return;
    }
    if (!extended_ && !params->empty()) {
        error_reply(555, "5.5.4", "MAIL parameters need EHLO");
        return;
    }
    bool smtputf8 = false, seen_size = false, seen_body = false, seen_envid = false;
    auto body = mail::body_type::seven_bit;
    auto ret = mail::dsn_ret::unspecified;
    std::string envid;
    std::uint64_t size = 0;
    for (const auto& p : *params) {
        if (util::iequals(p.keyword, "SIZE")) {
            // RFC 1870 6: SIZE=<decimal octets>, checked against our limit here.
            auto v = p.has_value ? util::parse_uint(p.value) : std::nullopt;
            if (!v || seen_size) {
                error_reply(501, "5.5.4", "Syntax: bad SIZE parameter");
                return;
            }
            seen_size = true;
            size = *v;
        } else if (util::iequals(p.keyword, "BODY")) {
            if (seen_body || !p.has_value) {
                error_reply(501, "5.5.4", "Syntax: bad BODY parameter");
                return;
            }
            seen_body = true;
            if (util::iequals(p.value, "8BITMIME"))
                body = mail::body_type::eight_bit_mime;
            else if (util::iequals(p.value, "BINARYMIME"))
                body = mail::body_type::binary_mime; // RFC 3030 3: the message must come by BDAT
            else if (!util::iequals(p.value, "7BIT")) {
                error_reply(501, "5.5.4", "Syntax: BODY is 7BIT, 8BITMIME or BINARYMIME");
                return;
            }
        } else if (util::iequals(p.keyword, "RET")) {
            // RFC 3461 4.3: RET=FULL / RET=HDRS, once.
            if (ret != mail::dsn_ret::unspecified || !p.has_value ||
                !(util::iequals(p.value, "FULL") || util::iequals(p.value, "HDRS"))) {
                error_reply(501, "5.5.4", "Syntax: bad RET parameter");
                return;
            }
            ret = util::iequals(p.value, "FULL") ? mail::dsn_ret::full : mail::dsn_ret::headers;
        } else if (util::iequals(p.keyword, "ENVID")) {
            // RFC 3461 4.4: xtext, at most 100 characters, printable when decoded.
            auto decoded = p.has_value && p.value.size() <= max_envid ? util::xtext_decode(p.value)
                                                                      : util::result<std::string>(util::errc::syntax);
            bool printable = decoded && std::all_of(decoded->begin(), decoded->end(), [](char c) {
                return static_cast<unsigned char>(c) >= 32 && static_cast<unsigned char>(c) < 127;
            });
            if (seen_envid || !printable) {
                error_reply(501, "5.5.4", "Syntax: bad ENVID parameter");
                return;
            }
            seen_envid = true;
            envid = std::move(*decoded);
        } else if (util::iequals(p.keyword, "SMTPUTF8")) {
            if (p.has_value || smtputf8) {
                error_reply(501, "5.5.4", "Syntax: SMTPUTF8 takes no value");
                return;
            }
            smtputf8 = true;
        } else if (util::iequals(p.keyword, "AUTH") && auth_available()) {
            // RFC 4954 5: a server that offers AUTH accepts AUTH=<mailbox>
            // or AUTH=<>; the identity is not trusted and not kept.
            if (!p.has_value) {
                error_reply(501, "5.5.4", "Syntax: bad AUTH parameter");
                return;
            }
        } else {
            // RFC 5321 4.1.1.11: 555 for parameters we do not recognise.
            error_reply(555, "5.5.4", "Unsupported option: " + std::string(p.keyword));
            return;
        }
    }
    if (!smtputf8 && !parsed->value.addr.is_ascii()) {
        error_reply(553, "5.6.7", "Must declare SMTPUTF8 to send non-ASCII addresses");
        return;
    }
    if (size > cfg_.max_message_size) {
        error_reply(552, "5.3.4", "Message size exceeds fixed maximum message size");
        return;
    }
    env_.sender = std::move(parsed->value);
    env_.smtputf8 = smtputf8;
    env_.body = body;
    env_.ret = ret;
    env_.envid = std::move(envid);
    declared_size_ = size;
    if (authenticated_) {
        state_ = state::sender_wait;
        return;
    }
    state_ = state::mail;
    reply(250, "2.1.0", "Ok");
}

void server_session::answer_sender(bool owned)
{
    if (state_ != state::sender_wait)
        return;
    state_ = state::mail;
    if (owned) {
        reply(250, "2.1.0", "Ok");
        return;
    }
    auto who = "<" + (env_.sender.null ? std::string() : env_.sender.addr.str()) + ">";
    reset_transaction();
    error_reply(553, "5.7.1", who + ": Sender address rejected: not owned by the authenticated user");
}

void server_session::handle_rcpt(std::string_view args)
{
    if (!strip_prefix(args, "TO:")) {
        error_reply(501, "5.5.4", "Syntax: RCPT TO:<address>");
        return;
    }
    auto parsed = mail::parse_path(args, mail::path_kind::forward, {.smtputf8 = env_.smtputf8});
    if (!parsed) {
        if (parsed.error() == util::errc::needs_smtputf8)
            error_reply(553, "5.6.7", "Must declare SMTPUTF8 to send non-ASCII addresses");
        else
            error_reply(501, "5.1.3", "Bad recipient address syntax");
        return;
    }
    if (!parsed->rest.empty() && parsed->rest.front() != ' ') {
        error_reply(501, "5.1.3", "Bad recipient address syntax");
        return;
    }
    auto params = parse_params(parsed->rest);
    if (!params) {
        error_reply(501, "5.5.4", "Syntax: bad RCPT parameters");
        return;
    }
    mail::recipient_dsn dsn;
    bool seen_notify = false;
    for (const auto& p : *params) {
        if (util::iequals(p.keyword, "NOTIFY")) {
            auto bits = p.has_value ? parse_notify(p.value) : std::nullopt;
            if (seen_notify || !bits) {
                error_reply(501, "5.5.4", "Syntax: bad NOTIFY parameter");
                return;
            }
            seen_notify = true;
            dsn.notify = *bits;
        } else if (util::iequals(p.keyword, "ORCPT")) {
            auto orcpt = p.has_value ? parse_orcpt(p.value) : std::nullopt;
            if (!dsn.orcpt.empty() || !orcpt) {
                error_reply(501, "5.5.4", "Syntax: bad ORCPT parameter");
                return;
            }
            dsn.orcpt = std::move(*orcpt);
        } else {
            error_reply(555, "5.5.4", "Unsupported option: " + std::string(p.keyword));
            return;
        }
    }
    if (bdat_used_) {
        // RFC 3030 2: the recipients are fixed once the first chunk is in.
        error_reply(503, "5.5.1", "Error: RCPT after BDAT");
        return;
    }
    rcpt_attempted_ = true;
    if (env_.recipients.size() >= cfg_.max_recipients) {
        // RFC 5321 4.5.3.1.10: 452 for too many recipients, the client retries the rest.
        reply(452, "4.5.3", "Error: too many recipients");
        return;
    }
    pending_rcpt_ = std::move(parsed->value.addr);
    pending_rcpt_dsn_ = std::move(dsn);
    pending_rcpt_routed_ = !parsed->value.source_route.empty();
    state_ = state::rcpt_wait;
}

void server_session::answer_rcpt(rcpt_verdict v)
{
    if (state_ != state::rcpt_wait)
        return;
    state_ = state::mail;
    auto who = "<" + pending_rcpt_.str() + ">";
    switch (v) {
    case rcpt_verdict::accept: {
        bool dup = false;
        for (const auto& r : env_.recipients)
            dup = dup || same_address(r, pending_rcpt_);
        if (!dup) {
            env_.recipients.push_back(std::move(pending_rcpt_));
            env_.rcpt_dsn.push_back(std::move(pending_rcpt_dsn_));
        }
        reply(250, "2.1.5", "Ok");
        break;
    }
    case rcpt_verdict::unknown_user:
        error_reply(550, "5.1.1", who + ": Recipient address rejected: User unknown");
        break;
    case rcpt_verdict::relay_denied:
        error_reply(554, "5.7.1", who + ": Relay access denied");
        break;
    case rcpt_verdict::temp_fail:
        reply(451, "4.3.0", who + ": Temporary lookup failure, try again later");
        break;
    }
    pending_rcpt_ = {};
    pending_rcpt_dsn_ = {};
}

void server_session::handle_data()
{
    if (state_ != state::mail) {
        error_reply(503, "5.5.1", state_ == state::greeted ? "Error: send HELO/EHLO first"
                                                           : "Error: need MAIL command");
        return;
    }
    if (bdat_used_) {
        // RFC 3030 2: one transaction, one way of sending the message.
        error_reply(503, "5.5.1", "Error: DATA after BDAT");
        return;
    }
    if (env_.body == mail::body_type::binary_mime) {
        // RFC 3030 3: BINARYMIME content cannot be dot-stuffed lines.
        error_reply(503, "5.5.1", "Error: BODY=BINARYMIME requires BDAT");
        return;
    }
    if (env_.recipients.empty()) {
        // RFC 2920 3.1: after a pipelined group whose RCPTs all failed, DATA
        // gets 554 and the client does not send the message.
        if (rcpt_attempted_)
            error_reply(554, "5.5.1", "Error: no valid recipients");
        else
            error_reply(503, "5.5.1", "Error: need RCPT command");
        return;
    }
    if (storage_low_) {
        // RFC 5321 4.2.5: a 452 to DATA; the recipients stay accepted, so
        // the client may retry DATA or give up the transaction.
        reply(452, "4.3.1", "Error: insufficient system storage");
        return;
    }
    data_ = data_reader(cfg_.max_message_size);
    // Trust a declared SIZE only so far: a client that announces 35 MB and
    // sends nothing must not make us hold 35 MB (STYLE 10).
    constexpr std::uint64_t max_reserve = 1 << 20;
    if (declared_size_ > 0)
        data_.body().reserve(static_cast<std::size_t>(std::min(declared_size_, max_reserve)) + 1024);
    state_ = state::data;
    reply(354, {}, "End data with <CR><LF>.<CR><LF>");
}

void server_session::end_of_data()
{
    if (data_.ok()) {
        state_ = state::commit_wait;
        return;
    }
    refuse_message();
}

void server_session::handle_bdat(std::string_view args)
{
    // RFC 3030 2: bdat-cmd = "BDAT" SP chunk-size [SP end-marker]; chunk-size = 1*DIGIT.
    const auto sp = args.find(' ');
    const auto size_text = args.substr(0, sp);
    const auto marker = sp == std::string_view::npos ? std::string_view{} : args.substr(sp + 1);
    const bool digits = !size_text.empty() &&
                        std::all_of(size_text.begin(), size_text.end(), [](char c) { return c >= '0' && c <= '9'; });
    const auto size = digits ? util::parse_uint(size_text) : std::nullopt;
    if (!size) {
        // Without its size there is no telling where the chunk ends: reading
        // on would run message content as commands (the BDAT form of SMTP
        // smuggling). Postfix answers and reads on; we answer and hang up.
        reply(501, "5.5.4", "Syntax: BDAT chunk-size [LAST]");
        state_ = state::closing;
        return;
    }
    chunk_size_ = *size;
    chunk_left_ = *size;
    chunk_last_ = util::iequals(marker, "LAST");
    chunk_reply_ = {};
    // Whatever the answer, the chunk's octets are read first, and it is
    // given after them (RFC 3030 2, 4.2).
    if (!marker.empty() && !chunk_last_)
        chunk_reply_ = {501, "5.5.4", "Syntax: BDAT chunk-size [LAST]"};
    else if (state_ == state::greeted)
        chunk_reply_ = {503, "5.5.1", "Error: send HELO/EHLO first"};
    else if (state_ != state::mail)
        chunk_reply_ = {503, "5.5.1", "Error: need MAIL command"};
    else if (env_.recipients.empty())
        chunk_reply_ = rcpt_attempted_ ? held_reply{554, "5.5.1", "Error: no valid recipients"}
                                       : held_reply{503, "5.5.1", "Error: need RCPT command"};
    else if (bdat_failure_.code != 0)
        chunk_reply_ = bdat_failure_;
    else if (!bdat_used_ && storage_low_)
        chunk_reply_ = {452, "4.3.1", "Error: insufficient system storage"};
    if (chunk_reply_.code == 0 && !bdat_used_) {
        bdat_used_ = true;
        data_ = data_reader(cfg_.max_message_size,
                            env_.body == mail::body_type::binary_mime ? framing::binary : framing::chunks);
    }
    chunk_return_ = state_;
    state_ = state::chunk;
}

void server_session::end_of_chunk()
{
    state_ = chunk_return_;
    if (chunk_reply_.code != 0) {
        const auto r = chunk_reply_;
        // Out of sequence (no MAIL, no RCPT yet): the answer is all. Any
        // other refusal inside a transaction loses part of the message, so
        // every later chunk gets the same answer and LAST ends the
        // transaction (as Postfix does); RSET ends it too.
        const bool sequence = r.code == 503;
        if (state_ == state::mail && !sequence)
            bdat_failure_ = r;
        if (r.code >= 500)
            error_reply(r.code, r.esc, r.text);
        else
            reply(r.code, r.esc, r.text);
        if (chunk_last_ && state_ == state::mail && !sequence)
            reset_transaction();
        return;
    }
    if (data_.too_big()) {
        // RFC 3030 4.2 and RFC 1870: 552 once the total passes the limit;
        // the rest of the chunks are read and refused the same way.
        bdat_failure_ = {552, "5.3.4", "Error: message file too big"};
        error_reply(552, "5.3.4", "Error: message file too big");
        if (chunk_last_ && state_ == state::mail)
            reset_transaction();
        return;
    }
    if (!chunk_last_) {
        reply(250, "2.0.0", std::to_string(chunk_size_) + " octets received");
        return;
    }
    data_.end_chunks();
    if (data_.ok()) {
        state_ = state::commit_wait;
        return;
    }
    refuse_message();
}

void server_session::refuse_message()
{
    state_ = state::mail; // so reset_transaction() returns to ready
    if (data_.too_big())
        error_reply(552, "5.3.4", "Error: message file too big");
    else if (data_.bare_lf() || data_.bare_cr())
        // RFC 5321 2.3.8: CR and LF only as CRLF; refusing instead of
        // repairing is what closes the smuggling hole (CVE-2023-51764).
        error_reply(554, "5.6.0", "Error: message contains bare CR or LF, refused");
    else
        error_reply(554, "5.6.0", "Error: message line longer than 1000 octets, refused");
    reset_transaction();
}

void server_session::committed(const util::result<std::string>& id)
{
    if (state_ != state::commit_wait)
        return;
    if (id) {
        ++messages_;
        reply(250, "2.0.0", "Ok: queued as " + *id);
    } else if (id.error() == std::errc::no_space_on_device) {
        reply(452, "4.3.1", "Error: insufficient system storage");
    } else {
        reply(451, "4.3.0", "Error: queue file write error");
    }
    state_ = state::mail;
    reset_transaction();
}

void server_session::reset_transaction()
{
    env_ = {};
    pending_rcpt_ = {};
    pending_rcpt_routed_ = false;
    rcpt_attempted_ = false;
    declared_size_ = 0;
    data_ = data_reader(0);
    bdat_used_ = false;
    bdat_failure_ = {};
    if (state_ == state::mail)
        state_ = state::ready;
}

} // namespace postern::smtp
