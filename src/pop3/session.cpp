#include "postern/pop3/session.hpp"

#include <array>
#include <optional>

#include "postern/auth/sasl.hpp"
#include "postern/util/error.hpp"
#include "postern/util/strings.hpp"

namespace postern::pop3 {

namespace {

// RFC 2449 4: "command lines ... may be up to 255 octets, including the
// terminating CRLF".
constexpr std::size_t max_command_line = 255;
// RFC 5034 4 sets no limit on a SASL response line; PLAIN credentials fit
// in what SMTP AUTH allows (RFC 4954 4: 12288 octets).
constexpr std::size_t max_auth_line = 12288;

constexpr std::string_view greeting = "postern POP3 server ready";
constexpr std::string_view signing_off = "postern POP3 server signing off";

// A message number (RFC 1939 5: decimal, 1-based) or nothing.
std::optional<std::uint64_t> parse_number(std::string_view s)
{
    if (s.empty() || s.size() > 10)
        return std::nullopt;
    for (char c : s)
        if (c < '0' || c > '9')
            return std::nullopt;
    return util::parse_uint(s);
}

// Splits args at single spaces; RFC 1939 3: keywords and arguments are
// separated by a single SPACE, but clients that send more are harmless.
std::vector<std::string_view> arguments(std::string_view args)
{
    std::vector<std::string_view> out;
    std::size_t i = 0;
    while (i < args.size()) {
        while (i < args.size() && args[i] == ' ')
            ++i;
        if (i == args.size())
            break;
        auto end = args.find(' ', i);
        if (end == std::string_view::npos)
            end = args.size();
        out.push_back(args.substr(i, end - i));
        i = end;
    }
    return out;
}

} // namespace

session::session(session_config cfg) : cfg_(cfg), tls_active_(cfg.implicit_tls) {}

void session::start()
{
    ok(greeting);
    state_ = state::authorization;
}

void session::refuse(std::string_view why)
{
    // RFC 2449 8.1.2: SYS/TEMP, a transient condition; try again later.
    err("[SYS/TEMP] " + std::string(why));
    state_ = state::closing;
}

void session::timeout()
{
    err("connection timed out");
    state_ = state::closing;
}

bool session::authenticated() const noexcept
{
    switch (state_) {
    case state::listing_wait:
    case state::transaction:
    case state::retrieve_wait:
    case state::retrieving:
    case state::update_wait:
        return true;
    case state::fresh:
    case state::authorization:
    case state::auth_response:
    case state::auth_wait:
    case state::tls_pending:
    case state::closing:
    case state::closed:
        return false;
    }
    return false;
}

void session::feed(std::string_view bytes)
{
    // RFC 2595 4 / CVE-2011-0411: nothing sent before the handshake counts.
    if (state_ == state::tls_pending || state_ == state::closing || state_ == state::closed)
        return;
    if (in_pos_ > 0 && in_pos_ == in_.size()) {
        in_.clear();
        in_pos_ = 0;
    }
    in_.append(bytes);
}

void session::drop_input()
{
    in_.clear();
    in_pos_ = 0;
    discarding_long_line_ = false;
}

bool session::take_line(std::string& line)
{
    const std::size_t limit = state_ == state::auth_response ? max_auth_line : max_command_line;
    for (;;) {
        const auto lf = in_.find('\n', in_pos_);
        if (lf == std::string::npos) {
            if (in_.size() - in_pos_ > limit) {
                // Too long and still going: forget it, answer once at its end.
                discarding_long_line_ = true;
                in_.clear();
                in_pos_ = 0;
            } else if (in_pos_ > 0) {
                in_.erase(0, in_pos_);
                in_pos_ = 0;
            }
            return false;
        }
        std::size_t len = lf + 1 - in_pos_;
        const bool too_long = discarding_long_line_ || len > limit;
        std::string_view l(in_.data() + in_pos_, lf - in_pos_);
        in_pos_ = lf + 1;
        discarding_long_line_ = false;
        if (too_long) {
            if (state_ == state::auth_response) {
                err("[AUTH] response too long");
                state_ = state::authorization;
            } else {
                error_reply("line too long");
            }
            if (state_ == state::closing)
                return false;
            continue;
        }
        // Lines end in CRLF (RFC 1939 3); a bare LF is taken as one too.
        if (!l.empty() && l.back() == '\r')
            l.remove_suffix(1);
        line.assign(l);
        return true;
    }
}

event session::next()
{
    for (;;) {
        switch (state_) {
        case state::fresh:
            return event::need_input;
        case state::auth_wait:
            return event::check_auth;
        case state::listing_wait:
            return event::need_listing;
        case state::retrieve_wait:
        case state::retrieving:
            return event::retrieve;
        case state::update_wait:
            return event::update;
        case state::tls_pending:
            return event::start_tls;
        case state::closing:
            state_ = state::closed;
            return event::close;
        case state::closed:
            return event::close;
        case state::authorization:
        case state::auth_response:
        case state::transaction:
            break;
        }
        std::string line;
        if (!take_line(line))
            return state_ == state::closing ? next() : event::need_input;
        if (state_ == state::auth_response)
            handle_auth_response(line);
        else
            handle_line(line);
    }
}

void session::handle_line(std::string_view line)
{
    // RFC 1939 3 / RFC 2449: one table of commands and where they are valid
    // (Postfix's smtpd_cmd_table shape).
    struct command_spec {
        std::string_view name;
        void (session::*handler)(std::string_view);
        bool in_authorization;
        bool in_transaction;
    };
    static constexpr std::array<command_spec, 16> commands{{
        {"CAPA", &session::cmd_capa, true, true},
        {"USER", &session::cmd_user, true, false},
        {"PASS", &session::cmd_pass, true, false},
        {"AUTH", &session::cmd_auth, true, false},
        {"STLS", &session::cmd_stls, true, false},
        {"QUIT", &session::cmd_quit, true, true},
        {"STAT", &session::cmd_stat, false, true},
        {"LIST", &session::cmd_list, false, true},
        {"UIDL", &session::cmd_uidl, false, true},
        {"RETR", &session::cmd_retr, false, true},
        {"TOP", &session::cmd_top, false, true},
        {"DELE", &session::cmd_dele, false, true},
        {"NOOP", &session::cmd_noop, false, true},
        {"RSET", &session::cmd_rset, false, true},
        // RFC 1939 7: APOP is optional; postern keeps no clear-text secrets.
        {"APOP", nullptr, true, false},
        {"LAST", nullptr, false, false}, // RFC 1460, removed by RFC 1725
    }};
    const auto sp = line.find(' ');
    const auto verb = line.substr(0, sp);
    const auto args = sp == std::string_view::npos ? std::string_view{} : line.substr(sp + 1);
    for (const auto& c : commands) {
        if (!util::iequals(verb, c.name))
            continue;
        const bool valid = state_ == state::authorization ? c.in_authorization : c.in_transaction;
        if (c.handler == nullptr)
            return error_reply("command not implemented");
        if (!valid)
            return error_reply("command not valid in this state");
        return (this->*c.handler)(args);
    }
    error_reply("unknown command");
}

bool session::login_allowed() const noexcept
{
    return smtp::login_offered(cfg_.auth, tls_active_);
}

void session::cmd_capa(std::string_view args)
{
    if (!args.empty())
        return error_reply("no arguments expected");
    // RFC 2449 5.
    ok("Capability list follows");
    out_ += "TOP\r\nUIDL\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\n";
    if (state_ == state::authorization && login_allowed())
        out_ += "USER\r\nSASL PLAIN\r\n";
    if (state_ == state::authorization && cfg_.stls && !tls_active_)
        out_ += "STLS\r\n";
    out_ += "IMPLEMENTATION postern\r\n.\r\n";
}

void session::cmd_user(std::string_view args)
{
    if (!login_allowed())
        return refuse_login();
    if (args.empty() || args.size() > 255)
        return error_reply("user name expected");
    user_.assign(args);
    have_user_ = true;
    // RFC 1939 7 allows "+OK" whether or not the user exists: it does not
    // tell a guesser which names are real.
    ok("send PASS");
}

void session::refuse_login()
{
    // Counted as an error: a client retrying forever in clear gets closed.
    error_reply(cfg_.auth == auth_offer::never ? "[AUTH] login not available"
                                               : "[AUTH] plain-text login needs TLS first (STLS)");
}

void session::cmd_pass(std::string_view args)
{
    if (!have_user_)
        return error_reply("USER first");
    have_user_ = false;
    if (args.empty())
        return error_reply("password expected");
    // RFC 1939 13: the rest of the line; a password may hold spaces.
    password_.assign(args);
    state_ = state::auth_wait;
}

void session::cmd_auth(std::string_view args)
{
    if (!login_allowed())
        return refuse_login();
    have_user_ = false;
    const auto a = arguments(args);
    if (a.empty() || a.size() > 2)
        return error_reply("mechanism expected");
    if (!util::iequals(a[0], "PLAIN"))
        return err("unsupported SASL mechanism");
    if (a.size() == 2) {
        // RFC 5034 4: "=" is an empty initial response.
        return check_plain(a[1] == "=" ? std::string_view{} : a[1]);
    }
    out_ += "+ \r\n";
    state_ = state::auth_response;
}

void session::handle_auth_response(std::string_view line)
{
    state_ = state::authorization;
    if (line == "*")
        return err("[AUTH] authentication cancelled"); // RFC 5034 4
    check_plain(line);
}

void session::check_plain(std::string_view response)
{
    auto creds = auth::decode_plain(response);
    if (!creds) {
        if (creds.error() == util::errc::refused) {
            state_ = state::auth_wait;
            return answer_auth(auth_verdict::invalid); // proxy authorization: not ours to grant
        }
        return error_reply("malformed SASL response");
    }
    user_ = std::move(creds->username);
    password_ = std::move(creds->password);
    state_ = state::auth_wait;
}

void session::answer_auth(auth_verdict v)
{
    if (state_ != state::auth_wait)
        return;
    password_.clear(); // not kept past its check
    state_ = state::authorization;
    switch (v) {
    case auth_verdict::ok:
        state_ = state::listing_wait;
        return;
    case auth_verdict::invalid:
        ++auth_failures_;
        err("[AUTH] invalid user name or password");
        if (auth_failures_ >= cfg_.max_auth_failures) {
            err("[AUTH] too many failures");
            state_ = state::closing;
        }
        return;
    case auth_verdict::locked:
        err("[AUTH] too many failures, try again later");
        state_ = state::closing;
        return;
    case auth_verdict::in_use:
        err("[IN-USE] mailbox in use by another session");
        return;
    case auth_verdict::temp_fail:
        err("[SYS/TEMP] authentication temporarily unavailable");
        return;
    }
}

void session::listing(std::vector<listing_entry> entries)
{
    if (state_ != state::listing_wait)
        return;
    messages_.clear();
    messages_.reserve(entries.size());
    for (auto& e : entries)
        messages_.push_back({std::move(e), false, false});
    std::size_t n = 0;
    std::uint64_t octets = 0;
    summary_counts(n, octets);
    ok("maildrop has " + std::to_string(n) + " messages (" + std::to_string(octets) + " octets)");
    state_ = state::transaction;
}

void session::listing_failed()
{
    if (state_ != state::listing_wait)
        return;
    err("[SYS/TEMP] mailbox unavailable");
    state_ = state::closing;
}

void session::cmd_stls(std::string_view args)
{
    if (!cfg_.stls || tls_active_)
        return error_reply("STLS not available");
    if (!args.empty())
        return error_reply("no arguments expected");
    ok("begin TLS negotiation");
    drop_input(); // RFC 2595 4: pipelined plain text is never run
    state_ = state::tls_pending;
}

void session::tls_started(bool good)
{
    if (state_ != state::tls_pending)
        return;
    drop_input();
    if (!good) {
        state_ = state::closed; // nothing more can be said in clear
        return;
    }
    tls_active_ = true;
    user_.clear();
    password_.clear();
    have_user_ = false;
    state_ = state::authorization;
}

void session::cmd_quit(std::string_view args)
{
    if (!args.empty())
        return error_reply("no arguments expected");
    if (state_ == state::authorization) {
        ok(signing_off);
        state_ = state::closing;
        return;
    }
    state_ = state::update_wait; // RFC 1939 6
}

std::vector<std::size_t> session::deletions() const
{
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < messages_.size(); ++i)
        if (messages_[i].deleted)
            out.push_back(i);
    return out;
}

