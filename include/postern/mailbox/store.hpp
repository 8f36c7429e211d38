// mailbox/store.hpp — one user's IMAP mail store (RFC 9051; RFC 3501 for
// IMAP4rev1 clients) over Maildir++ (folder.hpp): folders, subscriptions,
// and open folders (folder_view) with UIDs (uid_index.hpp) and flags.
//
// Flags (Maildir spec, cr.yp.to/proto/maildir.html): the system flags are
// the ":2," info letters of the file name, in ASCII order — D \Draft,
// F \Flagged, R \Answered, S \Seen, T \Deleted; P (passed) and any other
// letter (Dovecot's keyword letters a–z) are kept as they are. A message in
// new/ has no flags; it moves to cur/ when its flags first change.
// Keywords are kept in the index. \Recent is not stored: a view marks as
// recent what was in new/ when it first saw the message.
// Line ends: messages are served in RFC 5322 form, CRLF (RFC 9051 2.3.4),
// whatever the writer used (procmail and maildrop write bare LF); sizes
// count those octets. A message's size is found once, when it gets its
// UID (its name, or reading it: maildir.hpp size_from_name/rfc5322_size),
// and kept in the index, so SELECT and STATUS open no message file.
// Special-use folders (RFC 6154) Sent, Drafts, Trash, Junk exist for every
// user: always listed, created on disk when first opened, appended or
// copied to, or asked for STATUS. INBOX is the Maildir root, created when
// missing.
//
// Concurrency: postern is one process in which IMAP sessions, POP3
// sessions and local delivery (which only adds to new/, without locks)
// share Maildirs from different threads; other processes may too. Every
// read-modify-write of a folder's index holds lock::wait() on
// "<folder>/postern-uidlist.lock" for just that step: it rescans the
// folder (new/ before cur/, so a concurrent new/ → cur/ rename is always
// seen), gives UIDs to unique names not yet indexed in (mtime, name) order,
// drops entries whose files are gone (after a second scan confirms it),
// applies its change and writes the index if it changed. UIDs are never
// reused (uidnext only grows). An operation holds at most one folder lock,
// except renaming INBOX (INBOX's, then the new folder's); the UIDVALIDITY
// lock (uid_index.hpp) comes after a folder lock. A file renamed or removed
// behind a view's back (POP3, another session, another tool) is found
// again by its unique name, or counted as gone — never an error.
// Bounds: max_folders folders per user, folder.hpp's name bounds,
// uid_index.hpp's line and keyword bounds; malformed file names are
// skipped, never fatal.
// Ownership: a store is a small value (root path, options, clock pointer);
// a folder_view belongs to one session. Thread: every function blocks on
// the file system; call them from the disk pool. Distinct stores and views
// may be used from different threads at once; one view from one at a time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "postern/mailbox/folder.hpp"
#include "postern/util/clock.hpp"
#include "postern/util/result.hpp"

namespace postern::mailbox {

// The IMAP system flags and their Maildir info letters (RFC 9051 2.3.2).
struct flag_spec {
    char letter;
    std::string_view name;
};
constexpr std::array<flag_spec, 5> system_flags{{
    {'D', "\\Draft"},
    {'F', "\\Flagged"},
    {'R', "\\Answered"},
    {'S', "\\Seen"},
    {'T', "\\Deleted"},
}};

// Flags as IMAP commands give them.
struct flag_set {
    std::string letters;               // system flag letters, sorted, distinct
    std::vector<std::string> keywords; // flag-keyword atoms, distinct (case-insensitively)
};

// "\\Seen", "$Forwarded", ... (system flags case-insensitively) → a
// flag_set. errc::syntax for \Recent, an unknown "\\" flag or an invalid
// keyword; errc::limit for more than max_keywords keywords.
util::result<flag_set> parse_flags(std::span<const std::string_view> names);
// The IMAP flag names of a message: system flags in system_flags order, then keywords.
std::vector<std::string> flag_names(std::string_view letters, const std::vector<std::string>& keywords);

struct message_info {
    std::uint32_t uid = 0;
    std::string unique;      // Maildir unique name
    std::string file;        // below the folder: "new/<unique>" or "cur/<unique>:2,<letters>"
    std::uint64_t size = 0;  // RFC822.SIZE: octets in RFC 5322 form, CRLF (RFC 9051 2.3.4), from the index
    std::string flags;       // the info letters, sorted ("" in new/)
    std::vector<std::string> keywords;
    std::int64_t internal_date = 0; // the file's mtime, seconds since the epoch (RFC 9051 2.3.3)
    bool recent = false;

