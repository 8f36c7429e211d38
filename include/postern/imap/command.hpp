// imap/command.hpp — IMAP commands as values: the command table and the
// parser (RFC 9051 6 and 9 "Formal Syntax"; IMAP4rev1 RFC 3501 for the
// syntax IMAP4rev2 dropped: LSUB, CHECK, SEARCH NEW/OLD/RECENT, STATUS
// RECENT). Extensions: LITERAL+ (RFC 7888), SASL-IR (RFC 4959), ID
// (RFC 2971), ENABLE (RFC 5161), LIST-EXTENDED (RFC 5258), LIST-STATUS
// (RFC 5819), SPECIAL-USE (RFC 6154), ESEARCH (RFC 4731), SEARCHRES
// (RFC 5182), UIDPLUS (RFC 4315), MOVE (RFC 6851), BINARY (RFC 3516),
// CONDSTORE syntax (RFC 7162: UNCHANGEDSINCE, CHANGEDSINCE, MODSEQ kept for
// the session to honour or refuse), IDLE (RFC 2177), UNSELECT (RFC 3691).
//
// Dispatch is table-driven (STYLE 7): one constexpr row per verb holds its
// name, the states it is valid in, whether UID may prefix it, and its
// argument parser. The parser is stateless: it checks syntax only. The
// session asks allowed() and answers "BAD Command not allowed now" itself.
//
// Values: strings are the octets the client sent (quoted-pairs undone,
// literals as is); mailbox names are kept as sent (modified UTF-7 or, with
// UTF8=ACCEPT, UTF-8) except that any case of "INBOX" becomes "INBOX" (RFC
// 9051 5.1). Keywords in option lists (LIST selection / return options,
// STATUS items, ...) become enums or upper-case strings; flags keep their
// spelling. "*" in sequence sets stays symbolic (sequence_set.hpp).
//
// Errors: parse_command never throws on client input; it yields a tagged
// BAD (or "* BAD" when the line has no valid tag) whose text says what is
// wrong, prefixed with the command's name. Nesting and number of SEARCH keys
// are bounded (parse_limits), as are the ranges of a sequence set: past a
// bound the BAD carries [LIMIT] (RFC 5530 3).
// Pure; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "postern/imap/reader.hpp"
#include "postern/imap/response.hpp"
#include "postern/imap/sequence_set.hpp"
#include "postern/mime/section.hpp"

namespace postern::imap {

enum class verb {
    capability, noop, logout,                                    // any state (RFC 9051 6.1)
    starttls, authenticate, login,                               // not authenticated (6.2)
    enable, select, examine, create, delete_, rename, subscribe, // authenticated (6.3)
    unsubscribe, list, lsub, namespace_, status, append, idle,
    check, close, unselect, expunge, search, fetch, store,       // selected (6.4)
    copy, move,
    id,                                                          // any state (RFC 2971 3.1)
};

// RFC 9051 3: the connection states a command may be valid in.
enum class session_state { not_authenticated, authenticated, selected, logout };

// The command's name as the table spells it ("UID FETCH" is verb fetch with
// uid set).
std::string_view verb_name(verb v) noexcept;
// Whether the verb may be run in state s (RFC 9051 6; ENABLE only before a
// mailbox is selected, RFC 5161 3.1).
bool allowed(verb v, session_state s) noexcept;

// RFC 9051 9 date = date-text / DQUOTE date-text DQUOTE, "1-Feb-1994".
struct date {
    int year = 0;
    int month = 0; // 1..12
    int day = 0;   // 1..31 (not checked against the month)

    friend bool operator==(const date&, const date&) = default;
};

// RFC 9051 9 date-time, "17-Jul-1996 02:44:25 -0700".
struct date_time {
    imap::date day;
    int hour = 0;
    int minute = 0;
    int second = 0;
    int zone_minutes = 0; // east of UTC: -0700 is -420

    friend bool operator==(const date_time&, const date_time&) = default;
};

// ---- per-verb arguments ---------------------------------------------------

struct no_args {};

// AUTHENTICATE mechanism [initial-response] (RFC 9051 6.2.2, RFC 4959 3).
struct authenticate_args {
    std::string mechanism;                       // upper-cased
    std::optional<std::string> initial_response; // base64 as sent; "=" becomes ""
};

struct login_args {
    std::string user;
    std::string password; // a credential: never log it
};

// ENABLE capability... (RFC 5161 3.1), upper-cased.
struct enable_args {
    std::vector<std::string> capabilities;
};

// ID NIL / ID (field value ...) (RFC 2971 3.1): at most 30 pairs.
struct id_args {
    std::vector<std::pair<std::string, std::optional<std::string>>> fields; // empty for NIL
};

// RFC 4466 2.1 select-param / create-param: name [value]; the value is the
// raw text of tagged-ext-val (e.g. CONDSTORE has none; QRESYNC "(1 2)").
struct ext_param {
    std::string name; // upper-cased
    std::string value;

