#include "postern/imap/session.hpp"

#include <utility>

#include "postern/auth/sasl.hpp"
#include "postern/imap/response.hpp"

namespace postern::imap {

namespace {

// RFC 9051 7.2.2. What every state offers; the login mechanisms are added by
// capabilities(). IMAP4rev1 stays for the clients that know only it (RFC
// 9051 appendix E: a server may offer both).
constexpr std::string_view common_capabilities =
    "IMAP4rev1 IMAP4rev2 LITERAL+ SASL-IR ID ENABLE IDLE NAMESPACE UNSELECT UIDPLUS MOVE SPECIAL-USE "
    "LIST-EXTENDED LIST-STATUS ESEARCH SEARCHRES CHILDREN STATUS=SIZE UTF8=ACCEPT";

// A text for "* BYE" that cannot split the line (the shell's reasons).
std::string clean_text(std::string_view text)
{
    std::string s(text);
    for (char& ch : s)
        if (ch == '\r' || ch == '\n' || ch == '\0')
            ch = ' ';
    return s;
}

} // namespace

session::session(session_config cfg) : cfg_(std::move(cfg)), reader_(cfg_.limits) {}

std::string session::capabilities() const
{
    std::string caps(common_capabilities);
    caps += " APPENDLIMIT=" + std::to_string(cfg_.limits.max_append);
    if (!authenticated()) {
        if (cfg_.starttls && !tls_active_)
            caps += " STARTTLS";
        // RFC 9051 6.2.3: LOGINDISABLED where LOGIN would be refused; no
        // mechanism is offered that would be refused too.
        caps += login_allowed() ? " AUTH=PLAIN" : " LOGINDISABLED";
    }
    return caps;
}

void session::start()
{
    if (step_ != step::fresh)
        return;
    tls_active_ = cfg_.implicit_tls;
    out_ += "* OK [CAPABILITY " + capabilities() + "] postern IMAP server ready\r\n";
    step_ = step::ready;
}

void session::timeout()
{
    bye("Autologout; idle for too long"); // RFC 9051 5.4
}

void session::refuse(std::string_view why)
{
    out_ += "* BYE [UNAVAILABLE] " + clean_text(why) + "\r\n";
    step_ = step::closing;
}

void session::bye(std::string_view text)
{
    out_ += "* BYE " + clean_text(text) + "\r\n";
    step_ = step::closing;
}

bool session::authenticated() const noexcept
{
    return state_ == session_state::authenticated || state_ == session_state::selected;
}

bool session::login_allowed() const noexcept
{
    return smtp::login_offered(cfg_.auth, tls_active_);
}

void session::feed(std::string_view bytes)
{
    // Between the STARTTLS "OK" and the handshake nothing the client sends
    // counts (CVE-2011-0411); after the end nothing does either.
    if (step_ == step::tls_pending || step_ == step::closing || step_ == step::closed)
        return;
    reader_.feed(bytes);
}

event session::next()
{
    for (;;) {
        switch (step_) {
        case step::fresh:
            return event::need_input;
        case step::closing:
            step_ = step::closed;
            return event::close;
        case step::closed:
            return event::close;
        case step::auth_wait:
            return event::check_auth;
        case step::executing:
            return event::execute;
        case step::tls_pending:
            return event::start_tls;
        case step::ready:
        case step::auth_response:
        case step::idle:
            break;
        }
        switch (reader_.next()) {
        case read_event::need_input:
            return event::need_input;
        case read_event::continuation:
            out_ += continuation("Ready for literal data"); // RFC 9051 7.5
            break;
        case read_event::command: {
            auto parsed = parse_command(reader_.take_command(), cfg_.parsing);
            if (!parsed) {
                bad(parsed.error.tag, parsed.error.code, parsed.error.text);
                break;
            }
            handle(std::move(*parsed.command));
            break;
        }
        case read_event::refused: {
            const auto& r = reader_.refusal();
            if (r.st == status::bad)
                bad(r.tag, r.code, r.text);
            else
                out_ += r.str(); // APPEND over APPENDLIMIT: NO [TOOBIG], not the client's error
            break;
        }
        case read_event::line:
            handle_raw_line(reader_.take_line());
            break;
        case read_event::line_too_long:
            step_ = step::ready;
            bad(tag_, response_code::toobig, "Line too long");
            break;
        }
    }
}

void session::bad(std::string_view tag, response_code code, std::string_view text)
{
    out_ += tagged(tag.empty() ? "*" : tag, status::bad, code, text);
    if (++errors_ >= cfg_.max_errors)
        bye("Too many invalid commands");
}

void session::handle(command cmd)
{
    if (!allowed(cmd.verb, state_)) {
        const auto why = state_ == session_state::not_authenticated && allowed(cmd.verb, session_state::authenticated)
                             ? " needs a login first"
                         : state_ == session_state::authenticated && allowed(cmd.verb, session_state::selected)
                             ? " needs a selected mailbox"
                             : " is not valid in this state";
        return bad(cmd.tag, response_code::clientbug, std::string(verb_name(cmd.verb)) + why);
    }
    switch (cmd.verb) {
    case verb::capability:
        return cmd_capability(cmd);
    case verb::noop:
        return cmd_noop(std::move(cmd));
    case verb::logout:
        return cmd_logout(cmd);
    case verb::id:
        return cmd_id(cmd);
    case verb::namespace_:
        return cmd_namespace(cmd);
    case verb::starttls:
        return cmd_starttls(cmd);
    case verb::login:
        return cmd_login(cmd);
    case verb::authenticate:
        return cmd_authenticate(cmd);
    case verb::idle:
        return cmd_idle(cmd);
    case verb::enable:
    case verb::select:
    case verb::examine:
    case verb::create:
    case verb::delete_:
    case verb::rename:
    case verb::subscribe:
    case verb::unsubscribe:
    case verb::list:
    case verb::lsub:
    case verb::status:
    case verb::append:
    case verb::check:
    case verb::close:
    case verb::unselect:
    case verb::expunge:
    case verb::search:
    case verb::fetch:
    case verb::store:
    case verb::copy:
    case verb::move:
        break;
    }
    pending_ = std::move(cmd);
    step_ = step::executing;
}

void session::cmd_capability(const command& c)
{
    out_ += untagged_data("CAPABILITY " + capabilities());
    out_ += tagged(c.tag, status::ok, "CAPABILITY completed");
}

void session::cmd_noop(command c)
{
    // RFC 9051 6.1.2: in the selected state NOOP is how a client polls for
    // changes: the executor syncs the folder.
    if (state_ == session_state::selected) {
        pending_ = std::move(c);
        step_ = step::executing;
        return;
    }
    out_ += tagged(c.tag, status::ok, "NOOP completed");
}

void session::cmd_logout(const command& c)
{
    out_ += "* BYE postern logging out\r\n";
    out_ += tagged(c.tag, status::ok, "LOGOUT completed");
    state_ = session_state::logout;
    step_ = step::closing;
}

void session::cmd_id(const command& c)
{
    // RFC 2971 3.2: the server's own fields (its version is nobody's business).
    out_ += untagged_data("ID (\"name\" \"postern\")");
    out_ += tagged(c.tag, status::ok, "ID completed");
}

void session::cmd_namespace(const command& c)
{
    // RFC 2342 5 / RFC 9051 6.3.10: one personal namespace, no prefix, "."
    // as the separator; no other users' or shared folders.
    out_ += untagged_data("NAMESPACE ((\"\" \".\")) NIL NIL");
    out_ += tagged(c.tag, status::ok, "NAMESPACE completed");
}

void session::cmd_starttls(const command& c)
{
    if (tls_active_ || !cfg_.starttls)
        return bad(c.tag, response_code::none, "STARTTLS is not available");
    out_ += tagged(c.tag, status::ok, "Begin TLS negotiation now");
    // RFC 9051 6.2.1 / CVE-2011-0411: whatever the client pipelined behind
    // STARTTLS is plain text and must never run inside TLS.
    reader_.discard_input();
    step_ = step::tls_pending;
}

void session::cmd_login(command& c)
{
    if (!login_allowed()) {
        // RFC 9051 6.2.3: LOGINDISABLED is advertised; the answer is NO.
        out_ += tagged(c.tag, status::no, response_code::privacyrequired,
                       cfg_.auth == auth_offer::never ? "Login is not available here"
                                                      : "Login only after STARTTLS");
        return;
    }
    auto& a = std::get<login_args>(c.args);
    user_ = std::move(a.user);
    password_ = std::move(a.password);
    a.password.clear();
    tag_ = c.tag;
    step_ = step::auth_wait;
}

void session::cmd_authenticate(command& c)
{
    auto& a = std::get<authenticate_args>(c.args);
    if (a.mechanism != "PLAIN") {
        out_ += tagged(c.tag, status::no, response_code::cannot, "Unsupported authentication mechanism");
        return;
    }
    if (!login_allowed()) {
        out_ += tagged(c.tag, status::no, response_code::privacyrequired,
                       cfg_.auth == auth_offer::never ? "Login is not available here"
                                                      : "Login only after STARTTLS");
        return;
    }
    tag_ = c.tag;
    if (a.initial_response) // RFC 4959 3: SASL-IR
        return check_plain(*a.initial_response);
    out_ += continuation(""); // RFC 9051 6.2.2: an empty challenge, "+ "
    step_ = step::auth_response;
    reader_.expect_line();
}

void session::cmd_idle(const command& c)
{
    // RFC 2177 3: "+ idling", then updates as they happen until DONE.
    out_ += continuation("idling");
    tag_ = c.tag;
    step_ = step::idle;
    reader_.expect_line();
}

void session::handle_raw_line(std::string line)
{
    if (step_ == step::idle) {
        step_ = step::ready;
        if (reader::is_done(line)) {
            out_ += tagged(tag_, status::ok, "IDLE terminated");
            return;
        }
        return bad(tag_, response_code::none, "Expected DONE");
    }
    if (step_ == step::auth_response) {
        step_ = step::ready;
        if (reader::is_cancel(line)) // RFC 9051 6.2.2: "*" cancels, answered BAD
            return bad(tag_, response_code::none, "AUTHENTICATE cancelled");
        check_plain(line);
    }
}

void session::check_plain(std::string_view response)
{
    auto creds = auth::decode_plain(response);
    if (!creds) {
        if (creds.error() == util::errc::refused) {
            // An authorization identity other than the login: not ours to grant.
            step_ = step::auth_wait;
            return answer_auth(auth_verdict::invalid);
        }
        return bad(tag_, response_code::none, "Malformed SASL PLAIN response");
    }
    user_ = std::move(creds->username);
    password_ = std::move(creds->password);
    step_ = step::auth_wait;
}

void session::answer_auth(auth_verdict v)
{
    if (step_ != step::auth_wait)
        return;
    password_.clear(); // not kept past its check
    step_ = step::ready;
    switch (v) {
    case auth_verdict::ok:
        state_ = session_state::authenticated;
        // RFC 9051 6.2.3: the capabilities change with the login; saying so
        // here spares the client a CAPABILITY round trip.
        out_ += tag_ + " OK [CAPABILITY " + capabilities() + "] Logged in\r\n";
        return;
    case auth_verdict::invalid:
        user_.clear();
        ++auth_failures_;
        out_ += tagged(tag_, status::no, response_code::authenticationfailed, "Invalid credentials");
        if (auth_failures_ >= cfg_.max_auth_failures)
            bye("Too many authentication failures");
        return;
    case auth_verdict::locked:
        user_.clear();
        ++auth_failures_;
        out_ += tagged(tag_, status::no, response_code::authenticationfailed, "Invalid credentials");
        bye("Too many authentication failures");
        return;
    case auth_verdict::temp_fail:
        user_.clear();
        out_ += tagged(tag_, status::no, response_code::unavailable, "Authentication is unavailable, try later");
        return;
    }
}

void session::executed(outcome o)
{
    if (step_ != step::executing)
        return;
    pending_.reset();
    out_ += o.text;
    state_ = o.selected ? session_state::selected : session_state::authenticated;
    step_ = o.close ? step::closing : step::ready;
}

void session::tls_started(bool ok)
{
    if (step_ != step::tls_pending)
        return;
    if (!ok) {
        out_.clear();
        step_ = step::closed;
        return;
    }
    tls_active_ = true;
    reader_.discard_input();
    step_ = step::ready;
}

} // namespace postern::imap
