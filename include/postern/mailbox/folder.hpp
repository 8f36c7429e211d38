// mailbox/folder.hpp — IMAP mailbox names and their Maildir++ directories.
// Layout (Maildir++, as Courier and Dovecot use it): INBOX is the user's
// Maildir itself (mail_root/<domain>/<localpart>/); every other folder is a
// Maildir in a directory directly below it named "." + the name, with '.'
// as the hierarchy separator both on disk and in IMAP ("Archive.2024" is
// "<root>/.Archive.2024"). A parent need not exist for its child to.
// Names: API functions take and give names in UTF-8 (RFC 6855 form). On
// the wire without UTF8=ACCEPT they are modified UTF-7 (RFC 3501 5.1.3,
// RFC 9051 5.1.3) — the session converts with mutf7_encode/mutf7_decode.
// On disk they are modified UTF-7 as well, as Courier and Dovecot write
// them, so other Maildir++ tools show the same folders.
// Invariants: a valid name is non-empty, valid UTF-8 without control
// characters, '/', or the wildcards '*' and '%' (RFC 9051 6.3.9), has no
// empty component (no leading, trailing or doubled '.', so never ".."),
// at most max_depth components and an on-disk name of at most
// max_dir_name octets. "INBOX" is matched case-insensitively (RFC 9051
// 5.1), also as the first component of a child ("inbox.x" is "INBOX.x").
// "postern-lock" is refused (errc::refused): POP3's lock file
// (mailbox/lock.hpp) is "<root>/.postern-lock".
// Pure functions; any thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "postern/util/result.hpp"

namespace postern::mailbox {

// The IMAP hierarchy separator, and Maildir++'s (RFC 9051 6.3.9 LIST).
constexpr char separator = '.';
// One directory entry (NAME_MAX), the leading '.' included.
constexpr std::size_t max_dir_name = 255;
constexpr std::size_t max_depth = 16;

// RFC 6154 special-use attributes of the folders every user has.
enum class special_use { none, sent, drafts, trash, junk };

// The attribute as LIST writes it ("\\Sent"), "" for none.
std::string_view special_use_attribute(special_use u) noexcept;
// Which special-use folder a (valid, UTF-8) name is: "Sent" → sent, ...
special_use special_use_of(std::string_view name) noexcept;
// The folder name of a special-use folder ("Sent"); "" for none.
std::string_view special_use_name(special_use u) noexcept;

bool is_inbox(std::string_view name) noexcept;

// The canonical form of a valid name ("inbox" → "INBOX", "Inbox.a" →
// "INBOX.a"), or errc::syntax / errc::too_long / errc::limit.
util::result<std::string> canonical_folder_name(std::string_view utf8);

// The directory of a folder below the user's root: "" for INBOX,
// ".Sent", ".Archive.2024", ".&ZeVnLIqe-" for "日本語". Validates.
util::result<std::string> folder_dir(std::string_view utf8);
// The inverse, for a directory entry of the root: nullopt when the entry
// is not a folder name postern would have written (no leading '.', bad
// modified UTF-7, a non-canonical encoding, an invalid name, "INBOX").
std::optional<std::string> folder_name_of_dir(std::string_view entry);

// RFC 3501 5.1.3 modified UTF-7. encode: errc::syntax for invalid UTF-8.
// decode: errc::syntax for anything but printable ASCII, a bad base64 run,
// non-zero padding bits, an odd octet count, an unpaired surrogate, or a
// run that encodes printable ASCII (which must stand for itself).
util::result<std::string> mutf7_encode(std::string_view utf8);
util::result<std::string> mutf7_decode(std::string_view mutf7);

// RFC 9051 6.3.9 LIST pattern: '*' matches any run of characters, '%' any
// run without the separator. An INBOX prefix matches case-insensitively.
bool pattern_matches(std::string_view pattern, std::string_view name);

} // namespace postern::mailbox