    bool has(char letter) const noexcept;
};

// One open folder as one session has seen it: messages ascending by UID,
// sequence number = index + 1 (RFC 9051 2.3.1.2). Changed only by the
// store's functions, so what the session told its client stays true.
class folder_view {
public:
    const std::string& name() const noexcept { return name_; }
    const std::string& path() const noexcept { return path_; }
    std::uint32_t uidvalidity() const noexcept { return uidvalidity_; }
    std::uint32_t uidnext() const noexcept { return uidnext_; }
    const std::vector<message_info>& messages() const noexcept { return messages_; }
    // The last open()/sync() found a corrupt index and rebuilt it (log it).
    bool index_rebuilt() const noexcept { return index_rebuilt_; }

    const message_info* find(std::uint32_t uid) const noexcept;
    // 1-based sequence number of uid; 0 when not in the view.
    std::size_t seq_of(std::uint32_t uid) const noexcept;

private:
    friend class store;
    std::string name_;
    std::string path_;
    std::uint32_t uidvalidity_ = 0;
    std::uint32_t uidnext_ = 1;
    std::vector<message_info> messages_;
    bool index_rebuilt_ = false;
};

// One EXPUNGE response: the list is in sending order (descending sequence
// numbers), so each number is valid when sent (RFC 9051 7.5.1).
struct expunged_message {
    std::uint32_t uid = 0;
    std::size_t seq = 0;
};

// What changed since a view's last look (RFC 9051 7: EXPUNGE, FETCH FLAGS,
// EXISTS, in that order).
struct sync_changes {
    std::vector<expunged_message> expunged;
    std::vector<std::uint32_t> flags_changed; // uids still in the view, flags or keywords differ
    std::size_t added = 0;                    // new messages at the end of the view
    // The folder's UIDVALIDITY changed (index rebuilt, folder re-created):
    // the view now holds the new contents; the session must end (RFC 9051
    // 2.3.1.1 offers no way to tell a selected client).
    bool uidvalidity_changed = false;
};

struct folder_status {
    std::uint32_t messages = 0;
    std::uint32_t recent = 0; // in new/
    std::uint32_t unseen = 0; // without \Seen
    std::uint32_t uidnext = 1;
    std::uint32_t uidvalidity = 0;
    std::uint64_t size = 0; // RFC 8438 STATUS=SIZE
};

struct folder_entry {
    std::string name; // UTF-8
    special_use use = special_use::none;
    bool nonexistent = false;  // \NonExistent (RFC 9051 7.3.1; implies \Noselect): a parent only
    bool has_children = false; // \HasChildren, else \HasNoChildren
    bool subscribed = false;   // \Subscribed
};

struct append_result {
    std::uint32_t uidvalidity = 0; // RFC 4315 APPENDUID
    std::uint32_t uid = 0;
};

struct copy_result {
    std::uint32_t uidvalidity = 0; // of the target (RFC 4315 COPYUID)
    std::vector<std::pair<std::uint32_t, std::uint32_t>> uids; // (source, target), ascending source uid
    std::vector<expunged_message> expunged; // MOVE: the source view's EXPUNGEs (RFC 6851)
};

enum class flag_change { replace, add, remove }; // STORE FLAGS / +FLAGS / -FLAGS

struct store_options {
    std::string host = "localhost"; // in unique names (Maildir spec)
    std::size_t max_folders = 1000;
};

class store {
public:
    // root: the user's Maildir, mail_root/<domain>/<localpart>.
    store(std::string root, const util::clock& clock, store_options options = {});

