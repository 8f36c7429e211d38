// mailbox/maildir.hpp — reading one Maildir for a mail access protocol
// (POP3 now, IMAP later): a snapshot of its messages, reading, marking seen,
// deleting.
// Layout (Maildir spec, cr.yp.to/proto/maildir.html): <dir>/new holds
// unread messages named "<unique>", <dir>/cur read ones named
// "<unique>:2,<flags>" (flags: sorted letters from D F P R S T). postern's
// delivery (delivery/maildir.hpp) writes new/ only, with CRLF line ends, so
// a file's size is the message's size on the wire (RFC 1939 11 "octets").
// Invariants: a message is only ever moved by rename() inside the Maildir,
// never copied; every operation takes a snapshot entry and tolerates the
// file having been moved or removed by another process since (an error
// value, errc::not_found, never a crash).
// Thread: all functions block on the file system; call them from the disk
// pool, never the io thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "postern/util/result.hpp"

namespace postern::mailbox {

struct message {
    std::string file;   // path below the Maildir: "new/<name>" or "cur/<name>:2,<flags>"
    std::string unique; // the name before ":2," (the Maildir unique name)
    std::string uid;    // the POP3 unique-id (RFC 1939 7): unique, or its hash
    std::uint64_t size = 0; // octets as stored
    std::string flags;  // sorted flag letters ("" in new/)
    std::int64_t delivered = 0; // modification time, seconds since the epoch
};

// RFC 1939 7: a unique-id is 1 to 70 characters in 0x21..0x7E. A name that
// is not gets a stable hash of itself (32 hex digits) instead.
std::string pop3_uid(const std::string& unique);

// The messages of new/ and cur/, oldest delivery first, ties by unique name,
// so numbering is stable within a session. Files whose names begin with '.'
// and entries that are not regular files are skipped.
util::result<std::vector<message>> snapshot(const std::string& dir);

// The whole message.
util::result<std::string> read(const std::string& dir, const message& m);
// RFC 1939 7 TOP: the header, the blank line, then at most body_lines lines
// of the body, exactly as stored.
util::result<std::string> read_top(const std::string& dir, const message& m, std::uint64_t body_lines);

// Adds the S flag: new/<u> → cur/<u>:2,S, or cur/<u>:2,F → cur/<u>:2,FS,
// by rename. Updates m.file and m.flags. Already seen: nothing to do.
util::result<void> mark_seen(const std::string& dir, message& m);

// Unlinks the message.
util::result<void> remove(const std::string& dir, const message& m);

} // namespace postern::mailbox