    friend bool operator==(const ext_param&, const ext_param&) = default;
};

// SELECT / EXAMINE mailbox [(params)].
struct select_args {
    std::string mailbox;
    std::vector<ext_param> params;
};

// CREATE mailbox [(params)] (RFC 6154 5.2 USE is parsed and kept);
// DELETE, SUBSCRIBE, UNSUBSCRIBE mailbox.
struct mailbox_args {
    std::string mailbox;
    std::vector<ext_param> params;
};

struct rename_args {
    std::string from;
    std::string to;
};

enum class status_item { messages, uidnext, uidvalidity, unseen, deleted, size, recent, highestmodseq };

// LIST (RFC 9051 6.3.9, RFC 5258 3) and LSUB (RFC 3501 6.3.9).
struct list_args {
    std::vector<std::string> selection; // SUBSCRIBED REMOTE RECURSIVEMATCH SPECIAL-USE
    std::string reference;
    std::vector<std::string> patterns;  // one for the basic form; list-mailbox syntax
    std::vector<std::string> returns;   // SUBSCRIBED CHILDREN SPECIAL-USE STATUS MYRIGHTS
    std::vector<status_item> status;    // RETURN (STATUS (...)), RFC 5819
    bool extended = false;              // selection options, a pattern list or RETURN were given
};

struct status_args {
    std::string mailbox;
    std::vector<status_item> items;
};

// APPEND mailbox [flags] [date-time] literal (RFC 9051 6.3.12; literal8
// RFC 3516 4.4).
struct append_args {
    std::string mailbox;
    std::vector<std::string> flags;
    std::optional<date_time> internal_date;
    std::string message;
    bool binary = false; // sent as literal8 "~{n}" (may hold NUL)
};

// A SEARCH key (RFC 9051 6.4.4). text for the string keys, KEYWORD and
// HEADER's value; field for HEADER's field name.
enum class search_op {
    all, answered, bcc, before, body, cc, deleted, draft, flagged, from, header, keyword, larger,
    new_, not_, old, on, or_, recent, seen, sentbefore, senton, sentsince, since, smaller, subject,
    text, to, uid, unanswered, undeleted, undraft, unflagged, unkeyword, unseen,
    sequence,    // a bare sequence set
    list,        // "(" key... ")" and the program itself: all children must match
    modseq,      // RFC 7162 3.1.5 MODSEQ (entry names ignored)
};

struct search_key {
    search_op op = search_op::all;
    std::string text;
    std::string field;
    imap::date day;            // BEFORE ON SINCE SENT*
    std::uint64_t number = 0;  // LARGER SMALLER MODSEQ
    sequence_set set;          // UID, sequence
    std::vector<search_key> children; // NOT: 1, OR: 2, list: 1 or more
};

enum class search_return { min, max, all, count, save };

// SEARCH [RETURN (...)] [CHARSET c] keys (RFC 9051 6.4.4, RFC 4731 3.1).
struct search_args {
    bool esearch = false;              // RETURN was given: answer with ESEARCH
    std::vector<search_return> returns; // "RETURN ()" leaves it empty: ALL (RFC 4731 3.1)
    std::string charset;               // as sent; "" when absent
    search_key program;                // op list; one child per top-level key
};

enum class fetch_attr {
    envelope, flags, internaldate, rfc822, rfc822_header, rfc822_size, rfc822_text,
    body,          // BODY (non-extensible BODYSTRUCTURE)
    bodystructure, uid,
    body_section,  // BODY[...] / BODY.PEEK[...]
    binary,        // BINARY[...] / BINARY.PEEK[...] (RFC 3516)
    binary_size,   // BINARY.SIZE[...]
    modseq,        // RFC 7162 3.1.4.1
};

// <origin.count> (RFC 9051 9 section-partial).
struct partial {
    std::uint64_t origin = 0;
    std::uint64_t count = 0; // nz-number64

    friend bool operator==(const partial&, const partial&) = default;
};

struct fetch_item {
    fetch_attr attr = fetch_attr::flags;
    bool peek = false;                  // BODY.PEEK / BINARY.PEEK: do not set \Seen
    mime::section section;              // body_section, binary, binary_size (binary: part numbers only)
    std::optional<imap::partial> range;
    // The item's name in the FETCH response (RFC 9051 7.5.2): upper-case,
    // BODY.PEEK and BINARY.PEEK answered as BODY / BINARY, field names as
    // sent, no partial (the response gives only "<origin>"); e.g.
    // "BODY[1.2.HEADER.FIELDS (From To)]".
    std::string name;
};

// FETCH set (items | ALL | FAST | FULL) [(CHANGEDSINCE n)] — macros are
// expanded (RFC 9051 6.4.5).
struct fetch_args {
    sequence_set set;
    std::vector<fetch_item> items;
    std::optional<std::uint64_t> changed_since; // RFC 7162 3.1.4.1
};

enum class store_mode { replace, add, remove }; // FLAGS, +FLAGS, -FLAGS

struct store_args {
    sequence_set set;
    store_mode mode = store_mode::replace;
    bool silent = false;
    std::vector<std::string> flags;
    std::optional<std::uint64_t> unchanged_since; // RFC 7162 3.1.3
};

// COPY / MOVE set mailbox.
struct copy_args {
    sequence_set set;
    std::string mailbox;
};

// UID EXPUNGE set (RFC 4315 2.1); EXPUNGE has no_args.
struct expunge_args {
    sequence_set set;
};

using arguments = std::variant<no_args, authenticate_args, login_args, enable_args, id_args, select_args,
                               mailbox_args, rename_args, list_args, status_args, append_args, search_args,
                               fetch_args, store_args, copy_args, expunge_args>;

struct command {
    std::string tag;
    imap::verb verb = verb::noop;
    bool uid = false; // "UID FETCH" etc.: numbers are UIDs
    arguments args;
};

// Limits the parser enforces on top of the reader's.
struct parse_limits {
    std::size_t max_search_depth = 32; // nested "(", NOT, OR
    std::size_t max_search_keys = 1000; // keys in one SEARCH, at any depth
    std::size_t max_ranges = default_max_ranges; // per sequence set
};

struct parse_result {
    std::optional<imap::command> command; // set when the command parsed
    response error;                       // otherwise: the BAD to send

    explicit operator bool() const noexcept { return command.has_value(); }
};

// Parses one frame from the reader. Literals are moved out of it.
parse_result parse_command(frame f, const parse_limits& lim = {});

} // namespace postern::imap
