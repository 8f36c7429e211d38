#include "postern/daemon/sendmail.hpp"

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <iostream>
#include <set>
#include <system_error>
#include <sys/types.h>
#include <unistd.h>

#include "postern/config/config.hpp"
#include "postern/daemon/cli.hpp"
#include "postern/mail/address.hpp"
#include "postern/mail/header.hpp"
#include "postern/mail/submission.hpp"
#include "postern/queue/pickup_file.hpp"
#include "postern/server/pickup_service.hpp"
#include "postern/util/atomic_write.hpp"
#include "postern/util/clock.hpp"
#include "postern/util/id.hpp"
#include "postern/util/strings.hpp"

namespace postern::daemon {

namespace {

const char* usage_text =
    "usage: sendmail [-t] [-i|-oi] [-f sender] [-F full_name] [--config FILE] [--] [recipient ...]\n"
    "       (also: postern sendmail ...; the message comes on standard input)\n";

// What a flag letter does; the table is the whole of the accepted syntax
// after the multi-letter forms (-oX, -bX, --config).
enum class flag_kind { extract, ignore_dot, sender, full_name, ignored, ignored_with_value };

struct flag_spec {
    char letter;
    flag_kind kind;
};

constexpr std::array<flag_spec, 15> flag_table{{
    {'t', flag_kind::extract},
    {'i', flag_kind::ignore_dot},
    {'f', flag_kind::sender},
    {'r', flag_kind::sender}, // the obsolete spelling of -f
    {'F', flag_kind::full_name},
    {'v', flag_kind::ignored}, // verbose: errors go to stderr anyway
    {'n', flag_kind::ignored}, // no aliasing: aliases are the server's
    {'U', flag_kind::ignored}, // initial user submission: always
    {'G', flag_kind::ignored}, // gateway submission
    {'m', flag_kind::ignored}, // "me too": the sender is never dropped
    {'B', flag_kind::ignored_with_value}, // body type: detected from the octets
    {'N', flag_kind::ignored_with_value}, // DSN notify
    {'R', flag_kind::ignored_with_value}, // DSN return
    {'V', flag_kind::ignored_with_value}, // DSN envelope id
    {'L', flag_kind::ignored_with_value}, // syslog label
}};

// -oX options accepted and ignored (Postfix's sendmail(1) does the same):
// error reporting modes, delivery modes, and old sendmail knobs.
constexpr std::array<std::string_view, 13> ignored_o_options{
    {"-oem", "-oee", "-oep", "-oeq", "-oew", "-odb", "-odi", "-odq", "-om", "-oo", "-o7", "-o8", "-oA"}};

const flag_spec* find_flag(char c)
{
    for (const auto& f : flag_table)
        if (f.letter == c)
            return &f;
    return nullptr;
}

// Handles one cluster of letters ("-ti", "-fsender", "-f" then the value
// in the next argument). Returns the error text, empty when fine.
std::string parse_cluster(std::span<const std::string_view> args, std::size_t& i, sendmail_options& o)
{
    const auto a = args[i];
    for (std::size_t k = 1; k < a.size(); ++k) {
        const auto* f = find_flag(a[k]);
        if (f == nullptr)
            return "unknown option '-" + std::string(1, a[k]) + "'";
        switch (f->kind) {
        case flag_kind::extract:
            o.extract = true;
            continue;
        case flag_kind::ignore_dot:
            o.dot_ends = false;
            continue;
        case flag_kind::ignored:
            continue;
        case flag_kind::sender:
        case flag_kind::full_name:
        case flag_kind::ignored_with_value:
            break;
        }
        // A flag with a value: the rest of this argument, or the next one.
        std::string value;
        if (k + 1 < a.size())
            value = std::string(a.substr(k + 1));
        else if (i + 1 < args.size())
            value = std::string(args[++i]);
        else
            return "option '-" + std::string(1, a[k]) + "' needs a value";
        if (f->kind == flag_kind::sender)
            o.sender = std::move(value);
        else if (f->kind == flag_kind::full_name)
            o.full_name = std::move(value);
        return {};
    }
    return {};
}

} // namespace

sendmail_parse parse_sendmail_args(std::span<const std::string_view> args)
{
    sendmail_parse out;
    auto& o = out.options;
    bool options_done = false;
    for (std::size_t i = 0; i < args.size(); ++i) {
        const auto a = args[i];
        if (options_done || a.size() < 2 || a[0] != '-') {
            o.recipients.emplace_back(a);
            continue;
        }
        if (a == "--") {
            options_done = true;
        } else if (a == "--config") {
            if (i + 1 >= args.size()) {
                out.error = "--config needs a file name";
                return out;
            }
            o.config = std::string(args[++i]);
        } else if (a.starts_with("--config=")) {
            o.config = std::string(a.substr(9));
        } else if (a.starts_with("--")) {
            out.error = "unknown option '" + std::string(a) + "'";
            return out;
        } else if (a.starts_with("-o")) {
            bool ignored = false;
            for (auto ig : ignored_o_options)
                ignored = ignored || a == ig;
            if (a == "-oi")
                o.dot_ends = false;
            else if (!ignored) {
                out.error = "unknown option '" + std::string(a) + "'";
                return out;
            }
        } else if (a.starts_with("-b")) {
            if (a != "-bm") {
                out.error = "mode '" + std::string(a) +
                            "' is not supported (only -bm, reading a message on standard input; "
                            "see `postern queue list` for the queue)";
                return out;
            }
        } else if (auto e = parse_cluster(args, i, o); !e.empty()) {
            out.error = std::move(e);
            return out;
        }
    }
    return out;
}

namespace {

int fail(int status, const std::string& what)
{
    std::cerr << "sendmail: " << what << "\n";
    return status;
}

// -f's value: "<>" or "" is the null sender; angle brackets are allowed; a
// bare name is qualified with the host name. nullopt when malformed.
std::optional<std::string> parse_sender(std::string_view v, const std::string& hostname)
{
    v = util::trim(v);
    if (v.size() >= 2 && v.front() == '<' && v.back() == '>')
        v = v.substr(1, v.size() - 2);
    if (v.empty())
        return std::string();
    auto list = mail::parse_address_list(v, hostname);
    if (!list.bad.empty() || list.addresses.size() != 1)
        return std::nullopt;
    return list.addresses[0].str();
}

// Adds the addresses of one list (a command-line argument or a header
// field body); false (with bad set) when an item is no address.
bool add_recipients(std::string_view text, const std::string& hostname, std::vector<std::string>& out,
                    std::set<std::string>& seen, std::string& bad)
{
    auto list = mail::parse_address_list(text, hostname);
    if (!list.bad.empty()) {
        bad = list.bad;
        return false;
    }
    for (const auto& a : list.addresses) {
        auto s = a.str();
        if (seen.insert(util::to_lower(s)).second)
            out.push_back(std::move(s));
    }
    return true;
}

// The status for a failed write into the pickup directory.
int write_failure(const std::string& dir, std::error_code ec)
{
    int status = sysexits::ioerr;
    if (ec == std::errc::no_such_file_or_directory)
        status = sysexits::tempfail;
    else if (ec == std::errc::permission_denied || ec == std::errc::operation_not_permitted)
        status = sysexits::cantcreat;
    else if (ec == std::errc::no_space_on_device || ec.value() == EDQUOT || ec == std::errc::read_only_file_system)
        status = sysexits::tempfail;
    return fail(status, "cannot write into the pickup directory " + dir + ": " + ec.message() +
                            (ec == std::errc::no_such_file_or_directory
                                 ? " (`postern serve` makes it at its first start; so does sendmail run as root)"
                                 : ""));
}

int submit(std::span<const std::string_view> args)
{
    auto parsed = parse_sendmail_args(args);
    if (!parsed.error.empty()) {
        std::cerr << "sendmail: " << parsed.error << "\n" << usage_text;
        return sysexits::usage;
    }
    const auto& o = parsed.options;
    if (o.recipients.empty() && !o.extract) {
        std::cerr << "sendmail: no recipients given (name them, or use -t to read them from the message)\n"
                  << usage_text;
        return sysexits::usage;
    }
    auto loaded = load_settings(o.config);
    if (!loaded)
        return sysexits::config; // the message is printed
    const auto& s = *loaded;

    const uid_t uid = ::getuid();
    const auto login = server::pickup_service::login_name(uid);
    if (login.empty())
        return fail(sysexits::nouser, "uid " + std::to_string(uid) + " has no login name in the password database");
    const auto own = server::pickup_service::own_address(s, login);

    queue::pickup_header h;
    h.uid = static_cast<std::uint32_t>(uid);
    h.login = login;
    h.full_name = o.full_name;
    h.sender = own;
    if (o.sender) {
        auto sender = parse_sender(*o.sender, s.hostname);
        if (!sender)
            return fail(sysexits::dataerr, "-f: not an address: '" + *o.sender + "'");
        if (!server::pickup_service::may_use_sender(s, login, *sender))
            return fail(sysexits::noperm, "user " + login + " may not set the sender to <" + *sender +
                                              "> (only sendmail.trusted_users may use -f for another sender)");
        h.sender = *sender;
    }

    std::set<std::string> seen;
    std::string bad;
    for (const auto& r : o.recipients)
        if (!add_recipients(r, s.hostname, h.recipients, seen, bad))
            return fail(sysexits::dataerr, "not an address: '" + bad + "'");

    // The message, bounded by limits.message_size.
    mail::local_input in(o.dot_ends, s.lim.message_size);
    std::array<char, 65536> buf{};
    for (;;) {
        const auto n = ::read(STDIN_FILENO, buf.data(), buf.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(sysexits::ioerr, std::string("reading the message: ") + std::strerror(errno));
        if (n == 0) {
            in.finish();
            break;
        }
        if (!in.feed(std::string_view(buf.data(), static_cast<std::size_t>(n))))
            break;
    }
    switch (in.problem()) {
    case mail::input_problem::none:
        break;
    case mail::input_problem::too_big:
        return fail(sysexits::dataerr,
                    "message too large (limits.message_size is " + std::to_string(s.lim.message_size) + " octets)");
    case mail::input_problem::line_too_long:
        return fail(sysexits::dataerr, "a line of the message is longer than " +
                                           std::to_string(mail::max_line_length) +
                                           " characters (RFC 5322 2.1.1)");
    }
    auto message = mail::separate_body(std::move(in.message()));

    // -t (RFC 5322 3.6.3): To, Cc and Bcc name the recipients.
    if (o.extract)
        for (const auto* field : {"To", "Cc", "Bcc"})
            for (const auto& value : mail::header_field_values(message, field))
                if (!add_recipients(value, s.hostname, h.recipients, seen, bad))
                    return fail(sysexits::dataerr, std::string(field) + ": not an address: '" + bad + "'");
    // Bcc: recipients must not see each other (RFC 5322 3.6.3, the first
    // way): the field goes, with or without -t, as sendmail does.
    message = mail::remove_header_field(message, "Bcc");
    if (h.recipients.empty())
        return fail(sysexits::dataerr, "no recipients: none in To:, Cc: or Bcc: and none on the command line");

    const auto now = std::chrono::system_clock::now();
    h.time = util::unix_seconds(now);
    const auto dir = server::pickup_service::directory(s.spool_dir);
    if (auto r = server::pickup_service::make_directory(s.spool_dir, ::geteuid() == 0); !r)
        return write_failure(dir, r.error());
    const auto name = server::pickup_service::file_name(now);
    if (auto r = util::atomic_write(dir, name, queue::encode_pickup(h, message),
                                        server::pickup_service::file_mode); !r)
        return write_failure(dir, r.error());
    return sysexits::ok;
}

} // namespace

int sendmail_main(std::span<const std::string_view> args)
{
    try {
        return submit(args);
    } catch (const std::exception& e) {
        return fail(sysexits::software, std::string("internal error: ") + e.what());
    }
}

} // namespace postern::daemon