std::vector<std::size_t> session::retrieved() const
{
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < messages_.size(); ++i)
        if (messages_[i].retrieved && !messages_[i].deleted)
            out.push_back(i);
    return out;
}

void session::updated(bool good)
{
    if (state_ != state::update_wait)
        return;
    if (good)
        ok(signing_off);
    else
        err("[SYS/TEMP] some deleted messages not removed"); // RFC 1939 6
    state_ = state::closing;
}

void session::summary_counts(std::size_t& n, std::uint64_t& octets) const
{
    n = 0;
    octets = 0;
    for (const auto& m : messages_)
        if (!m.deleted) {
            ++n;
            octets += m.entry.size;
        }
}

session::message* session::find(std::string_view arg, bool& bad_syntax)
{
    bad_syntax = false;
    const auto n = parse_number(arg);
    if (!n) {
        bad_syntax = true;
        return nullptr;
    }
    if (*n == 0 || *n > messages_.size() || messages_[*n - 1].deleted)
        return nullptr;
    return &messages_[*n - 1];
}

void session::cmd_stat(std::string_view args)
{
    if (!args.empty())
        return error_reply("no arguments expected");
    std::size_t n = 0;
    std::uint64_t octets = 0;
    summary_counts(n, octets);
    ok(std::to_string(n) + " " + std::to_string(octets));
}

