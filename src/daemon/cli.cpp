#include "postern/daemon/cli.hpp"

#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <unistd.h>

#include "postern/config/config.hpp"
#include "postern/daemon/serve.hpp"

namespace postern::daemon {

namespace {

constexpr int exit_ok = 0;
constexpr int exit_usage = 2;

const char* usage_text =
    "usage: postern <command> [options]\n"
    "\n"
    "commands:\n"
    "  serve [--config FILE]          run the mail server in the foreground\n"
    "                                 (without --config: the embedded default,\n"
    "                                 SMTP on 127.0.0.1:2525, ./var/spool, ./var/mail)\n"
    "  check-config [--config FILE]   validate a configuration and print the\n"
    "                                 effective settings as JSON\n"
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

// Parses "--config FILE" / "--config=FILE"; anything else is a usage error.
bool parse_options(std::span<const std::string_view> args, options& out)
{
    for (std::size_t i = 0; i < args.size(); ++i) {
        auto a = args[i];
        if (a == "--config" && i + 1 < args.size()) {
            out.config = std::string(args[++i]);
        } else if (a.substr(0, 9) == "--config=") {
            out.config = std::string(a.substr(9));
        } else {
            std::cerr << "postern: unknown option '" << a << "'\n" << usage_text;
            return false;
        }
    }
    return true;
}

std::optional<config::settings> load(const options& o)
{
    try {
        if (o.config)
            return config::load_file(*o.config);
        return config::embedded_default(host_name());
    } catch (const config::error& e) {
        std::cerr << "postern: configuration error: " << e.what() << "\n";
        return std::nullopt;
    }
}

} // namespace

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
    if (cmd == "serve" || cmd == "check-config") {
        options o;
        if (!parse_options(rest, o))
            return exit_usage;
        auto s = load(o);
        if (!s)
            return exit_usage;
        if (cmd == "check-config") {
            std::cout << config::to_json(*s) << "\n";
            return exit_ok;
        }
        return serve(*s);
    }
    std::cerr << "postern: unknown command '" << cmd << "'\n" << usage_text;
    return exit_usage;
}

} // namespace postern::daemon
