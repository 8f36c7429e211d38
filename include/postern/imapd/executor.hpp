// imapd/executor.hpp — runs the IMAP commands that touch mail (RFC 9051
// 6.3 authenticated state, 6.4 selected state) against one user's
// mailbox::store, and keeps what the session has told its client about the
// selected folder (the folder_view) true.
// imap::session hands every such command over (event execute); the shell
// runs executor::run() on its disk pool and gives the outcome back.
// Changes made by others (delivery, POP3, other sessions) are reported as
// untagged EXPUNGE / FETCH FLAGS / EXISTS after a command and before its
// tagged response (RFC 9051 7, 5.2) — except after FETCH, STORE and SEARCH
// with sequence numbers, during which an EXPUNGE must not be sent (RFC 9051
// 7.5.1): those leave the view as it is, and the next command reports
// everything. IDLE (RFC 2177) asks poll() whenever the folder changes.
// Names: mailbox names on the wire are modified UTF-7 (RFC 3501 5.1.3)
// until the client ENABLEs UTF8=ACCEPT (RFC 6855 3), then UTF-8; the store
// takes UTF-8.
// Bounds: a FETCH answer is produced in pieces of about piece_size octets
// (more() / resume()), so fetching a large mailbox never holds it all in
// memory — the shell sends each piece before asking for the next.
// Thread: blocking (the store's files); the shell's pool, one call at a
// time per executor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "postern/imap/command.hpp"
#include "postern/imap/session.hpp"
#include "postern/mailbox/store.hpp"

namespace postern::imapd {

// About this much FETCH output per piece.
constexpr std::size_t piece_size = 1 << 20;

class executor {
public:
    explicit executor(mailbox::store store) : store_(std::move(store)) {}

    // Runs cmd (any verb imap::session hands over). The outcome's text holds
    // the untagged responses and the tagged one — or, when more(), the first
    // piece of a FETCH answer; then send it and call resume().
    imap::outcome run(const imap::command& cmd);
    bool more() const noexcept { return fetch_.has_value(); }
    imap::outcome resume();

    // IDLE: what changed in the selected folder since the last look, as
    // untagged responses ("" when nothing did). close: the folder's
    // UIDVALIDITY changed; the text ends with "* BYE".
    std::string poll(bool& close);

    bool selected() const noexcept { return view_.has_value(); }
    // The selected folder's directory (for a watcher of new/ and cur/).
    std::string selected_path() const { return view_ ? view_->path() : std::string(); }
    const mailbox::store& store() const noexcept { return store_; }

private:
    struct fetch_job {
        std::string tag;
        bool uid = false;
        std::vector<imap::fetch_item> items;
        std::vector<std::uint32_t> uids; // what to answer, in view order
        std::vector<std::uint32_t> seen; // had \Seen set by this fetch
        std::size_t next = 0;
        bool vanished = false;           // a message's file was gone
        bool unknown_cte = false;        // BINARY of a part we cannot decode (RFC 3516 4.3)
    };

    imap::outcome cmd_enable(const imap::command& c);
    imap::outcome cmd_select(const imap::command& c);
    imap::outcome cmd_create(const imap::command& c);
    imap::outcome cmd_delete(const imap::command& c);
    imap::outcome cmd_rename(const imap::command& c);
    imap::outcome cmd_subscribe(const imap::command& c);
    imap::outcome cmd_list(const imap::command& c);
    imap::outcome cmd_status(const imap::command& c);
    imap::outcome cmd_append(const imap::command& c);
    imap::outcome cmd_close(const imap::command& c);
    imap::outcome cmd_expunge(const imap::command& c);
    imap::outcome cmd_search(const imap::command& c);
    imap::outcome cmd_fetch(const imap::command& c);
    imap::outcome cmd_store(const imap::command& c);
    imap::outcome cmd_copy(const imap::command& c);
    imap::outcome fetch_piece();
    std::string lsub_parents(const std::string& pattern, std::set<std::string>& listed) const;

    // The view's messages a set names (0-based indices, ascending); nullopt
    // when a sequence number is past the end (RFC 9051 6.4: BAD).
    std::optional<std::vector<std::size_t>> messages_in(const imap::sequence_set& set, bool uid) const;
    std::vector<std::uint32_t> uids_of(const std::vector<std::size_t>& indices) const;
    // A mailbox name from the wire as UTF-8; nullopt when it does not decode.
    std::optional<std::string> folder_name(const std::string& wire) const;
    // A UTF-8 name as the client reads it (quoted).
    std::string wire_name(const std::string& utf8) const;
    // The untagged reports of sync(); sets close on a UIDVALIDITY change.
    std::string report_changes(bool& close);
    // out + the updates (unless the command forbids EXPUNGE) + the tagged line.
    imap::outcome finish(std::string out, std::string tagged_line, bool may_sync = true);
    imap::outcome answer(std::string tagged_line) const;

    mailbox::store store_;
    std::optional<mailbox::folder_view> view_;
    bool read_only_ = false;
    bool rev2_ = false; // ENABLE IMAP4rev2 (RFC 9051 6.3.1)
    bool utf8_ = false; // ENABLE UTF8=ACCEPT (RFC 6855 3)
    std::optional<std::vector<std::uint32_t>> saved_; // SEARCH RETURN (SAVE), UIDs (RFC 5182)
    std::optional<fetch_job> fetch_;
};

} // namespace postern::imapd