// LIST and UIDL (RFC 1939 5, 7): one message's line as "+OK n value", or
// every undeleted message's line after heading, ended by ".".
void session::scan_listing(std::string_view args, std::string heading, std::string (*value)(const message&))
{
    const auto a = arguments(args);
    if (a.size() > 1)
        return error_reply("too many arguments");
    if (a.size() == 1) {
        bool bad = false;
        auto* m = find(a[0], bad);
        if (bad)
            return error_reply("invalid message number");
        if (m == nullptr)
            return err("no such message");
        return ok(std::string(a[0]) + " " + value(*m));
    }
    ok(heading);
    for (std::size_t i = 0; i < messages_.size(); ++i)
        if (!messages_[i].deleted)
            out_ += std::to_string(i + 1) + " " + value(messages_[i]) + "\r\n";
    out_ += ".\r\n";
}

void session::cmd_list(std::string_view args)
{
    std::size_t n = 0;
    std::uint64_t octets = 0;
    summary_counts(n, octets);
    scan_listing(args, std::to_string(n) + " messages (" + std::to_string(octets) + " octets)",
                 [](const message& m) { return std::to_string(m.entry.size); });
}

void session::cmd_uidl(std::string_view args)
{
    scan_listing(args, "unique-id listing follows", [](const message& m) { return m.entry.uid; });
}

