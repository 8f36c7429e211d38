#include "postern/daemon/cli.hpp"

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <stdexcept>
#include <system_error>
#include <vector>
#include <termios.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "postern/auth/password.hpp"
#include "postern/config/config.hpp"
#include "postern/log/log.hpp"
#include "postern/daemon/route_explain.hpp"
#include "postern/daemon/sendmail.hpp"
#include "postern/daemon/serve.hpp"
#include "postern/server/control_server.hpp"
#include "postern/util/id.hpp"

namespace postern::daemon {

namespace {

constexpr int exit_ok = 0;
constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

const char* usage_text =
    "usage: postern <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve [--config FILE] [--log-format text|json] [--log-target stderr|syslog]\n"
    "                                 run the mail server in the foreground, logging\n"
    "                                 to stderr or to syslog (facility mail, /dev/log;\n"
    "                                 syslog:PATH for another socket)\n"
    "                                 (every command finds its configuration the\n"
    "                                 same way: --config FILE, else $POSTERN_CONFIG,\n"
    "                                 else /etc/postern/postern.json if it exists,\n"
    "                                 else the embedded default: SMTP on\n"
    "                                 127.0.0.1:2525, ./var/spool, ./var/mail)\n"
    "  check-config [--config FILE]   validate a configuration and print the\n"
    "                                 effective settings as JSON\n"
    "  queue list [--json]            the queued messages: id, age, size, sender,\n"
    "                                 each recipient's state, next attempt, last error\n"
    "  queue show ID [--json]         one message: envelope, recipients and text\n"
    "  queue flush [ID] [--json]      retry now (every message, or one)\n"
    "  queue delete ID [--json]       remove a message without delivering it\n"
    "  queue hold ID [--json]         keep a message from delivery until released\n"
    "  queue release ID [--json]      deliver a held message again\n"
    "                                 (queue commands take --config FILE like serve\n"
    "                                 and talk to the running server through\n"
    "                                 <spool_dir>/control.sock; --json prints the\n"
    "                                 server's JSON reply for scripts)\n"
    "  route explain ADDRESS [--config FILE]\n"
    "                                 how a recipient would be handled, step by\n"
    "                                 step (plus tag, aliases, Maildir or the MX\n"
    "                                 hosts resolved now), without sending; exit 0\n"
    "                                 accepted, 1 refused, 2 configuration error,\n"
    "                                 64 not an address\n"
    "  sendmail [-t] [-i|-oi] [-f SENDER] [-F NAME] [--config FILE] [RECIPIENT...]\n"
    "                                 submit the message on standard input (bare LF\n"
    "                                 line ends are fine) through <spool_dir>/pickup/,\n"
    "                                 also when the server is down; the same when\n"
    "                                 postern is run as `sendmail` (a symlink); exit\n"
    "                                 status per sysexits.h (64 usage, 65 data,\n"
    "                                 75 try again, 77 -f not permitted, 78 config)\n"
    "  reload [--config FILE]         the running server reads its configuration\n"
    "                                 again (as on SIGHUP): refused and kept when\n"
    "                                 invalid; certificates take effect at once,\n"
    "                                 other changes are named for the next restart\n"
    "  hash-password                  read one password line from standard input\n"
    "                                 and print its $pbkdf2-sha256$ hash\n"
    "  help                           this text\n"
    "  --version                      print the version\n";

std::string host_name()
{
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0')
        return "localhost";
    return buf;
}

struct options {
    std::optional<std::string> config;
};

// "--log-format text|json" / "--log-format=…": how log lines are written
// (log::format); false for any other value.
bool set_log_format(std::string_view v)
{
    if (v == "text")
        log::set_format(log::format::text);
    else if (v == "json")
        log::set_format(log::format::json);
    else
        return false;
    return true;
}

// "--log-target stderr|syslog[:PATH]" / "--log-target=…": where log lines
// go — stderr (default), or the local syslog socket (/dev/log, or PATH:
// another UNIX datagram socket, as in a chroot or a test); false for any
// other value.
bool set_log_target(std::string_view v)
{
    if (v == "stderr")
        return log::set_syslog("");
    if (v == "syslog")
        return log::set_syslog("/dev/log");
    if (v.substr(0, 7) == "syslog:" && v.size() > 7)
        return log::set_syslog(std::string(v.substr(7)));
    return false;
}

// Parses "--config FILE" / "--config=FILE", "--log-format text|json" and
// "--log-target stderr|syslog[:PATH]"; anything else is a usage error.
bool parse_options(std::span<const std::string_view> args, options& out)
{
    for (std::size_t i = 0; i < args.size(); ++i) {
        auto a = args[i];
        if (a == "--config" && i + 1 < args.size()) {
            out.config = std::string(args[++i]);
        } else if (a.substr(0, 9) == "--config=") {
            out.config = std::string(a.substr(9));
        } else if ((a == "--log-format" && i + 1 < args.size()) || a.substr(0, 13) == "--log-format=") {
            auto v = a == "--log-format" ? args[++i] : a.substr(13);
            if (!set_log_format(v)) {
                std::cerr << "postern: --log-format is text or json, not '" << v << "'\n" << usage_text;
                return false;
            }
        } else if ((a == "--log-target" && i + 1 < args.size()) || a.substr(0, 13) == "--log-target=") {
            auto v = a == "--log-target" ? args[++i] : a.substr(13);
            if (!set_log_target(v)) {
                std::cerr << "postern: --log-target is stderr, syslog or syslog:PATH, not '" << v << "'\n"
                          << usage_text;
                return false;
            }
        } else {
            std::cerr << "postern: unknown option '" << a << "'\n" << usage_text;
            return false;
        }
    }
    return true;
}

std::optional<config::settings> load(const options& o)
{
    return load_settings(o.config);
}

// ---- postern queue ...

using json = nlohmann::json;

enum class queue_verb { list, show, flush, del, hold, release };
enum class id_rule { none, required, optional };

struct queue_command {
    queue_verb verb;
    std::string_view name;
    id_rule id;
};

constexpr std::array<queue_command, 6> queue_commands{{
    {queue_verb::list, "list", id_rule::none},
    {queue_verb::show, "show", id_rule::required},
    {queue_verb::flush, "flush", id_rule::optional},
    {queue_verb::del, "delete", id_rule::required},
    {queue_verb::hold, "hold", id_rule::required},
    {queue_verb::release, "release", id_rule::required},
}};

// The server has a whole minute: a list of a large queue takes a while.
constexpr std::chrono::seconds control_timeout{60};

const char* queue_usage_text =
    "usage: postern queue list [--config FILE] [--json]\n"
    "       postern queue show|delete|hold|release ID [--config FILE] [--json]\n"
    "       postern queue flush [ID] [--config FILE] [--json]\n"
    "(ID: the 16 lower-case hex digits `queue list` shows)\n";

struct queue_options {
    options common;
    const queue_command* command = nullptr;
    std::string id;
    bool json_out = false;
};

int queue_usage_error(const std::string& what)
{
    std::cerr << "postern: " << what << "\n" << queue_usage_text;
    return exit_usage;
}

// 0 when the arguments are good, else the exit status (after the message).
int parse_queue_args(std::span<const std::string_view> args, queue_options& out)
{
    std::vector<std::string_view> positional;
    for (std::size_t i = 0; i < args.size(); ++i) {
        auto a = args[i];
        if (a == "--json") {
            out.json_out = true;
        } else if (a == "--config") {
            if (i + 1 >= args.size())
                return queue_usage_error("--config needs a file name");
            out.common.config = std::string(args[++i]);
        } else if (a.substr(0, 9) == "--config=") {
            out.common.config = std::string(a.substr(9));
        } else if (a.size() > 1 && a[0] == '-') {
            return queue_usage_error("unknown option '" + std::string(a) + "'");
        } else {
            positional.push_back(a);
        }
    }
    if (positional.empty())
        return queue_usage_error("queue needs a command");
    for (const auto& c : queue_commands)
        if (c.name == positional[0])
            out.command = &c;
    if (!out.command)
        return queue_usage_error("unknown queue command '" + std::string(positional[0]) + "'");
    const auto& c = *out.command;
    if (positional.size() > 2 || (positional.size() == 2 && c.id == id_rule::none))
        return queue_usage_error("too many arguments for 'queue " + std::string(c.name) + "'");
    if (positional.size() < 2 && c.id == id_rule::required)
        return queue_usage_error("'queue " + std::string(c.name) + "' needs a queue ID");
    if (positional.size() == 2) {
        if (!util::is_queue_id(positional[1]))
            return queue_usage_error("not a queue ID: '" + std::string(positional[1]) +
                                     "' (expected 16 lower-case hex digits)");
        out.id = std::string(positional[1]);
    }
    return 0;
}

// "42s", "5m", "2h", "3d": the largest whole unit.
std::string format_duration(std::int64_t s)
{
    if (s < 0)
        s = 0;
    if (s < 60)
        return std::to_string(s) + "s";
    if (s < 3600)
        return std::to_string(s / 60) + "m";
    if (s < 86400)
        return std::to_string(s / 3600) + "h";
    return std::to_string(s / 86400) + "d";
}

std::string format_next(std::int64_t next, std::int64_t now)
{
    return next <= now ? std::string("now") : "in " + format_duration(next - now);
}

std::string format_utc(std::int64_t t)
{
    const std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    ::gmtime_r(&tt, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

std::string pad(std::string s, std::size_t width)
{
    if (s.size() < width)
        s.append(width - s.size(), ' ');
    return s;
}

std::string sender_text(const json& e)
{
    auto s = e.value("sender", std::string());
    return s.empty() ? std::string("<>") : s;
}

void print_recipients(const json& e, std::int64_t now)
{
    for (const auto& r : e.value("recipients", json::array())) {
        const auto state = r.value("state", std::string("?"));
        std::cout << "    " << r.value("address", std::string()) << "  " << state
                  << "  attempts=" << r.value("attempts", 0);
        if (state == "pending")
            std::cout << "  next=" << format_next(r.value("next_attempt", std::int64_t{0}), now);
        if (auto err = r.value("last_error", std::string()); !err.empty())
            std::cout << "  last_error: " << err;
        std::cout << "\n";
    }
}

void print_list(const json& reply, std::int64_t now)
{
    const auto& entries = reply.at("entries");
    if (entries.empty()) {
        std::cout << "queue is empty\n";
        return;
    }
    std::cout << pad("ID", 18) << pad("AGE", 6) << pad("SIZE", 10) << "SENDER\n";
    std::uint64_t bytes = 0;
    for (const auto& e : entries) {
        const auto size = e.value("size", std::uint64_t{0});
        bytes += size;
        std::cout << pad(e.value("id", std::string()), 18)
                  << pad(format_duration(e.value("age_s", std::int64_t{0})), 6)
                  << pad(std::to_string(size), 10) << sender_text(e)
                  << (e.value("held", false) ? "  (held)" : "") << "\n";
        print_recipients(e, now);
    }
    std::cout << "-- " << entries.size() << (entries.size() == 1 ? " message, " : " messages, ")
              << bytes << " bytes\n";
}

// CRLF → LF for the terminal; the bytes on disk are untouched.
std::string for_terminal(const std::string& message)
{
    std::string out;
    out.reserve(message.size());
    for (std::size_t i = 0; i < message.size(); ++i)
        if (!(message[i] == '\r' && i + 1 < message.size() && message[i + 1] == '\n'))
            out += message[i];
    return out;
}

void print_show(const json& reply, std::int64_t now)
{
    const auto& e = reply.at("entry");
    const auto received = e.value("received_at", std::int64_t{0});
    std::cout << "id:         " << e.value("id", std::string()) << "\n"
              << "received:   " << format_utc(received) << " (" << format_duration(now - received) << " ago)\n"
              << "size:       " << e.value("size", std::uint64_t{0}) << " bytes\n"
              << "sender:     " << sender_text(e) << "\n"
              << "client:     " << e.value("client_ip", std::string()) << " (helo "
              << e.value("helo", std::string()) << ")\n"
              << "held:       " << (e.value("held", false) ? "yes" : "no") << "\n"
              << "recipients:\n";
    print_recipients(e, now);
    auto message = for_terminal(e.value("message", std::string()));
    std::cout << "message:\n" << message;
    if (!message.empty() && message.back() != '\n')
        std::cout << "\n";
    if (e.value("message_truncated", false))
        std::cout << "[... truncated: " << e.value("size", std::uint64_t{0}) << " bytes in all]\n";
}

void print_done(const queue_command& c, const std::string& id, const json& reply)
{
    const auto& ids = reply.at("ids");
    switch (c.verb) {
    case queue_verb::flush:
        std::cout << "flushed " << ids.size() << "\n";
        return;
    case queue_verb::del:
        std::cout << "deleted " << id << "\n";
        return;
    case queue_verb::hold:
        std::cout << "held " << id << "\n";
        return;
    case queue_verb::release:
        std::cout << "released " << id << "\n";
        return;
    case queue_verb::list:
    case queue_verb::show:
        return; // printed elsewhere
    }
}

// Entries in <spool>/queue/<xx>/<16 hex> (told when the server is down).
std::size_t entries_on_disk(const std::string& spool_dir)
{
    namespace fs = std::filesystem;
    std::size_t n = 0;
    std::error_code ec;
    for (fs::directory_iterator d(fs::path(spool_dir) / "queue", ec), end; !ec && d != end; d.increment(ec)) {
        if (!d->is_directory(ec))
            continue;
        std::error_code ec2;
        for (fs::directory_iterator f(d->path(), ec2); !ec2 && f != end; f.increment(ec2))
            if (util::is_queue_id(f->path().filename().string()))
                ++n;
    }
    return n;
}

// Says on stderr why the control socket at path gave no reply.
void report_control_error(const std::string& path, std::error_code ec)
{
    if (ec == std::errc::no_such_file_or_directory || ec == std::errc::connection_refused) {
        std::cerr << "postern: the server is not running ("
                  << (ec == std::errc::connection_refused ? "nothing answers on the control socket at "
                                                          : "no control socket at ")
                  << path << ")\n";
    } else if (ec == std::errc::timed_out) {
        std::cerr << "postern: no reply from the server within " << control_timeout.count()
                  << "s (control socket " << path << ")\n";
    } else if (ec == std::errc::permission_denied) {
        std::cerr << "postern: control socket " << path
                  << ": permission denied (run as the user the server runs as)\n";
    } else {
        std::cerr << "postern: control socket " << path << ": " << ec.message() << "\n";
    }
}

int queue_main(std::span<const std::string_view> args)
{
    queue_options o;
    if (int rc = parse_queue_args(args, o); rc != 0)
        return rc;
    auto s = load(o.common);
    if (!s)
        return exit_usage;
    const auto& c = *o.command;
    const auto path = server::control_server::socket_path(s->spool_dir);

    json request{{"cmd", std::string(c.name)}};
    if (!o.id.empty())
        request["id"] = o.id;
    auto reply = server::control_request(path, request.dump(), control_timeout);
    if (!reply) {
        const auto ec = reply.error();
        report_control_error(path, ec);
        if (c.verb == queue_verb::list &&
            (ec == std::errc::no_such_file_or_directory || ec == std::errc::connection_refused)) {
            auto n = entries_on_disk(s->spool_dir);
            std::cerr << "postern: " << n << (n == 1 ? " message" : " messages") << " in "
                      << s->spool_dir << "/queue, delivered once the server runs\n";
        }
        return exit_failure;
    }
    const auto j = json::parse(*reply, nullptr, false);
    const bool ok = j.is_object() && j.contains("ok") && j["ok"].is_boolean() && j["ok"].get<bool>();
    if (o.json_out) {
        std::cout << *reply << "\n";
        return ok ? exit_ok : exit_failure;
    }
    if (!ok) {
        std::string error = "malformed reply from the server";
        if (j.is_object() && j.contains("error") && j["error"].is_string())
            error = j["error"].get<std::string>();
        std::cerr << "postern: queue " << c.name << ": " << error << "\n";
        return exit_failure;
    }
    const auto now = static_cast<std::int64_t>(std::time(nullptr));
    try {
        switch (c.verb) {
        case queue_verb::list:
            print_list(j, now);
            break;
        case queue_verb::show:
            print_show(j, now);
            break;
        case queue_verb::flush:
        case queue_verb::del:
        case queue_verb::hold:
        case queue_verb::release:
            print_done(c, o.id, j);
            break;
        }
    } catch (const json::exception& e) {
        std::cerr << "postern: malformed reply from the server: " << e.what() << "\n";
        return exit_failure;
    }
    std::cout.flush();
    return exit_ok;
}

// postern reload: the running server (the one whose spool the configuration
// names) reads its configuration again, as on SIGHUP, and says how it went.
int reload_main(std::span<const std::string_view> args)
{
    options o;
    if (!parse_options(args, o))
        return exit_usage;
    auto s = load(o);
    if (!s)
        return exit_usage;
    const auto path = server::control_server::socket_path(s->spool_dir);
    auto reply = server::control_request(path, json{{"cmd", "reload"}}.dump(), control_timeout);
    if (!reply) {
        report_control_error(path, reply.error());
        return exit_failure;
    }
    const auto j = json::parse(*reply, nullptr, false);
    if (!j.is_object() || !j.contains("ok") || !j["ok"].is_boolean()) {
        std::cerr << "postern: reload: malformed reply from the server\n";
        return exit_failure;
    }
    if (!j["ok"].get<bool>()) {
        std::cerr << "postern: reload refused: " << j.value("error", std::string("no reason given")) << "\n";
        return exit_failure;
    }
    std::cout << "reloaded";
    if (const auto cert = j.value("tls_certificate", std::string()); !cert.empty())
        std::cout << "; certificate " << cert;
    if (const auto applied = j.value("applied", std::string()); !applied.empty())
        std::cout << "; in force now: " << applied;
    if (const auto later = j.value("restart_needed", std::string()); !later.empty())
        std::cout << "; takes a restart: " << later;
    std::cout << "\n";
    return exit_ok;
}

// ---- postern route explain

// sysexits.h EX_USAGE: route explain's callers are scripts asking about an
// address, so a malformed address or command line is told apart from a
// configuration error (2) and a refused address (1).
constexpr int exit_route_usage = 64;

const char* route_usage_text = "usage: postern route explain ADDRESS [--config FILE]\n";

int route_main(std::span<const std::string_view> args)
{
    options o;
    std::vector<std::string_view> positional;
    for (std::size_t i = 0; i < args.size(); ++i) {
        auto a = args[i];
        if (a == "--config" && i + 1 < args.size()) {
            o.config = std::string(args[++i]);
        } else if (a.substr(0, 9) == "--config=") {
            o.config = std::string(a.substr(9));
        } else if (a.size() > 1 && a[0] == '-') {
            std::cerr << "postern: unknown option '" << a << "'\n" << route_usage_text;
            return exit_route_usage;
        } else {
            positional.push_back(a);
        }
    }
    if (positional.size() != 2 || positional[0] != "explain") {
        std::cerr << route_usage_text;
        return exit_route_usage;
    }
    auto s = load(o);
    if (!s)
        return exit_usage;
    return route_explain(*s, positional[1]);
}

// ---- postern hash-password

// Turns terminal echo off for its lifetime (when stdin is a terminal).
class echo_off {
public:
    echo_off()
    {
        if (::isatty(STDIN_FILENO) == 1 && ::tcgetattr(STDIN_FILENO, &saved_) == 0) {
            termios quiet = saved_;
            quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
            active_ = ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0;
        }
    }
    ~echo_off()
    {
        if (active_)
            ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_);
    }
    echo_off(const echo_off&) = delete;
    echo_off& operator=(const echo_off&) = delete;
    bool active() const noexcept { return active_; }

private:
    termios saved_{};
    bool active_ = false;
};

int hash_password_main(std::span<const std::string_view> args)
{
    if (!args.empty()) {
        std::cerr << "postern: hash-password takes no arguments (the password comes on standard input)\n"
                  << usage_text;
        return exit_usage;
    }
    std::string password;
    {
        echo_off quiet;
        if (quiet.active())
            std::cerr << "Password: " << std::flush;
        std::getline(std::cin, password);
        if (quiet.active())
            std::cerr << "\n";
    }
    if (!password.empty() && password.back() == '\r')
        password.pop_back();
    if (password.empty()) {
        std::cerr << "postern: hash-password: empty password (give one line on standard input)\n";
        return exit_usage;
    }
    try {
        std::cout << auth::hash_password(password) << "\n";
    } catch (const std::runtime_error& e) {
        std::cerr << "postern: hash-password: " << e.what() << "\n";
        return exit_failure;
    }
    std::cout.flush();
    return std::cout ? exit_ok : exit_failure;
}

} // namespace

// Every subcommand finds its configuration the same way (config::locate).
std::optional<config::settings> load_settings(const std::optional<std::string>& config_flag)
{
    try {
        std::error_code ec;
        const bool system_exists = std::filesystem::exists(config::system_config_path, ec);
        if (auto path = config::locate(config_flag, std::getenv("POSTERN_CONFIG"), system_exists))
            return config::load_file(*path);
        return config::embedded_default(host_name());
    } catch (const config::error& e) {
        std::cerr << "postern: configuration error: " << e.what() << "\n";
        return std::nullopt;
    }
}

int main(std::span<const std::string_view> args)
{
    if (args.empty()) {
        std::cerr << usage_text;
        return exit_usage;
    }
    auto cmd = args[0];
    auto rest = args.subspan(1);
    if (cmd == "--version" || cmd == "version") {
        std::cout << "postern " << POSTERN_VERSION << "\n";
        return exit_ok;
    }
    if (cmd == "help" || cmd == "--help" || cmd == "-h") {
        std::cout << usage_text;
        return exit_ok;
    }
    if (cmd == "queue")
        return queue_main(rest);
    if (cmd == "hash-password")
        return hash_password_main(rest);
    if (cmd == "route")
        return route_main(rest);
    if (cmd == "sendmail")
        return sendmail_main(rest);
    if (cmd == "reload")
        return reload_main(rest);
    if (cmd == "serve" || cmd == "check-config") {
        options o;
        if (!parse_options(rest, o))
            return exit_usage;
        auto s = load(o);
        if (!s)
            return exit_usage;
        if (cmd == "check-config") {
            try {
                check_certificate(*s);
            } catch (const config::error& e) {
                std::cerr << "postern: configuration error: " << e.what() << "\n";
                return exit_usage;
            }
            std::cout << config::to_json(*s) << "\n";
            return exit_ok;
        }
        return serve(*s);
    }
    std::cerr << "postern: unknown command '" << cmd << "'\n" << usage_text;
    return exit_usage;
}

} // namespace postern::daemon