    const std::string& root() const noexcept { return root_; }

    // RFC 9051 6.3.9 LIST: INBOX, the special-use folders and every folder
    // on disk whose name matches pattern, INBOX first, then by name. A
    // matching parent of existing folders that is not one itself comes as
    // nonexistent, but only when none of its descendants matches (so "%"
    // shows the hierarchy). subscribed_only: the subscribed names instead
    // (RFC 9051 6.3.9 SUBSCRIBED, LSUB), existing or not.
    util::result<std::vector<folder_entry>> list(std::string_view pattern, bool subscribed_only = false) const;

    // RFC 9051 6.3.4 CREATE (superior names created too; errc::exists,
    // errc::limit beyond max_folders), 6.3.5 DELETE (errc::refused for
    // INBOX; inferiors stay, as Maildir++ folders are independent),
    // 6.3.6 RENAME (inferiors follow; INBOX: its messages move, it stays).
    util::result<void> create(std::string_view name);
    util::result<void> remove(std::string_view name);
    util::result<void> rename(std::string_view from, std::string_view to);

    // RFC 9051 6.3.7/6.3.8, kept in "<root>/subscriptions" (one name a line,
    // modified UTF-7 as Maildir++ writes it). Idempotent.
    util::result<void> subscribe(std::string_view name);
    util::result<void> unsubscribe(std::string_view name);
    util::result<std::vector<std::string>> subscriptions() const;

    // RFC 9051 6.3.11 STATUS (syncs the index: UIDNEXT is then exact).
    util::result<folder_status> status(std::string_view name);

    // SELECT / EXAMINE: errc::not_found for a folder that does not exist.
    util::result<folder_view> open(std::string_view name);
    util::result<sync_changes> sync(folder_view& view);
    // The message in RFC 5322 form: the file with every bare LF made CRLF
    // (line_ends.hpp; info.size octets); errc::not_found when it is gone.
    util::result<std::string> read(const folder_view& view, std::uint32_t uid) const;

    // RFC 9051 6.3.12 APPEND into cur/ with flags; no internal_date means now
    // (seconds since the epoch; 0 is 1970-01-01, a date like any other).
    // errc::not_found for a missing folder (the session adds [TRYCREATE]).
    util::result<append_result> append(std::string_view folder, std::string_view message, const flag_set& flags,
                                       std::optional<std::int64_t> internal_date = std::nullopt);
    // RFC 9051 6.4.7 COPY, RFC 6851 MOVE of the view's messages among uids
    // (others ignored). Keeps flags, keywords and internal date.
    util::result<copy_result> copy(folder_view& view, std::span<const std::uint32_t> uids, std::string_view to);
    util::result<copy_result> move(folder_view& view, std::span<const std::uint32_t> uids, std::string_view to);

    // RFC 9051 6.4.6 STORE; returns the uids whose flags or keywords changed.
    util::result<std::vector<std::uint32_t>> store_flags(folder_view& view, std::span<const std::uint32_t> uids,
                                                         flag_change how, const flag_set& flags);
    // RFC 9051 6.4.3 EXPUNGE / 6.4.9 UID EXPUNGE: removes the view's \Deleted
    // messages (among uids).
    util::result<std::vector<expunged_message>> expunge(folder_view& view);
    util::result<std::vector<expunged_message>> expunge(folder_view& view, std::span<const std::uint32_t> uids);

private:
    util::result<std::string> folder_path(std::string_view name, bool create_special) const;
    util::result<copy_result> transfer(folder_view& view, std::span<const std::uint32_t> uids, std::string_view to,
                                       bool move);
    util::result<std::vector<expunged_message>> expunge_some(folder_view& view,
                                                             const std::vector<std::uint32_t>* only);
    util::result<void> rename_inbox(const std::string& to_dir);
    util::result<void> write_subscriptions(const std::vector<std::string>& names) const;
    std::string new_unique() const;

    std::string root_;
    const util::clock* clock_;
    store_options options_;
};

} // namespace postern::mailbox
