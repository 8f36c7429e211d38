#include "postern/imapd/executor.hpp"

#include <algorithm>
#include <set>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>
#include <variant>

#include "postern/imap/response.hpp"
#include "postern/imap/sequence_set.hpp"
#include "postern/imapd/fetch.hpp"
#include "postern/imapd/search.hpp"
#include "postern/mailbox/folder.hpp"
#include "postern/util/error.hpp"

namespace postern::imapd {

namespace {

using imap::response_code;
using imap::status;

// RFC 9051 2.3.2: the system flags in the order SELECT lists them.
constexpr std::string_view system_flag_list = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

bool is(const std::error_code& e, util::errc c)
{
    return e == util::make_error_code(c);
}

// The NO for a store error. missing: the response code for a mailbox that
// does not exist — NONEXISTENT where the command names an existing one
// (SELECT, DELETE, RENAME, STATUS), TRYCREATE where it puts mail into one
// (APPEND, COPY, MOVE; RFC 9051 6.3.12).
std::string refusal(std::string_view tag, const std::error_code& e, response_code missing)
{
    if (is(e, util::errc::not_found))
        return imap::tagged(tag, status::no, missing, "Mailbox does not exist");
    if (is(e, util::errc::exists))
        return imap::tagged(tag, status::no, response_code::alreadyexists, "Mailbox already exists");
    if (is(e, util::errc::limit))
        return imap::tagged(tag, status::no, response_code::limit, "Too many mailboxes or keywords");
    if (is(e, util::errc::syntax) || is(e, util::errc::too_long))
        return imap::tagged(tag, status::no, response_code::cannot, "Invalid mailbox name");
    if (is(e, util::errc::refused))
        return imap::tagged(tag, status::no, response_code::cannot, "Not allowed for this mailbox");
    return imap::tagged(tag, status::no, response_code::serverbug, "Mailbox store failed, try later");
}

std::string quote(std::string_view s)
{
    std::string out = "\"";
    for (char ch : s) {
        if (ch == '"' || ch == '\\')
            out += '\\';
        out += ch;
    }
    return out + "\"";
}

std::string_view status_item_name(imap::status_item i) noexcept
{
    switch (i) {
    case imap::status_item::messages:
        return "MESSAGES";
    case imap::status_item::uidnext:
        return "UIDNEXT";
    case imap::status_item::uidvalidity:
        return "UIDVALIDITY";
    case imap::status_item::unseen:
        return "UNSEEN";
    case imap::status_item::deleted:
        return "DELETED";
    case imap::status_item::size:
        return "SIZE";
    case imap::status_item::recent:
        return "RECENT";
    case imap::status_item::highestmodseq:
        return "HIGHESTMODSEQ";
    }
    return "";
}

// Days since 1970-01-01 of a civil date (the proleptic Gregorian calendar;
// H. Hinnant's algorithm).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept
{
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// APPEND's date-time as seconds since the epoch (RFC 9051 6.3.12).
std::int64_t epoch_of(const imap::date_time& t) noexcept
{
    const auto days = days_from_civil(t.day.year, static_cast<unsigned>(t.day.month), static_cast<unsigned>(t.day.day));
    return days * 86400 + t.hour * 3600 + t.minute * 60 + t.second - std::int64_t{t.zone_minutes} * 60;
}

util::result<mailbox::flag_set> flags_of(const std::vector<std::string>& names)
{
    std::vector<std::string_view> views(names.begin(), names.end());
    return mailbox::parse_flags(views);
}

bool has_option(const std::vector<std::string>& options, std::string_view name)
{
    return std::find(options.begin(), options.end(), name) != options.end();
}

std::string expunge_lines(const std::vector<mailbox::expunged_message>& gone)
{
    std::string out;
    for (const auto& e : gone)
        out += "* " + std::to_string(e.seq) + " EXPUNGE\r\n";
    return out;
}

// "(MESSAGES 3 UIDNEXT 7)" for STATUS and LIST-STATUS (RFC 9051 7.3.5).
std::string status_values(const mailbox::folder_status& st, const std::vector<imap::status_item>& items,
                          std::uint32_t deleted)
{
    std::string out = "(";
    for (auto item : items) {
        std::uint64_t v = 0;
        switch (item) {
        case imap::status_item::messages:
            v = st.messages;
            break;
        case imap::status_item::uidnext:
            v = st.uidnext;
            break;
        case imap::status_item::uidvalidity:
            v = st.uidvalidity;
            break;
        case imap::status_item::unseen:
            v = st.unseen;
            break;
        case imap::status_item::deleted:
            v = deleted;
            break;
        case imap::status_item::size:
            v = st.size;
            break;
        case imap::status_item::recent:
            v = st.recent;
            break;
        case imap::status_item::highestmodseq:
            continue; // refused before we get here
        }
        if (out.size() > 1)
            out += ' ';
        out += std::string(status_item_name(item)) + ' ' + std::to_string(v);
    }
    return out + ")";
}

bool wants(const std::vector<imap::status_item>& items, imap::status_item i)
{
    return std::find(items.begin(), items.end(), i) != items.end();
}

} // namespace

// ---- plumbing ---------------------------------------------------------------

imap::outcome executor::answer(std::string tagged_line) const
{
    return {std::move(tagged_line), selected(), false};
}

std::string executor::report_changes(bool& close)
{
    close = false;
    if (!view_)
        return {};
    auto changes = store_.sync(*view_);
    if (!changes) {
        if (is(changes.error(), util::errc::not_found) || changes.error() == std::errc::no_such_file_or_directory) {
            // Deleted by another session or tool: nothing the client holds
            // is valid any more (Dovecot says BYE too).
            close = true;
            view_.reset();
            return "* BYE [UNAVAILABLE] The mailbox was deleted; please reconnect\r\n";
        }
        return {}; // the folder could not be read this time: nothing is reported, the view stays
    }
    if (changes->uidvalidity_changed) {
        // RFC 9051 2.3.1.1: UIDs must not change under a selected client;
        // the only honest answer is to end the session.
        close = true;
        view_.reset();
        return "* BYE [UNAVAILABLE] The mailbox was re-created; please reconnect\r\n";
    }
    std::string out = expunge_lines(changes->expunged);
    for (auto uid : changes->flags_changed) {
        const auto* m = view_->find(uid);
        if (m == nullptr)
            continue;
        out += "* " + std::to_string(view_->seq_of(uid)) + " FETCH (FLAGS " + flag_list(*m) + " UID " +
               std::to_string(uid) + ")\r\n";
    }
    if (changes->added > 0) { // RFC 9051 7.4.1: EXPUNGEs already lowered the count
        out += "* " + std::to_string(view_->messages().size()) + " EXISTS\r\n";
        if (!rev2_) { // RFC 9051 dropped RECENT; IMAP4rev1 clients expect it with EXISTS
            const auto recent = std::count_if(view_->messages().begin(), view_->messages().end(),
                                              [](const mailbox::message_info& m) { return m.recent; });
            out += "* " + std::to_string(recent) + " RECENT\r\n";
        }
    }
    return out;
}

imap::outcome executor::finish(std::string out, std::string tagged_line, bool may_sync)
{
    if (may_sync && view_) {
        bool close = false;
        out += report_changes(close);
        if (close)
            return {std::move(out), false, true};
    }
    out += tagged_line;
    return {std::move(out), selected(), false};
}

std::string executor::poll(bool& close)
{
    return report_changes(close);
}

std::optional<std::string> executor::folder_name(const std::string& wire) const
{
    if (utf8_)
        return wire; // RFC 6855 3: UTF-8 on the wire; the store validates it
    auto decoded = mailbox::mutf7_decode(wire);
    if (!decoded)
        return std::nullopt;
    return std::move(*decoded);
}

std::string executor::wire_name(const std::string& utf8) const
{
    if (utf8_)
        return quote(utf8);
    auto encoded = mailbox::mutf7_encode(utf8);
    return quote(encoded ? *encoded : utf8);
}

std::optional<std::vector<std::size_t>> executor::messages_in(const imap::sequence_set& set, bool uid) const
{
    std::vector<std::size_t> out;
    const auto& msgs = view_->messages();
    if (set.saved) {
        // RFC 5182 2.1: "$" is the last saved result, whatever its kind.
        if (!saved_)
            return out;
        for (auto u : *saved_)
            if (auto seq = view_->seq_of(u); seq != 0)
                out.push_back(seq - 1);
        return out;
    }
    if (uid) {
        // RFC 9051 6.4.9: UIDs not in the mailbox are ignored; "*" is the
        // largest UID in use.
        const std::uint32_t star = msgs.empty() ? 0 : msgs.back().uid;
        const auto ranges = imap::resolve(set, star);
        for (std::size_t i = 0; i < msgs.size(); ++i)
            for (const auto& [lo, hi] : ranges)
                if (msgs[i].uid >= lo && msgs[i].uid <= hi) {
                    out.push_back(i);
                    break;
                }
        return out;
    }
    const auto n = static_cast<std::uint32_t>(msgs.size());
    for (const auto& [lo, hi] : imap::resolve(set, n)) {
        if (lo == 0 || hi > n)
            return std::nullopt; // RFC 9051 9 seq-number: past the end is the client's mistake
        for (std::uint32_t s = lo; s <= hi; ++s)
            out.push_back(s - 1);
    }
    return out;
}

std::vector<std::uint32_t> executor::uids_of(const std::vector<std::size_t>& indices) const
{
    std::vector<std::uint32_t> out;
    out.reserve(indices.size());
    for (auto i : indices)
        out.push_back(view_->messages()[i].uid);
    return out;
}

// ---- dispatch ---------------------------------------------------------------

imap::outcome executor::run(const imap::command& c)
{
    fetch_.reset();
    switch (c.verb) {
    case imap::verb::enable:
        return cmd_enable(c);
    case imap::verb::select:
    case imap::verb::examine:
        return cmd_select(c);
    case imap::verb::create:
        return cmd_create(c);
    case imap::verb::delete_:
        return cmd_delete(c);
    case imap::verb::rename:
        return cmd_rename(c);
    case imap::verb::subscribe:
    case imap::verb::unsubscribe:
        return cmd_subscribe(c);
    case imap::verb::list:
    case imap::verb::lsub:
        return cmd_list(c);
    case imap::verb::status:
        return cmd_status(c);
    case imap::verb::append:
        return cmd_append(c);
    case imap::verb::noop:
    case imap::verb::check: // RFC 9051 drops CHECK; for IMAP4rev1 it is a NOOP here (nothing is buffered)
        return finish({}, imap::tagged(c.tag, status::ok, std::string(imap::verb_name(c.verb)) + " completed"));
    case imap::verb::close:
    case imap::verb::unselect:
        return cmd_close(c);
    case imap::verb::expunge:
        return cmd_expunge(c);
    case imap::verb::search:
        return cmd_search(c);
    case imap::verb::fetch:
        return cmd_fetch(c);
    case imap::verb::store:
        return cmd_store(c);
    case imap::verb::copy:
    case imap::verb::move:
        return cmd_copy(c);
    case imap::verb::capability:
    case imap::verb::logout:
    case imap::verb::starttls:
    case imap::verb::authenticate:
    case imap::verb::login:
    case imap::verb::namespace_:
    case imap::verb::idle:
    case imap::verb::id:
        break; // the session's own
    }
    return answer(imap::tagged(c.tag, status::bad, response_code::serverbug, "Command not handled here"));
}

// ---- authenticated state ----------------------------------------------------

imap::outcome executor::cmd_enable(const imap::command& c)
{
    // RFC 5161 3.1: ENABLED lists what this command turned on; unknown
    // names are ignored.
    std::string enabled;
    for (const auto& cap : std::get<imap::enable_args>(c.args).capabilities) {
        if (cap == "IMAP4REV2" && !rev2_) {
            rev2_ = true;
            enabled += " IMAP4rev2";
        } else if (cap == "UTF8=ACCEPT" && !utf8_) {
            utf8_ = true;
            enabled += " UTF8=ACCEPT";
        }
    }
    return answer("* ENABLED" + enabled + "\r\n" + imap::tagged(c.tag, status::ok, "ENABLE completed"));
}

imap::outcome executor::cmd_select(const imap::command& c)
{
    const auto& a = std::get<imap::select_args>(c.args);
    const bool examine = c.verb == imap::verb::examine;
    if (!a.params.empty()) // CONDSTORE / QRESYNC are not offered
        return answer(imap::tagged(c.tag, status::bad, response_code::clientbug, "SELECT parameters are not supported"));
    std::string out;
    // RFC 9051 6.3.2: selecting closes the current mailbox, even when the
    // new one cannot be opened; 7.1 CLOSED says so.
    if (view_)
        out += "* OK [CLOSED] Previous mailbox closed\r\n";
    view_.reset();
    saved_.reset();
    read_only_ = false;
    const auto name = folder_name(a.mailbox);
    if (!name)
        return {out + imap::tagged(c.tag, status::no, response_code::cannot, "Invalid mailbox name"), false, false};
    auto opened = store_.open(*name);
    if (!opened)
        return {out + refusal(c.tag, opened.error(), response_code::nonexistent), false, false};
    view_ = std::move(*opened);
    read_only_ = examine;
    const auto& msgs = view_->messages();
    std::set<std::string> keywords;
    std::size_t recent = 0, first_unseen = 0;
    for (std::size_t i = 0; i < msgs.size(); ++i) {
        keywords.insert(msgs[i].keywords.begin(), msgs[i].keywords.end());
        recent += msgs[i].recent ? 1 : 0;
        if (first_unseen == 0 && !msgs[i].has('S'))
            first_unseen = i + 1;
    }
    std::string flags(system_flag_list);
    for (const auto& k : keywords)
        flags += ' ' + k;
    out += "* FLAGS (" + flags + ")\r\n";
    // RFC 9051 7.1 PERMANENTFLAGS: "\*" — new keywords may be created.
    out += examine ? "* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n"
                   : "* OK [PERMANENTFLAGS (" + flags + " \\*)] Flags permitted\r\n";
    out += "* " + std::to_string(msgs.size()) + " EXISTS\r\n";
    if (!rev2_) {
        // IMAP4rev1 (RFC 3501 6.3.1): RECENT is required, UNSEEN customary.
        out += "* " + std::to_string(recent) + " RECENT\r\n";
        if (first_unseen != 0)
            out += "* OK [UNSEEN " + std::to_string(first_unseen) + "] First unseen\r\n";
    }
    out += "* OK [UIDVALIDITY " + std::to_string(view_->uidvalidity()) + "] UIDs valid\r\n";
    out += "* OK [UIDNEXT " + std::to_string(view_->uidnext()) + "] Predicted next UID\r\n";
    if (rev2_) // RFC 9051 6.3.2: the mailbox's name as the server spells it
        out += "* LIST () \".\" " + wire_name(view_->name()) + "\r\n";
    out += c.tag + (examine ? " OK [READ-ONLY] EXAMINE completed\r\n" : " OK [READ-WRITE] SELECT completed\r\n");
    return {std::move(out), true, false};
}

imap::outcome executor::cmd_create(const imap::command& c)
{
    const auto& a = std::get<imap::mailbox_args>(c.args);
    if (!a.params.empty()) // RFC 6154 5.2 USE: the special-use folders are fixed
        return finish({}, imap::tagged(c.tag, status::no, response_code::cannot,
                                          "Special-use attributes cannot be set"));
    auto name = folder_name(a.mailbox);
    // RFC 9051 6.3.4: a trailing separator only says the name is meant to
    // have inferiors; Maildir++ needs no placeholder for that.
    while (name && !name->empty() && name->back() == mailbox::separator)
        name->pop_back();
    if (!name || name->empty())
        return finish({}, imap::tagged(c.tag, status::no, response_code::cannot, "Invalid mailbox name"));
    auto r = store_.create(*name);
    if (!r)
        return finish({}, refusal(c.tag, r.error(), response_code::nonexistent));
    return finish({}, imap::tagged(c.tag, status::ok, "CREATE completed"));
}

imap::outcome executor::cmd_delete(const imap::command& c)
{
    const auto name = folder_name(std::get<imap::mailbox_args>(c.args).mailbox);
    if (!name)
        return finish({}, imap::tagged(c.tag, status::no, response_code::cannot, "Invalid mailbox name"));
    if (view_) {
        auto canon = mailbox::canonical_folder_name(*name);
        if (canon && *canon == view_->name())
            return finish({}, imap::tagged(c.tag, status::no, response_code::inuse,
                                              "The mailbox is selected; close it first"));
    }
    auto r = store_.remove(*name);
    if (!r)
        return finish({}, is(r.error(), util::errc::refused)
                                 ? imap::tagged(c.tag, status::no, response_code::cannot, "INBOX cannot be deleted")
                                 : refusal(c.tag, r.error(), response_code::nonexistent));
    return finish({}, imap::tagged(c.tag, status::ok, "DELETE completed"));
}

imap::outcome executor::cmd_rename(const imap::command& c)
{
    const auto& a = std::get<imap::rename_args>(c.args);
    const auto from = folder_name(a.from);
    const auto to = folder_name(a.to);
    if (!from || !to)
        return finish({}, imap::tagged(c.tag, status::no, response_code::cannot, "Invalid mailbox name"));
    if (view_) {
        // The selected folder's directory would move under its view (renaming
        // it or a superior, whose inferiors follow): Maildir files are found
        // by path. Clients rename folders they have not open.
        auto canon = mailbox::canonical_folder_name(*from);
        if (canon && (*canon == view_->name() || view_->name().starts_with(*canon + mailbox::separator)))
            return finish({}, imap::tagged(c.tag, status::no, response_code::inuse,
                                              "The mailbox is selected; close it first"));
    }
    auto r = store_.rename(*from, *to);
    if (!r)
        return finish({}, refusal(c.tag, r.error(), response_code::nonexistent));
    return finish({}, imap::tagged(c.tag, status::ok, "RENAME completed"));
}

imap::outcome executor::cmd_subscribe(const imap::command& c)
{
    const auto name = folder_name(std::get<imap::mailbox_args>(c.args).mailbox);
    if (!name)
        return finish({}, imap::tagged(c.tag, status::no, response_code::cannot, "Invalid mailbox name"));
    const bool on = c.verb == imap::verb::subscribe;
    auto r = on ? store_.subscribe(*name) : store_.unsubscribe(*name);
    if (!r)
        return finish({}, refusal(c.tag, r.error(), response_code::nonexistent));
    return finish({}, imap::tagged(c.tag, status::ok, on ? "SUBSCRIBE completed" : "UNSUBSCRIBE completed"));
}

imap::outcome executor::cmd_list(const imap::command& c)
{
    const auto& a = std::get<imap::list_args>(c.args);
    const bool lsub = c.verb == imap::verb::lsub;
    const std::string verb = lsub ? "LSUB" : "LIST";
    const std::string done = imap::tagged(c.tag, status::ok, verb + " completed");
    if (wants(a.status, imap::status_item::highestmodseq))
        return finish({}, imap::tagged(c.tag, status::bad, response_code::clientbug, "HIGHESTMODSEQ needs CONDSTORE"));
    // RFC 9051 6.3.9: an empty pattern asks for the hierarchy separator.
    if (a.patterns.size() == 1 && a.patterns.front().empty())
        return finish("* " + verb + " (\\Noselect) \".\" \"\"\r\n", done);
    // RFC 5258 3.1 / RFC 6154 2: selection and return options.
    const bool only_subscribed = lsub || has_option(a.selection, "SUBSCRIBED");
    const bool only_special = has_option(a.selection, "SPECIAL-USE");
    const bool show_subscribed = has_option(a.returns, "SUBSCRIBED") || has_option(a.selection, "SUBSCRIBED");
    std::string out;
    std::set<std::string> seen;
    for (const auto& pattern : a.patterns) {
        const auto utf8 = folder_name(a.reference + pattern);
        if (!utf8)
            continue; // matches nothing we could have written
        auto entries = store_.list(*utf8, only_subscribed);
        if (!entries)
            return finish(std::move(out), refusal(c.tag, entries.error(), response_code::nonexistent));
        for (const auto& e : *entries) {
            if ((only_special && e.use == mailbox::special_use::none) || !seen.insert(e.name).second)
                continue;
            std::string attrs;
            auto add = [&attrs](std::string_view attr) {
                if (!attrs.empty())
                    attrs += ' ';
                attrs += attr;
            };
            if (e.nonexistent) // RFC 5258 3: \NonExistent; IMAP4rev1's basic LIST knows \Noselect
                add(a.extended ? "\\NonExistent" : "\\Noselect");
            if (!lsub) {
                add(e.has_children ? "\\HasChildren" : "\\HasNoChildren"); // RFC 3348 / 9051 7.3.1
                if (e.use != mailbox::special_use::none)
                    add(mailbox::special_use_attribute(e.use));
                if (show_subscribed && e.subscribed)
                    add("\\Subscribed");
            }
            out += "* " + verb + " (" + attrs + ") \".\" " + wire_name(e.name) + "\r\n";
            if (!a.status.empty() && !e.nonexistent) { // RFC 5819 LIST-STATUS
                auto st = store_.status(e.name);
                if (st)
                    out += "* STATUS " + wire_name(e.name) + " " + status_values(*st, a.status, 0) + "\r\n";
            }
        }
        if (lsub && pattern.find('%') != std::string::npos)
            out += lsub_parents(*utf8, seen);
    }
    return finish(std::move(out), done);
}

std::string executor::lsub_parents(const std::string& pattern, std::set<std::string>& listed) const
{
    // RFC 3501 6.3.9: with "%", LSUB returns the level a subscribed name
    // lies below even when that level is not subscribed, as \Noselect
    // ("foo" for a subscribed "foo.bar" and the pattern "%").
    std::string out;
    auto subs = store_.subscriptions();
    if (!subs)
        return out;
    for (const auto& name : *subs)
        for (auto dot = name.find(mailbox::separator); dot != std::string::npos;
             dot = name.find(mailbox::separator, dot + 1)) {
            const auto parent = name.substr(0, dot);
            if (mailbox::pattern_matches(pattern, parent) && listed.insert(parent).second)
                out += "* LSUB (\\Noselect) \".\" " + wire_name(parent) + "\r\n";
        }
    return out;
}

imap::outcome executor::cmd_status(const imap::command& c)
{
    const auto& a = std::get<imap::status_args>(c.args);
    if (wants(a.items, imap::status_item::highestmodseq))
        return finish({}, imap::tagged(c.tag, status::bad, response_code::clientbug, "HIGHESTMODSEQ needs CONDSTORE"));
    const auto name = folder_name(a.mailbox);
    if (!name)
        return finish({}, imap::tagged(c.tag, status::no, response_code::cannot, "Invalid mailbox name"));
    auto st = store_.status(*name);
    if (!st)
        return finish({}, refusal(c.tag, st.error(), response_code::nonexistent));
    std::uint32_t deleted = 0;
    if (wants(a.items, imap::status_item::deleted)) {
        // RFC 9051 6.3.11 DELETED: counted from a view of its own (rare).
        auto v = store_.open(*name);
        if (!v)
            return finish({}, refusal(c.tag, v.error(), response_code::nonexistent));
        deleted = static_cast<std::uint32_t>(std::count_if(v->messages().begin(), v->messages().end(),
                                                           [](const auto& m) { return m.has('T'); }));
    }
    auto canon = mailbox::canonical_folder_name(*name);
    std::string out = "* STATUS " + wire_name(canon ? *canon : *name) + " " + status_values(*st, a.items, deleted) + "\r\n";
    return finish(std::move(out), imap::tagged(c.tag, status::ok, "STATUS completed"));
}

imap::outcome executor::cmd_append(const imap::command& c)
{
    const auto& a = std::get<imap::append_args>(c.args);
    const auto name = folder_name(a.mailbox);
    if (!name)
        return finish({}, imap::tagged(c.tag, status::no, response_code::cannot, "Invalid mailbox name"));
    auto flags = flags_of(a.flags);
    if (!flags)
        return finish({}, imap::tagged(c.tag, status::bad, response_code::clientbug, "Invalid flag in APPEND"));
    // RFC 3516 4.4: literal8 may carry NUL, which a Maildir file of mail
    // must not (BINARY is not offered, so clients should never send it).
    if (a.message.find('\0') != std::string::npos)
        return finish({}, imap::tagged(c.tag, status::no, response_code::cannot, "NUL octets in the message"));
    std::optional<std::int64_t> when;
    if (a.internal_date)
        when = epoch_of(*a.internal_date);
    auto r = store_.append(*name, a.message, *flags, when);
    if (!r)
        return finish({}, refusal(c.tag, r.error(), response_code::trycreate));
    // RFC 4315 3 APPENDUID.
    return finish({}, c.tag + " OK [APPENDUID " + std::to_string(r->uidvalidity) + " " + std::to_string(r->uid) +
                             "] APPEND completed\r\n");
}

// ---- selected state -----------------------------------------------------------

imap::outcome executor::cmd_close(const imap::command& c)
{
    // RFC 9051 6.4.1: CLOSE expunges silently (not in a read-only
    // mailbox); UNSELECT (RFC 3691) does not.
    if (view_ && c.verb == imap::verb::close && !read_only_)
        (void)store_.expunge(*view_); // errors are not reported by CLOSE
    view_.reset();
    saved_.reset();
    read_only_ = false;
    return answer(imap::tagged(c.tag, status::ok, std::string(imap::verb_name(c.verb)) + " completed"));
}

imap::outcome executor::cmd_expunge(const imap::command& c)
{
    if (read_only_)
        return finish({}, imap::tagged(c.tag, status::no, response_code::cannot, "The mailbox is read-only"));
    util::result<std::vector<mailbox::expunged_message>> gone = std::vector<mailbox::expunged_message>{};
    if (c.uid) { // RFC 4315 2.1 UID EXPUNGE
        const auto idx = messages_in(std::get<imap::expunge_args>(c.args).set, true);
        const auto uids = uids_of(*idx);
        gone = store_.expunge(*view_, uids);
    } else {
        gone = store_.expunge(*view_);
    }
    if (!gone)
        return finish({}, refusal(c.tag, gone.error(), response_code::nonexistent));
    return finish(expunge_lines(*gone), imap::tagged(c.tag, status::ok, "EXPUNGE completed"));
}

imap::outcome executor::cmd_search(const imap::command& c)
{
    auto a = std::get<imap::search_args>(c.args);
    if (!search_charset_supported(a.charset))
        return finish({}, c.tag + " NO [BADCHARSET (UTF-8 US-ASCII)] Charset not supported\r\n", c.uid);
    const auto& msgs = view_->messages();
    search_context ctx;
    ctx.max_seq = static_cast<std::uint32_t>(msgs.size());
    ctx.max_uid = msgs.empty() ? 0 : msgs.back().uid;
    ctx.saved = saved_ ? &*saved_ : nullptr;
    const bool text = search_needs_text(a.program);
    std::vector<std::uint32_t> numbers, uids;
    for (std::size_t i = 0; i < msgs.size(); ++i) {
        std::string body;
        if (text) {
            auto r = store_.read(*view_, msgs[i].uid);
            if (!r)
                continue; // expunged by someone else meanwhile: it matches nothing
            body = std::move(*r);
        }
        if (!search_matches(a.program, {i + 1, &msgs[i], body}, ctx))
            continue;
        numbers.push_back(c.uid ? msgs[i].uid : static_cast<std::uint32_t>(i + 1));
        uids.push_back(msgs[i].uid);
    }
    if (std::find(a.returns.begin(), a.returns.end(), imap::search_return::save) != a.returns.end())
        saved_ = saved_result(a, uids); // RFC 5182 2.1
    // RFC 9051 6.4.4: an IMAP4rev2 client gets ESEARCH (ALL by default).
    if (rev2_)
        a.esearch = true;
    return finish(search_response(c.tag, a, c.uid, numbers), imap::tagged(c.tag, status::ok, "SEARCH completed"),
                  c.uid);
}

imap::outcome executor::cmd_fetch(const imap::command& c)
{
    const auto& a = std::get<imap::fetch_args>(c.args);
    if (a.changed_since || std::any_of(a.items.begin(), a.items.end(), [](const imap::fetch_item& i) {
            return i.attr == imap::fetch_attr::modseq;
        }))
        return finish({}, imap::tagged(c.tag, status::bad, response_code::clientbug, "MODSEQ needs CONDSTORE"), c.uid);
    const auto idx = messages_in(a.set, c.uid);
    if (!idx)
        return finish({}, imap::tagged(c.tag, status::bad, response_code::clientbug, "Invalid message sequence number"),
                      c.uid);
    fetch_job job;
    job.tag = c.tag;
    job.uid = c.uid;
    job.items = a.items;
    job.uids = uids_of(*idx);
    if (!read_only_ && fetch_sets_seen(a.items)) {
        // RFC 9051 6.4.5: BODY[...] sets \Seen; stored first so FLAGS in the
        // answer is what the Maildir now says.
        std::vector<std::uint32_t> unseen;
        for (auto i : *idx)
            if (!view_->messages()[i].has('S'))
                unseen.push_back(view_->messages()[i].uid);
        if (!unseen.empty()) {
            mailbox::flag_set seen_flag;
            seen_flag.letters = "S";
            auto changed = store_.store_flags(*view_, unseen, mailbox::flag_change::add, seen_flag);
            if (changed)
                job.seen = std::move(*changed);
        }
    }
    fetch_ = std::move(job);
    return fetch_piece();
}

imap::outcome executor::resume()
{
    if (!fetch_)
        return answer({});
    return fetch_piece();
}

imap::outcome executor::fetch_piece()
{
    auto& job = *fetch_;
    const bool needs_text = fetch_needs_text(job.items);
    std::string out;
    while (job.next < job.uids.size() && out.size() < piece_size) {
        const auto uid = job.uids[job.next++];
        const auto* m = view_->find(uid);
        if (m == nullptr) {
            job.vanished = true;
            continue;
        }
        std::string text;
        if (needs_text) {
            auto r = store_.read(*view_, uid);
            if (!r) {
                job.vanished = true; // expunged by another session or POP3 meanwhile
                continue;
            }
            text = std::move(*r);
            if (fetch_unknown_cte(text, job.items)) {
                job.unknown_cte = true; // RFC 3516 4.3: not decodable, not sent
                continue;
            }
        }
        fetch_options opts;
        opts.add_uid = job.uid;
        opts.add_flags = std::find(job.seen.begin(), job.seen.end(), uid) != job.seen.end();
        out += fetch_response(view_->seq_of(uid), *m, text, job.items, opts);
    }
    if (job.next < job.uids.size())
        return {std::move(out), true, false};
    // RFC 5530 3 EXPUNGEISSUED: some messages could not be sent.
    std::string last = job.unknown_cte ? job.tag + " NO [UNKNOWN-CTE] A part has an unknown transfer encoding\r\n"
                       : job.vanished  ? imap::tagged(job.tag, status::no, response_code::expungeissued,
                                                   "Some messages were expunged meanwhile")
                       : imap::tagged(job.tag, status::ok, "FETCH completed");
    const bool uid = job.uid;
    fetch_.reset();
    return finish(std::move(out), std::move(last), uid);
}

imap::outcome executor::cmd_store(const imap::command& c)
{
    const auto& a = std::get<imap::store_args>(c.args);
    if (a.unchanged_since)
        return finish({}, imap::tagged(c.tag, status::bad, response_code::clientbug, "UNCHANGEDSINCE needs CONDSTORE"),
                      c.uid);
    if (read_only_)
        return finish({}, imap::tagged(c.tag, status::no, response_code::cannot, "The mailbox is read-only"), c.uid);
    auto flags = flags_of(a.flags);
    if (!flags)
        return finish({}, imap::tagged(c.tag, status::bad, response_code::clientbug, "Invalid flag in STORE"), c.uid);
    const auto idx = messages_in(a.set, c.uid);
    if (!idx)
        return finish({}, imap::tagged(c.tag, status::bad, response_code::clientbug, "Invalid message sequence number"),
                      c.uid);
    const auto how = a.mode == imap::store_mode::replace ? mailbox::flag_change::replace
                     : a.mode == imap::store_mode::add   ? mailbox::flag_change::add
                                                         : mailbox::flag_change::remove;
    const auto uids = uids_of(*idx);
    auto changed = store_.store_flags(*view_, uids, how, *flags);
    if (!changed)
        return finish({}, refusal(c.tag, changed.error(), response_code::nonexistent), c.uid);
    std::string out;
    if (!a.silent) {
        // RFC 9051 6.4.6: the new flags of each message, as FETCH responses.
        for (auto uid : uids) {
            const auto* m = view_->find(uid);
            if (m == nullptr)
                continue;
            out += "* " + std::to_string(view_->seq_of(uid)) + " FETCH (";
            if (c.uid)
                out += "UID " + std::to_string(uid) + " ";
            out += "FLAGS " + flag_list(*m) + ")\r\n";
        }
    }
    return finish(std::move(out), imap::tagged(c.tag, status::ok, "STORE completed"), c.uid);
}

imap::outcome executor::cmd_copy(const imap::command& c)
{
    const auto& a = std::get<imap::copy_args>(c.args);
    const bool move = c.verb == imap::verb::move;
    const std::string verb(imap::verb_name(c.verb));
    if (move && read_only_)
        return finish({}, imap::tagged(c.tag, status::no, response_code::cannot, "The mailbox is read-only"));
    const auto name = folder_name(a.mailbox);
    if (!name)
        return finish({}, imap::tagged(c.tag, status::no, response_code::cannot, "Invalid mailbox name"));
    const auto idx = messages_in(a.set, c.uid);
    if (!idx)
        return finish({}, imap::tagged(c.tag, status::bad, response_code::clientbug, "Invalid message sequence number"));
    const auto uids = uids_of(*idx);
    auto r = move ? store_.move(*view_, uids, *name) : store_.copy(*view_, uids, *name);
    if (!r)
        return finish({}, refusal(c.tag, r.error(), response_code::trycreate));
    std::string code;
    if (!r->uids.empty()) { // RFC 4315 3 COPYUID: source and target UIDs in the same order
        std::vector<std::uint32_t> from, to;
        for (const auto& [s, t] : r->uids) {
            from.push_back(s);
            to.push_back(t);
        }
        code = "[COPYUID " + std::to_string(r->uidvalidity) + " " + compact_set(from) + " " + compact_set(to) + "] ";
    }
    if (!move)
        return finish({}, c.tag + " OK " + code + "COPY completed\r\n");
    // RFC 6851 4.3: COPYUID in an untagged OK before the EXPUNGEs.
    std::string out = code.empty() ? std::string() : "* OK " + code + "Moved\r\n";
    out += expunge_lines(r->expunged);
    return finish(std::move(out), imap::tagged(c.tag, status::ok, verb + " completed"));
}

} // namespace postern::imapd
