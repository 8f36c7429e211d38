// daemon/sendmail.hpp — `postern sendmail` (and postern run under the name
// `sendmail`, e.g. through a /usr/sbin/sendmail symlink): the traditional
// local submission interface, as Postfix's sendmail(1) and postdrop(1).
//
//   sendmail [-t] [-i|-oi] [-f sender] [-F name] [--config FILE] [--] [recipient ...]
//
// Reads the message on standard input (bare LF line ends become CRLF,
// mail/submission.hpp), takes the recipients from the command line and,
// with -t, from To:/Cc:/Bcc: (Bcc: is removed from the message, RFC 5322
// 3.6.3), and writes one pickup file (queue/pickup_file.hpp) durably into
// <spool_dir>/pickup/ with util::atomic_write — whether the server runs or
// not. The server's pickup service queues it (server/pickup_service.hpp),
// adding the Received:, From:, Date: and Message-ID: fields then.
//
// Security: this runs as whichever local user invokes it, with no
// privilege of its own (no setuid/setgid). The pickup directory is mode
// 3733: anyone may create files, nobody else may list or remove them, and
// they take the server's group (files 0640: the server reads them). The
// file says who wrote it, but the server believes only the file's owner
// (fstat) and rechecks -f against sendmail.trusted_users; the checks here
// only give the user a clear answer early.
//
// Exit status (sysexits.h, as sendmail(8)): 0 the message is in the pickup
// directory; 64 EX_USAGE bad command line; 65 EX_DATAERR malformed message
// or address, no recipients, message too large; 67 EX_NOUSER the invoking
// uid has no login name; 70 EX_SOFTWARE internal error; 73 EX_CANTCREAT
// pickup directory not writable; 74 EX_IOERR other I/O failure; 75
// EX_TEMPFAIL pickup directory missing, disk or quota full; 77 EX_NOPERM
// -f by a user who is not trusted; 78 EX_CONFIG configuration error.
// Thread: the calling thread only.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace postern::daemon {

namespace sysexits {
constexpr int ok = 0;
constexpr int usage = 64;
constexpr int dataerr = 65;
constexpr int nouser = 67;
constexpr int software = 70;
constexpr int cantcreat = 73;
constexpr int ioerr = 74;
constexpr int tempfail = 75;
constexpr int noperm = 77;
constexpr int config = 78;
} // namespace sysexits

struct sendmail_options {
    std::optional<std::string> config;    // --config FILE
    bool extract = false;                 // -t
    bool dot_ends = true;                 // false with -i / -oi
    std::optional<std::string> sender;    // -f / -r, as given
    std::string full_name;                // -F
    std::vector<std::string> recipients;  // as given (each may be a list)
};

struct sendmail_parse {
    sendmail_options options;
    std::string error; // non-empty: a usage error (EX_USAGE), this is why
};

// Parses sendmail's command line (without the program name). Accepted and
// ignored, as Postfix's sendmail(1) does: -bm (the default mode), -oem
// -oee -oep -oeq -oew (error reporting: errors are always the exit status
// and stderr), -odb -odi -odq (delivery mode: the message is always
// queued), -om -oo -o7 -o8, -v, -n, -U, -G, -m, and -B, -N, -R, -V, -L
// with their argument. Boolean flags may be grouped (-ti). Other modes
// (-bs, -bp, -bi, -bd, -bv, ...) and any other flag are usage errors.
sendmail_parse parse_sendmail_args(std::span<const std::string_view> args);

// The whole command; returns the exit status.
int sendmail_main(std::span<const std::string_view> args);

} // namespace postern::daemon
