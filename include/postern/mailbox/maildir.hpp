// mailbox/maildir.hpp — reading one Maildir for a mail access protocol
// (POP3 now, IMAP later): a snapshot of its messages, reading, marking seen,
// deleting.
// Layout (Maildir spec, cr.yp.to/proto/maildir.html): <dir>/new holds
// unread messages named "<unique>", <dir>/cur read ones named
// "<unique>:2,<flags>" (flags: sorted letters from D F P R S T).
// Line ends: postern's delivery (delivery/maildir.hpp) writes new/ only,
// with CRLF line ends; other writers (procmail, maildrop, Dovecot's LDA)
// use bare LF. Messages are read and sized in RFC 5322 form, CRLF
// (line_ends.hpp; RFC 1939 11): read() converts, and a message's size is
// what read() returns — from its name when the name vouches for it
// (size_from_name), else counted by reading the file once (snapshot()).
// Invariants: a message is only ever moved by rename() inside the Maildir,
// never copied; every operation takes a snapshot entry and tolerates the
// file having been moved or removed by another process since (an error
// value, errc::not_found, never a crash).
// Thread: all functions block on the file system; call them from the disk
// pool, never the io thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "postern/util/result.hpp"

namespace postern::mailbox {

struct message {
    std::string file;   // path below the Maildir: "new/<name>" or "cur/<name>:2,<flags>"
    std::string unique; // the name before ":2," (the Maildir unique name)
    std::string uid;    // the POP3 unique-id (RFC 1939 7): unique, or its hash
    std::uint64_t size = 0;      // octets in RFC 5322 form (CRLF): what read() returns
    std::uint64_t file_size = 0; // octets as stored
    std::string flags;  // sorted flag letters ("" in new/)
    std::int64_t delivered = 0; // modification time, seconds since the epoch
};

// RFC 1939 7: a unique-id is 1 to 70 characters in 0x21..0x7E. A name that
// is not gets a stable hash of itself (32 hex digits) instead.
std::string pop3_uid(const std::string& unique);

// The RFC 5322 size a unique name vouches for, without opening the file:
// Dovecot's ",W=<vsize>" ("<unique>,S=<size>,W=<vsize>", taken as it is),
// or file_size for a name of postern's delivery ("<digits>.Q<16 hex>.<host>",
// delivery::maildir_name): SMTP refuses bare CR and LF (RFC 5321 2.3.8)
// and local submission converts them, so those files are CRLF throughout.
// nullopt: only reading the file tells.
std::optional<std::uint64_t> size_from_name(std::string_view unique, std::uint64_t file_size) noexcept;
// m's RFC 5322 size: size_from_name(), else its file read once (in fixed
// chunks) counting bare LFs. errc::not_found when the file is gone.
util::result<std::uint64_t> rfc5322_size(const std::string& dir, const message& m);

// The messages of new/ and cur/, oldest delivery first, ties by unique name,
// so numbering is stable within a session. Files whose names begin with '.'
// and entries that are not regular files are skipped. No file is opened:
// size is file_size (the IMAP store keeps real sizes in its index).
util::result<std::vector<message>> listing(const std::string& dir);
// listing() with every size made the RFC 5322 size (rfc5322_size(): files
// whose names do not vouch for it are read once — POP3's login). A file
// gone meanwhile is left out; one that cannot be read keeps file_size
// (reading it for RETR fails the same way).
util::result<std::vector<message>> snapshot(const std::string& dir);

// The whole message, bare LFs made CRLF (to_crlf()).
util::result<std::string> read(const std::string& dir, const message& m);
// RFC 1939 7 TOP: the header, the blank line, then at most body_lines lines
// of the body, of read()'s CRLF text.
util::result<std::string> read_top(const std::string& dir, const message& m, std::uint64_t body_lines);

// Adds the S flag: new/<u> → cur/<u>:2,S, or cur/<u>:2,F → cur/<u>:2,FS,
// by rename. Updates m.file and m.flags. Already seen: nothing to do.
util::result<void> mark_seen(const std::string& dir, message& m);

// Unlinks the message.
util::result<void> remove(const std::string& dir, const message& m);

} // namespace postern::mailbox