void session::cmd_retr(std::string_view args)
{
    const auto a = arguments(args);
    if (a.size() != 1)
        return error_reply("message number expected");
    bool bad = false;
    auto* m = find(a[0], bad);
    if (bad)
        return error_reply("invalid message number");
    if (m == nullptr)
        return err("no such message");
    pending_ = static_cast<std::size_t>(m - messages_.data());
    top_ = false;
    top_lines_ = 0;
    state_ = state::retrieve_wait;
}

void session::cmd_top(std::string_view args)
{
    const auto a = arguments(args);
    if (a.size() != 2)
        return error_reply("message number and line count expected");
    bool bad = false;
    auto* m = find(a[0], bad);
    const auto lines = parse_number(a[1]);
    if (bad || !lines)
        return error_reply("invalid argument");
    if (m == nullptr)
        return err("no such message");
    pending_ = static_cast<std::size_t>(m - messages_.data());
    top_ = true;
    top_lines_ = *lines;
    state_ = state::retrieve_wait;
}

void session::message_chunk(std::string_view piece)
{
    if (state_ == state::retrieve_wait) {
        if (top_)
            ok("top of message follows");
        else
            ok(std::to_string(messages_[pending_].entry.size) + " octets");
        stuffer_ = smtp::dot_encoder{};
        state_ = state::retrieving;
    }
    if (state_ != state::retrieving)
        return;
    // RFC 1939 3: lines beginning with "." are byte-stuffed; the bytes are
    // otherwise sent as stored (CRLF). smtp::dot_encoder is the same
    // transparency as SMTP DATA (RFC 5321 4.5.2), so it serves as is.
    stuffer_.encode(piece, out_);
}

void session::message_end()
{
    if (state_ == state::retrieve_wait)
        message_chunk({});
    if (state_ != state::retrieving)
        return;
    stuffer_.finish(out_);
    if (!top_)
        messages_[pending_].retrieved = true;
    state_ = state::transaction;
}

void session::message_failed()
{
    if (state_ == state::retrieving) {
        // Half a message sent: the client cannot tell where it ends; only
        // closing is honest.
        state_ = state::closed;
        return;
    }
    if (state_ != state::retrieve_wait)
        return;
    err("[SYS/TEMP] message unavailable");
    state_ = state::transaction;
}

void session::cmd_dele(std::string_view args)
{
    const auto a = arguments(args);
    if (a.size() != 1)
        return error_reply("message number expected");
    const auto n = parse_number(a[0]);
    if (!n)
        return error_reply("invalid message number");
    if (*n == 0 || *n > messages_.size())
        return err("no such message");
    auto& m = messages_[*n - 1];
    if (m.deleted)
        return err("message " + std::string(a[0]) + " already deleted");
    m.deleted = true; // RFC 1939 5: removed only in the UPDATE state
    ok("message " + std::string(a[0]) + " deleted");
}

void session::cmd_noop(std::string_view args)
{
    if (!args.empty())
        return error_reply("no arguments expected");
    ok({});
}

void session::cmd_rset(std::string_view args)
{
    if (!args.empty())
        return error_reply("no arguments expected");
    for (auto& m : messages_)
        m.deleted = false;
    std::size_t n = 0;
    std::uint64_t octets = 0;
    summary_counts(n, octets);
    ok("maildrop has " + std::to_string(n) + " messages (" + std::to_string(octets) + " octets)");
}

void session::ok(std::string_view text)
{
    out_ += text.empty() ? "+OK" : "+OK ";
    out_ += text;
    out_ += "\r\n";
}

void session::err(std::string_view text)
{
    out_ += "-ERR ";
    out_ += text;
    out_ += "\r\n";
}

void session::error_reply(std::string_view text)
{
    err(text);
    if (++errors_ >= cfg_.max_errors) {
        err("too many errors");
        state_ = state::closing;
    }
}

} // namespace postern::pop3
