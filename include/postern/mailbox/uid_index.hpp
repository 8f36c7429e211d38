// mailbox/uid_index.hpp — the UID index of one IMAP folder (RFC 9051 2.3.1.1:
// UIDs strictly ascending, never reused, valid as long as UIDVALIDITY is
// unchanged), kept in "<folder>/postern-uidlist" beside tmp/ new/ cur/:
//     postern-uidlist 2
//     uidvalidity 1764165173
//     uidnext 43
//     7 1764165100.Q0190a1b2c3d4e5f6.mx1 4711 $Forwarded $Junk
//     ...                   (uid, Maildir unique name, size, keywords)
// size: the message's octets in RFC 5322 form, CRLF line ends (RFC 9051
// 2.3.4 RFC822.SIZE; line_ends.hpp), found once when the message got its
// UID, so no SELECT reads messages; "-" when not known yet. Version 1
// files (no size field) still decode, their sizes unknown; the store fills
// them in and writes version 2. (A postern older than version 2 takes a
// version 2 file for an unknown version and rebuilds with a new
// UIDVALIDITY: a downgrade costs clients a resync, never mail.)
// The file never holds flags: the system flags live in the Maildir file
// name (":2," info, as every Maildir tool reads them); keywords (RFC 9051
// 2.3.2 flag-keyword atoms) only here.
// Invariants of a decoded index: entries ascending by uid, every uid below
// uidnext and above 0, unique names distinct, valid (valid_unique) and
// keywords valid (valid_keyword), at most max_keywords of them each; lines
// at most max_index_line octets, at most max_messages entries. Anything
// else decodes as errc::corrupt (a file of a version other than 1 or 2 as
// errc::unsupported_version); read_index() then reports it so the caller
// logs it and rebuilds with a new UIDVALIDITY — never fatal.
// Writes: util::atomic_write (temp file, fsync, rename, fsync the folder),
// so a reader sees the old or the new index, never a torn one. A read-
// modify-write holds mailbox::lock::wait() on "<folder>/postern-uidlist.lock"
// (store.hpp keeps that rule; these functions do not lock).
// UIDVALIDITY values come from allocate_uidvalidity(): the current time,
// but always above every value handed out before for that user (the last
// one is kept in "<root>/postern-uidvalidity"), so a folder deleted and
// re-created, or rebuilt after corruption, never repeats one.
// Thread: blocking file-system functions; the disk pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "postern/util/result.hpp"

namespace postern::mailbox {

constexpr std::string_view index_file = "postern-uidlist";
constexpr std::string_view index_lock_file = "postern-uidlist.lock";
constexpr std::string_view uidvalidity_file = "postern-uidvalidity";
constexpr std::string_view uidvalidity_lock_file = "postern-uidvalidity.lock";

constexpr std::size_t max_index_line = 4096;
constexpr std::size_t max_messages = 1'000'000; // per folder
constexpr std::size_t max_keywords = 32;        // per message
constexpr std::size_t max_keyword = 64;         // octets
constexpr std::size_t max_unique = 255;         // a Maildir name part (NAME_MAX)

struct index_entry {
    std::uint32_t uid = 0;
    std::string unique;
    std::vector<std::string> keywords;
    std::optional<std::uint64_t> size; // RFC 5322 octets; nullopt: not known yet (version 1)
};

struct uid_index {
    std::uint32_t uidvalidity = 0;
    std::uint32_t uidnext = 1;
    std::vector<index_entry> entries; // ascending uid
};

enum class index_state {
    loaded,  // read and valid
    missing, // no index file (a new folder, or one written by another tool)
    corrupt, // unreadable contents or an unknown version: rebuild and log
};

struct index_read {
    uid_index index;                   // empty unless loaded
    index_state state = index_state::missing;
    std::uint32_t old_uidvalidity = 0; // of a corrupt file, when legible
};

// A Maildir unique name the index can hold: 1..max_unique octets, no
// white space, control characters, '/' or ':' (Maildir spec), not
// starting with '.'.
bool valid_unique(std::string_view unique) noexcept;
// RFC 9051 9 flag-keyword: an atom (no atom-specials, no '\'), at most
// max_keyword octets.
bool valid_keyword(std::string_view keyword) noexcept;

std::string encode_index(const uid_index& index);
util::result<uid_index> decode_index(std::string_view text);

// Reads "<folder>/postern-uidlist"; OS errors other than its absence are errors.
util::result<index_read> read_index(const std::string& folder);
// Writes it atomically and durably.
util::result<void> write_index(const std::string& folder, const uid_index& index);

// A new UIDVALIDITY for a folder of the user whose Maildir root is root:
// max(now, last handed out + 1, above + 1), recorded before it is returned.
// Holds "<root>/postern-uidvalidity.lock" meanwhile (taken after a folder's
// index lock, never before one).
util::result<std::uint32_t> allocate_uidvalidity(const std::string& root, std::int64_t now,
                                                 std::uint32_t above = 0);

} // namespace postern::mailbox
