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
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace postern::config {

class error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// smtp: MX (port 25), AUTH optional, relay only when authenticated or from
// relay_networks; submission: RFC 6409 (587/465), AUTH required for MAIL;
// pop3: mailbox access, RFC 1939 (110 with STLS, 995 with implicit TLS).
// imap: mailbox access, RFC 9051 / 3501 (143 with STARTTLS, 993 with implicit TLS).
enum class listener_mode { smtp, submission, pop3, imap };
// starttls: offered after EHLO (RFC 3207) or as POP3 STLS (RFC 2595); implicit: TLS from the first
// byte (RFC 8314, port 465); none: plain text only.
enum class listener_tls { starttls, implicit, none };

struct listener {
    std::string spec;   // as written: "127.0.0.1:2525", "[::1]:25"
    std::string host;   // an IP literal: "127.0.0.1", "::1", "0.0.0.0", "::"
    std::uint16_t port = 0;
    listener_mode mode = listener_mode::smtp;
    listener_tls tls = listener_tls::starttls;
};

struct user {
    std::string address;                // local@domain, domain lower-cased
    std::string password;               // an auth::hash_password() hash; empty = cannot log in
    std::vector<std::string> addresses; // more senders this user may use (domain lower-cased)
};

// The server's certificate; both empty: a self-signed one is made in
// spool_dir/tls/ at start.
struct tls_settings {
    std::string certificate; // PEM chain, leaf first
    std::string private_key; // PEM
};

// SMTP AUTH (RFC 4954) and what authenticated users may do.
struct auth_settings {
    bool plaintext_loopback = false;  // offer AUTH without TLS to loopback clients (tests)
    bool any_sender = false;          // authenticated users may use any MAIL FROM
    std::uint32_t max_failures = 3;   // per connection, then 421 4.7.0 and close
    std::chrono::milliseconds failure_delay{1000}; // before the nth 535: n times this
    std::uint32_t ip_max_failures = 10;            // per client address within ip_window
    std::chrono::seconds ip_window{900};
};

// `postern sendmail` (local submission through <spool_dir>/pickup/):
// "sendmail": {"trusted_users": ["root"]}. The login names that may set the
// envelope sender with -f / -r to another address than login@hostname
// (sendmail's "trusted users"); everyone else is refused (EX_NOPERM).
struct sendmail_settings {
    std::vector<std::string> trusted_users{"root"};
};

struct limits {
    std::uint64_t message_size = 36700160; // octets (35 MiB), SIZE advertised
    std::uint32_t recipients = 100;        // per transaction
    std::uint32_t connections = 1000;      // concurrent, all clients
    std::uint32_t connections_per_ip = 50; // concurrent, one client address
    std::chrono::seconds command_timeout{300}; // RFC 5321 4.5.3.2.7: 5 minutes
    std::chrono::seconds data_timeout{600};    // RFC 5321 4.5.3.2.6 allows 10 minutes
    std::uint32_t errors = 20;             // protocol errors before 421 and close
    // Below this many free octets on the spool's or the Maildirs' file
    // system, MAIL and DATA get 452 4.3.1 (0 = never refuse for space).
    std::uint64_t min_free_space = 104857600; // 100 MiB
    // SIGTERM: open transactions may finish for this long; then the rest
    // get 421 4.3.2 and the server exits (0 = at once).
    std::chrono::seconds shutdown_timeout{30};
};

enum class log_level { info, warn };

// Outbound delivery (issue 4).
struct dns_settings {
    std::vector<std::string> servers; // "ip" or "ip:port" / "[v6]:port"; empty = /etc/resolv.conf
};

struct queue_settings {
    std::chrono::seconds retry_initial{300};   // first retry after a deferral
    std::chrono::seconds retry_max{3600};      // backoff doubles up to this
    std::chrono::seconds give_up{432000};      // then bounce (5 days)
    std::chrono::seconds delay_warning{14400}; // one "delayed" DSN after this; 0 = never
};

enum class tls_policy { none, may, encrypt, verify };

struct remote_settings {
    std::uint16_t port = 25;                    // port of every remote MX (tests use others)
    std::uint32_t concurrency = 100;            // connections, all destinations
    std::uint32_t concurrency_per_domain = 20;  // connections to one destination domain
    std::uint32_t messages_per_connection = 100; // reuse bound
    std::chrono::seconds connect_timeout{30};
    // The longest wait for any one reply; below it each reply keeps its
    // RFC 5321 4.5.3.2 timeout (5 minutes, 10 after the message's final dot).
    std::chrono::seconds command_timeout{600};
    tls_policy tls = tls_policy::may;           // default for every destination
    std::map<std::string, tls_policy> tls_policies; // per destination domain (lower-case)
};

enum class smarthost_tls { starttls, implicit };

struct relay_settings {
    std::string smarthost;     // "host:port"; empty = deliver by MX
    std::string host;          // parsed from smarthost
    std::uint16_t port = 0;
    smarthost_tls tls = smarthost_tls::starttls;
    std::string username;      // empty = no AUTH
    std::string password_file; // file whose first line is the password
};

// Local delivery over LMTP (RFC 2033) instead of Maildir: top-level
// "delivery": {"lmtp": "unix:/run/dovecot/lmtp" | "host:port", "domains": [...]}.
struct delivery_settings {
    std::string lmtp;          // as written; empty: every local domain delivers to Maildir
    std::string lmtp_socket;   // parsed from "unix:PATH": the socket path ("" for TCP)
    std::string lmtp_host;     // parsed from "HOST:PORT" (a domain name or an IP literal)
    std::uint16_t lmtp_port = 0;
    // The local domains delivered over LMTP, lower-case; "domains" absent
    // (or null) in the file: every local domain. Empty when lmtp is.
    std::vector<std::string> domains;
};

struct settings {
    std::string source;   // the file read, or "<embedded default>"
    std::string hostname; // used in the greeting, Received: and Maildir names
    std::string spool_dir;
    std::string mail_root;
    std::vector<listener> listeners;
    std::vector<std::string> local_domains;                       // lower-case, unique
    std::vector<user> users;
    std::map<std::string, std::vector<std::string>> aliases;     // key lower-cased address
    // Plus-addressing (Postfix's recipient_delimiter): alice+tag@ reaches
    // alice@ when alice+tag@ is neither a user nor an alias. Each character
    // is a delimiter; "" turns extensions off. ASCII, no @ % ! or spaces.
    std::string recipient_delimiter = "+";
    limits lim;
    log_level log = log_level::info;
    // Started as root, postern binds its ports and then runs as this user
    // (and group: default the user's own) for good; spool_dir and mail_root
    // are handed to it. Empty: stay whoever started it. Names only: whether
    // they exist is checked by `serve` at start (the config stays pure).
    std::string run_as_user;
    std::string run_as_group;
    // Clients in these networks may relay without AUTH ("192.0.2.0/24",
    // "::1/128"; a bare address is a /32 or /128). Default: none in a file;
    // the embedded default allows loopback, as Postfix's mynetworks_style = host.
    std::vector<std::string> relay_networks;
    dns_settings dns;
    queue_settings queue;
    remote_settings remote;
    relay_settings relay;
    delivery_settings delivery;
    tls_settings tls;
    auth_settings auth;
    // Prometheus /metrics over HTTP on this IP:port; empty spec: none.
    listener metrics;
    sendmail_settings sendmail;
};

// Where every subcommand's configuration comes from, in this order: the
// --config FILE given (flag), else $POSTERN_CONFIG when set and not empty
// (env_value, from getenv), else system_config_path when that file exists
// (system_exists), else nullopt: the embedded default. Pure: the caller
// reads the environment and the file system.
inline constexpr std::string_view system_config_path = "/etc/postern/postern.json";
std::optional<std::string> locate(const std::optional<std::string>& flag, const char* env_value,
                                  bool system_exists);

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
