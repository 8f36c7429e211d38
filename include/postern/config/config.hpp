// config/config.hpp — JSON configuration → validated plain structs.
// Every default lives here (and in embedded_default()). Parsing happens once
// at start-up (and on reload), so errors are thrown as config::error whose
// what() names the file, the key and what was expected, e.g.
//   /etc/postern/postern.json: limits.recipients: expected a positive integer, got "ten"
// The daemon turns that into exit status 2 before any port is bound
// (DESIGN promise 6). Comments (// and /* */) are allowed in the file.
// Thread: the returned settings are immutable values; share them freely.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace postern::config {

class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class listener_mode { smtp };

struct listener {
    std::string spec;   // as written: "127.0.0.1:2525", "[::1]:25"
    std::string host;   // an IP literal: "127.0.0.1", "::1", "0.0.0.0", "::"
    std::uint16_t port = 0;
    listener_mode mode = listener_mode::smtp;
};

struct user {
    std::string address; // local@domain, domain lower-cased
};

struct limits {
    std::uint64_t message_size = 36700160; // octets (35 MiB), SIZE advertised
    std::uint32_t recipients = 100;        // per transaction
    std::uint32_t connections = 1000;      // concurrent, all clients
    std::uint32_t connections_per_ip = 50; // concurrent, one client address
    std::chrono::seconds command_timeout{300}; // RFC 5321 4.5.3.2.7: 5 minutes
    std::chrono::seconds data_timeout{600};    // RFC 5321 4.5.3.2.6 allows 10 minutes
    std::uint32_t errors = 20;             // protocol errors before 421 and close
};

enum class log_level { info, warn };

struct settings {
    std::string source;   // the file read, or "<embedded default>"
    std::string hostname; // used in the greeting, Received: and Maildir names
    std::string spool_dir;
    std::string mail_root;
    std::vector<listener> listeners;
    std::vector<std::string> local_domains;                       // lower-case, unique
    std::vector<user> users;
    std::map<std::string, std::vector<std::string>> aliases;     // key lower-cased address
    limits lim;
    log_level log = log_level::info;
};

// Parses and validates. source names the file in error messages.
settings parse(std::string_view json_text, const std::string& source);
// Reads the file, then parse(). A missing/unreadable file is a config::error.
settings load_file(const std::string& path);
// The configuration `postern serve` uses without --config: SMTP on
// 127.0.0.1:2525, local domains "localhost" and hostname (catch-all),
// spool ./var/spool, mailboxes ./var/mail.
settings embedded_default(const std::string& hostname);
// The effective configuration as JSON text (check-config prints it); parse()
// of this text gives back an equal settings.
std::string to_json(const settings& s);

} // namespace postern::config
