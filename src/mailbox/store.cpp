#include "postern/mailbox/store.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <limits>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "postern/mailbox/line_ends.hpp"
#include "postern/mailbox/lock.hpp"
#include "postern/mailbox/maildir.hpp"
#include "postern/mailbox/uid_index.hpp"
#include "postern/util/atomic_write.hpp"
#include "postern/util/error.hpp"
#include "postern/util/id.hpp"
#include "postern/util/strings.hpp"

namespace postern::mailbox {

namespace {

// Maildir spec: "2," then the flags in ASCII order.
constexpr std::string_view info_prefix = ":2,";
// Maildir++: an empty file marking a subfolder (Courier, Dovecot).
constexpr std::string_view folder_marker = "maildirfolder";
constexpr std::string_view subscriptions_file = "subscriptions";
constexpr std::string_view subscriptions_lock_file = "postern-subscriptions.lock";
// A deleted folder is renamed to this (no leading '.': never listed) first,
// so it vanishes at once, then removed.
constexpr std::string_view deleted_prefix = "postern-deleted.";

std::string join(const std::string& dir, std::string_view name)
{
    return dir + "/" + std::string(name);
}

// ENOENT is a file moved or removed by someone else: errc::not_found.
std::error_code os_error()
{
    if (errno == ENOENT)
        return util::make_error_code(util::errc::not_found);
    return util::last_os_error();
}

bool is_dir(const std::string& path)
{
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

util::result<void> make_dir(const std::string& path)
{
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST)
        return util::last_os_error();
    return {};
}

// mkdir -p of path, then its tmp/ new/ cur/.
util::result<void> make_maildir(const std::string& path)
{
    for (std::size_t pos = is_dir(path) ? std::string::npos : 1; pos != std::string::npos;) {
        pos = path.find('/', pos + 1);
        if (auto r = make_dir(path.substr(0, pos)); !r)
            return r;
    }
    for (const char* sub : {"tmp", "new", "cur"})
        if (auto r = make_dir(join(path, sub)); !r)
            return r;
    return {};
}

// A new Maildir++ subfolder: errc::exists when the directory is there.
util::result<void> make_folder(const std::string& path)
{
    if (::mkdir(path.c_str(), 0700) != 0)
        return errno == EEXIST ? util::make_error_code(util::errc::exists) : util::last_os_error();
    if (auto r = make_maildir(path); !r)
        return r;
    const int fd = ::open(join(path, folder_marker).c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        ::close(fd);
    return {};
}

// The decoded names of the Maildir++ folders below root, sorted: entries
// that begin with '.', decode to a valid name, and are Maildirs. POP3's
// ".postern-lock", the index and subscription files are plain files and
// fail the test. At most max entries.
std::vector<std::string> folders_on_disk(const std::string& root, std::size_t max)
{
    std::vector<std::string> out;
    DIR* d = ::opendir(root.c_str());
    if (d == nullptr)
        return out;
    while (const dirent* e = ::readdir(d)) {
        if (out.size() >= max)
            break;
        const std::string entry(e->d_name);
        auto name = folder_name_of_dir(entry);
        if (!name)
            continue;
        const std::string path = join(root, entry);
        if (!is_dir(join(path, "cur")) && !is_dir(join(path, "new")))
            continue;
        out.push_back(std::move(*name));
    }
    ::closedir(d);
    std::sort(out.begin(), out.end());
    return out;
}

// The folder's messages with names the index can hold, each unique once.
util::result<std::vector<message>> scan(const std::string& path)
{
    auto all = listing(path); // opens no file: sizes come from the index
    if (!all)
        return all;
    std::vector<message> out;
    out.reserve(all->size());
    std::unordered_set<std::string> seen;
    for (auto& m : *all)
        if (valid_unique(m.unique) && seen.insert(m.unique).second)
            out.push_back(std::move(m));
    return out;
}

bool in_new(std::string_view file) noexcept
{
    return file.starts_with("new/");
}

message_info info_of(const message& m, const index_entry& e)
{
    message_info i;
    i.uid = e.uid;
    i.unique = m.unique;
    i.file = m.file;
    i.size = e.size.value_or(m.file_size); // unknown only while its file moves (refresh)
    i.flags = m.flags;
    i.keywords = e.keywords;
    i.internal_date = m.delivered;
    i.recent = in_new(m.file);
    return i;
}

// The RFC 5322 size of m (RFC 9051 2.3.4), found once when it gets its UID
// (or when a version 1 index is upgraded): from its name, or by reading
// it (maildir.hpp rfc5322_size). A file that cannot be read counts as
// stored, as reading it for FETCH fails the same way. nullopt: moved or
// removed since the scan (the next refresh finds it again).
std::optional<std::uint64_t> size_of(const std::string& path, const message& m)
{
    auto size = rfc5322_size(path, m);
    if (size)
        return *size;
    if (size.error() == util::errc::not_found)
        return std::nullopt;
    return m.file_size;
}

// The folder as the index and the disk agree on it now.
struct folder_state {
    uid_index index;
    std::vector<message_info> messages; // ascending uid
    bool rebuilt = false;               // the index was corrupt
};

// Reads the index, rescans the folder, gives new files UIDs, drops entries
// of vanished files, writes the index if anything changed. The caller holds
// the folder's index lock.
util::result<folder_state> refresh(const std::string& root, const std::string& path, std::int64_t now)
{
    auto read = read_index(path);
    if (!read)
        return read.error();
    folder_state st;
    bool dirty = read->state != index_state::loaded;
    if (read->state == index_state::loaded) {
        st.index = std::move(read->index);
    } else {
        auto validity = allocate_uidvalidity(root, now, read->old_uidvalidity);
        if (!validity)
            return validity.error();
        st.index.uidvalidity = *validity;
        st.rebuilt = read->state == index_state::corrupt;
    }
    auto first = scan(path);
    if (!first)
        return first.error();
    if (first->size() > max_messages)
        return util::errc::limit;
    std::unordered_map<std::string_view, const message*> files;
    for (const auto& m : *first)
        files.emplace(m.unique, &m);
    // readdir may miss an entry renamed meanwhile (POP3, another tool): an
    // indexed message counts as gone only when a second scan agrees.
    std::vector<message> second;
    const bool missing = std::any_of(st.index.entries.begin(), st.index.entries.end(),
                                     [&](const index_entry& e) { return !files.contains(e.unique); });
    if (missing) {
        auto again = scan(path);
        if (!again)
            return again.error();
        second = std::move(*again);
        for (const auto& m : second)
            files.emplace(m.unique, &m); // keeps the first scan's entry where both have one
    }
    std::vector<index_entry> kept;
    kept.reserve(st.index.entries.size());
    std::unordered_set<std::string_view> indexed;
    for (auto& e : st.index.entries) {
        const auto f = files.find(e.unique);
        if (f == files.end()) {
            dirty = true; // expunged behind our back
            continue;
        }
        if (!e.size) { // a version 1 entry
            e.size = size_of(path, *f->second);
            dirty = true;
        }
        st.messages.push_back(info_of(*f->second, e));
        kept.push_back(std::move(e));
        indexed.insert(f->second->unique);
    }
    st.index.entries = std::move(kept);
    // New files, in snapshot order: delivery time, then name.
    for (const auto* list : {&*first, &second})
        for (const auto& m : *list) {
            if (indexed.contains(m.unique))
                continue;
            if (st.index.uidnext == std::numeric_limits<std::uint32_t>::max())
                return util::errc::limit; // RFC 9051 2.3.1.1: would need a new UIDVALIDITY
            const auto size = size_of(path, m);
            if (!size)
                continue; // renamed this instant: given its UID next time, under its new name
            index_entry e{st.index.uidnext++, m.unique, {}, size};
            st.messages.push_back(info_of(m, e));
            st.index.entries.push_back(std::move(e));
            indexed.insert(m.unique);
            dirty = true;
        }
    if (dirty)
        if (auto w = write_index(path, st.index); !w)
            return w.error();
    return st;
}

// Runs f() holding the folder's index lock.
template <class F>
auto locked(const std::string& path, F&& f) -> decltype(f())
{
    auto held = lock::wait(join(path, index_lock_file));
    if (!held)
        return held.error();
    return f();
}

const message_info* find_uid(const std::vector<message_info>& v, std::uint32_t uid) noexcept
{
    auto it = std::lower_bound(v.begin(), v.end(), uid, [](const message_info& m, std::uint32_t u) { return m.uid < u; });
    return it != v.end() && it->uid == uid ? &*it : nullptr;
}

bool is_system_letter(char c) noexcept
{
    return std::any_of(system_flags.begin(), system_flags.end(), [c](const flag_spec& f) { return f.letter == c; });
}

std::string sorted_letters(std::string s)
{
    std::sort(s.begin(), s.end());
    s.erase(std::unique(s.begin(), s.end()), s.end());
    return s;
}

// The info letters after a STORE: other letters (P, keyword letters of
// other tools) are kept whatever the change.
std::string changed_letters(const std::string& current, flag_change how, const std::string& letters)
{
    std::string out;
    switch (how) {
    case flag_change::replace:
        for (char c : current)
            if (!is_system_letter(c))
                out.push_back(c);
        out += letters;
        break;
    case flag_change::add:
        out = current + letters;
        break;
    case flag_change::remove:
        for (char c : current)
            if (letters.find(c) == std::string::npos)
                out.push_back(c);
        break;
    }
    return sorted_letters(std::move(out));
}

bool contains_keyword(const std::vector<std::string>& v, std::string_view k)
{
    return std::any_of(v.begin(), v.end(), [&](const std::string& x) { return util::iequals(x, k); });
}

std::vector<std::string> changed_keywords(const std::vector<std::string>& current, flag_change how,
                                          const std::vector<std::string>& keywords)
{
    std::vector<std::string> out;
    switch (how) {
    case flag_change::replace:
        out = keywords;
        break;
    case flag_change::add:
        out = current;
        for (const auto& k : keywords)
            if (!contains_keyword(out, k) && out.size() < max_keywords)
                out.push_back(k);
        break;
    case flag_change::remove:
        for (const auto& k : current)
            if (!contains_keyword(keywords, k))
                out.push_back(k);
        break;
    }
    return out;
}

std::string cur_name(std::string_view unique, std::string_view letters)
{
    return "cur/" + std::string(unique) + std::string(info_prefix) + std::string(letters);
}

// Where a message is now, by its unique name (its file may have been
// renamed since the caller looked); errc::not_found when gone.
util::result<message> locate(const std::string& path, std::string_view unique)
{
    auto all = scan(path);
    if (!all)
        return all.error();
    for (auto& m : *all)
        if (m.unique == unique)
            return std::move(m);
    return util::errc::not_found;
}

// rename() that never replaces (two stores never lose a message to one name).
util::result<void> rename_new(const std::string& from, const std::string& to)
{
    if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) != 0)
        return errno == EEXIST ? util::make_error_code(util::errc::exists) : os_error();
    return {};
}

// Writes the message durably to dir/tmp/<unique>, mtime `when`, and renames
// it to dir/<final_file> (Maildir spec: tmp/ first, then a rename).
util::result<void> deliver_bytes(const std::string& dir, const std::string& unique, const std::string& final_file,
                                 std::string_view bytes, std::int64_t when)
{
    const std::string tmp = join(dir, "tmp/" + unique);
    util::durable_batch batch;
    const std::string_view parts[] = {bytes};
    if (auto w = batch.write(tmp, parts); !w)
        return w;
    // RFC 9051 2.3.3: the internal date is the file's mtime (set before the
    // commit's fsync, so it is as durable as the data).
    const struct timespec times[2] = {{when, 0}, {when, 0}};
    if (::utimensat(AT_FDCWD, tmp.c_str(), times, 0) != 0) {
        const auto ec = util::last_os_error();
        ::unlink(tmp.c_str());
        return ec;
    }
    batch.rename(tmp, join(dir, final_file));
    auto done = batch.commit();
    std::error_code ec = done ? (*done)[0] : done.error();
    if (ec) {
        ::unlink(tmp.c_str());
        return ec;
    }
    return {};
}

// Copies or moves one message file to target/<file>: a hard link (COPY; the
// Maildir file is never rewritten, so sharing the inode is safe and keeps the
// internal date) or a rename (MOVE), or bytes written anew across file systems.
util::result<void> transfer_file(const std::string& src, const std::string& target, const std::string& unique,
                                 const std::string& file, bool move)
{
    const std::string dst = join(target, file);
    if (move ? ::renameat2(AT_FDCWD, src.c_str(), AT_FDCWD, dst.c_str(), RENAME_NOREPLACE) == 0
             : ::link(src.c_str(), dst.c_str()) == 0)
        return {};
    if (errno != EXDEV && errno != EPERM && errno != EMLINK)
        return errno == EEXIST ? util::make_error_code(util::errc::exists) : os_error();
    struct stat st {};
    if (::stat(src.c_str(), &st) != 0)
        return os_error();
    auto bytes = util::read_file(src);
    if (!bytes)
        return bytes.error();
    if (auto w = deliver_bytes(target, unique, file, *bytes, st.st_mtime); !w)
        return w;
    if (move)
        ::unlink(src.c_str());
    return {};
}

// The EXPUNGE responses for removing `gone` from view (descending sequence
// numbers, RFC 9051 7.5.1), and the removal.
std::vector<expunged_message> drop_from_view(std::vector<message_info>& messages,
                                             const std::unordered_set<std::uint32_t>& gone)
{
    std::vector<expunged_message> out;
    for (std::size_t i = messages.size(); i-- > 0;)
        if (gone.contains(messages[i].uid))
            out.push_back({messages[i].uid, i + 1});
    std::erase_if(messages, [&](const message_info& m) { return gone.contains(m.uid); });
    return out;
}

std::string escaped_host(std::string_view host)
{
    // Maildir spec: '/' and ':' in the host part as \057 and \072; white
    // space and controls could not be indexed, so they go too.
    std::string out;
    for (char c : host) {
        if (c == '/')
            out += "\\057";
        else if (c == ':')
            out += "\\072";
        else if (static_cast<unsigned char>(c) > 0x20 && c != 0x7f)
            out.push_back(c);
    }
    return out.empty() ? "localhost" : out;
}

std::atomic<std::uint64_t> unique_counter{0};

} // namespace

util::result<flag_set> parse_flags(std::span<const std::string_view> names)
{
    flag_set out;
    for (auto n : names) {
        if (n.starts_with('\\')) {
            const auto f = std::find_if(system_flags.begin(), system_flags.end(),
                                        [&](const flag_spec& s) { return util::iequals(s.name, n); });
            if (f == system_flags.end())
                return util::errc::syntax; // \Recent, or unknown
            out.letters.push_back(f->letter);
            continue;
        }
        if (!valid_keyword(n))
            return util::errc::syntax;
        if (contains_keyword(out.keywords, n))
            continue;
        if (out.keywords.size() == max_keywords)
            return util::errc::limit;
        out.keywords.emplace_back(n);
    }
    out.letters = sorted_letters(std::move(out.letters));
    return out;
}

std::vector<std::string> flag_names(std::string_view letters, const std::vector<std::string>& keywords)
{
    std::vector<std::string> out;
    for (const auto& f : system_flags)
        if (letters.find(f.letter) != std::string_view::npos)
            out.emplace_back(f.name);
    out.insert(out.end(), keywords.begin(), keywords.end());
    return out;
}

bool message_info::has(char letter) const noexcept
{
    return flags.find(letter) != std::string::npos;
}

const message_info* folder_view::find(std::uint32_t uid) const noexcept
{
    return find_uid(messages_, uid);
}

std::size_t folder_view::seq_of(std::uint32_t uid) const noexcept
{
    const auto* m = find(uid);
    return m == nullptr ? 0 : static_cast<std::size_t>(m - messages_.data()) + 1;
}

store::store(std::string root, const util::clock& clock, store_options options)
    : root_(std::move(root)), clock_(&clock), options_(std::move(options))
{
}

std::string store::new_unique() const
{
    // Maildir spec / Dovecot style: "<sec>.M<usec>P<pid>Q<n>.<host>" — the
    // pid keeps processes apart, the counter the calls of this one.
    const auto now = clock_->now().time_since_epoch();
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now).count();
    return std::to_string(us / 1000000) + ".M" + std::to_string(us % 1000000) + "P" + std::to_string(::getpid()) +
           "Q" + std::to_string(++unique_counter) + "." + escaped_host(options_.host);
}

util::result<std::string> store::folder_path(std::string_view name, bool create_special) const
{
    auto canonical = canonical_folder_name(name);
    if (!canonical)
        return canonical;
    auto dir = folder_dir(*canonical);
    if (!dir)
        return dir;
    if (dir->empty()) { // INBOX always exists
        if (auto r = make_maildir(root_); !r)
            return r.error();
        return root_;
    }
    const std::string path = join(root_, *dir);
    if (is_dir(path)) {
        if (auto r = make_maildir(path); !r) // a Maildir++ folder missing tmp/ new/ or cur/
            return r.error();
        return path;
    }
    if (!create_special || special_use_of(*canonical) == special_use::none)
        return util::errc::not_found;
    if (auto r = make_maildir(root_); !r)
        return r.error();
    if (auto r = make_folder(path); !r && r.error() != util::errc::exists)
        return r.error();
    return path;
}

util::result<std::vector<folder_entry>> store::list(std::string_view pattern, bool subscribed_only) const
{
    std::map<std::string, folder_entry> all;
    auto add = [&](const std::string& name, bool nonexistent) {
        auto [it, fresh] = all.try_emplace(name);
        if (fresh || !nonexistent) {
            it->second.name = name;
            it->second.use = special_use_of(name);
            it->second.nonexistent = nonexistent;
        }
    };
    add("INBOX", false);
    for (auto u : {special_use::sent, special_use::drafts, special_use::trash, special_use::junk})
        add(std::string(special_use_name(u)), false);
    for (const auto& n : folders_on_disk(root_, options_.max_folders))
        add(n, false);
    // Parents that are no folder themselves: \NonExistent.
    std::vector<std::string> parents;
    for (const auto& [name, e] : all)
        for (auto dot = name.find(separator); dot != std::string::npos; dot = name.find(separator, dot + 1))
            parents.push_back(name.substr(0, dot));
    for (const auto& p : parents)
        add(p, true);
    auto subs = subscriptions();
    if (!subs)
        return subs.error();
    const std::set<std::string> subscribed(subs->begin(), subs->end());
    for (auto& [name, e] : all) {
        const auto child = all.lower_bound(name + separator);
        e.has_children = child != all.end() && child->first.starts_with(name + separator);
        e.subscribed = subscribed.contains(name);
    }
    std::vector<folder_entry> out;
    if (subscribed_only) {
        for (const auto& s : subscribed) {
            if (!pattern_matches(pattern, s))
                continue;
            const auto it = all.find(s);
            folder_entry e = it != all.end() ? it->second : folder_entry{s, special_use_of(s), true, false, true};
            out.push_back(std::move(e));
        }
    } else {
        for (const auto& [name, e] : all) {
            if (!pattern_matches(pattern, name))
                continue;
            if (e.nonexistent) {
                // Shown only when the pattern stops above its descendants ("%").
                bool descendant_matches = false;
                for (auto it = all.upper_bound(name); it != all.end() && it->first.starts_with(name + separator); ++it)
                    descendant_matches = descendant_matches || (!it->second.nonexistent && pattern_matches(pattern, it->first));
                if (descendant_matches)
                    continue;
            }
            out.push_back(e);
        }
    }
    std::stable_partition(out.begin(), out.end(), [](const folder_entry& e) { return e.name == "INBOX"; });
    return out;
}

util::result<void> store::create(std::string_view name)
{
    auto canonical = canonical_folder_name(name);
    if (!canonical)
        return canonical.error();
    // INBOX and the special-use folders exist for every user (LIST shows
    // them) even before they are on disk: CREATE of one is ALREADYEXISTS.
    if (is_inbox(*canonical) || special_use_of(*canonical) != special_use::none)
        return util::errc::exists;
    if (auto r = make_maildir(root_); !r)
        return r;
    // RFC 9051 6.3.4: superior names are created as needed.
    std::vector<std::string> missing;
    for (auto dot = canonical->find(separator);; dot = canonical->find(separator, dot + 1)) {
        const std::string part = canonical->substr(0, dot);
        if (!is_inbox(part)) {
            auto dir = folder_dir(part);
            if (!dir)
                return dir.error();
            if (!is_dir(join(root_, *dir)))
                missing.push_back(join(root_, *dir));
            else if (dot == std::string::npos)
                return util::errc::exists;
        }
        if (dot == std::string::npos)
            break;
    }
    if (folders_on_disk(root_, options_.max_folders + 1).size() + missing.size() > options_.max_folders)
        return util::errc::limit;
    for (const auto& path : missing)
        if (auto r = make_folder(path); !r && r.error() != util::errc::exists)
            return r;
    return util::fsync_dir(root_);
}

util::result<void> store::remove(std::string_view name)
{
    auto canonical = canonical_folder_name(name);
    if (!canonical)
        return canonical.error();
    if (is_inbox(*canonical))
        return util::errc::refused; // RFC 9051 6.3.5: deleting INBOX is an error
    auto dir = folder_dir(*canonical);
    if (!dir)
        return dir.error();
    const std::string path = join(root_, *dir);
    if (!is_dir(path))
        return util::errc::not_found;
    // One rename makes it vanish for every session; the files go after.
    const std::string doomed = join(root_, std::string(deleted_prefix) + util::make_session_id());
    if (::rename(path.c_str(), doomed.c_str()) != 0)
        return os_error();
    // Deleted for IMAP from here on. A session still writing its index in
    // there can make remove_all() fail: try again, then leave the remains
    // (never listed: no leading '.') rather than fail a DELETE that happened.
    std::error_code ec;
    if (std::filesystem::remove_all(doomed, ec); ec)
        std::filesystem::remove_all(doomed, ec);
    return util::fsync_dir(root_);
}

util::result<void> store::rename(std::string_view from, std::string_view to)
{
    auto source = canonical_folder_name(from);
    if (!source)
        return source.error();
    auto target = canonical_folder_name(to);
    if (!target)
        return target.error();
    if (is_inbox(*target) || special_use_of(*target) != special_use::none || *source == *target)
        return util::errc::exists; // as for create(): these always exist
    auto to_dir = folder_dir(*target);
    if (!to_dir)
        return to_dir.error();
    if (is_inbox(*source)) {
        if (is_dir(join(root_, *to_dir)))
            return util::errc::exists;
        return rename_inbox(*to_dir);
    }
    auto from_dir = folder_dir(*source);
    if (!from_dir)
        return from_dir.error();
    if (!is_dir(join(root_, *from_dir)))
        return util::errc::not_found;
    // The folder and its inferiors (RFC 9051 6.3.6); modified UTF-7 encodes
    // name by name, so "A.B" on disk begins with A's own encoding.
    std::vector<std::pair<std::string, std::string>> moves;
    for (const auto& n : folders_on_disk(root_, options_.max_folders)) {
        auto d = folder_dir(n);
        if (!d || (*d != *from_dir && !d->starts_with(*from_dir + separator)))
            continue;
        const std::string new_dir = *to_dir + d->substr(from_dir->size());
        if (!folder_name_of_dir(new_dir))
            return new_dir.size() > max_dir_name ? util::errc::too_long : util::errc::limit;
        if (is_dir(join(root_, new_dir)))
            return util::errc::exists;
        moves.emplace_back(*d, new_dir);
    }
    for (const auto& [a, b] : moves)
        if (auto r = rename_new(join(root_, a), join(root_, b)); !r)
            return r;
    return util::fsync_dir(root_);
}

util::result<void> store::rename_inbox(const std::string& to_dir)
{
    // RFC 9051 6.3.6: all of INBOX's messages move to the new folder, which
    // keeps their UIDs under a new UIDVALIDITY; INBOX stays, empty.
    const std::string target = join(root_, to_dir);
    const auto now = util::unix_seconds(clock_->now());
    if (auto r = make_maildir(root_); !r)
        return r;
    return locked(root_, [&]() -> util::result<void> {
        auto inbox = refresh(root_, root_, now);
        if (!inbox)
            return inbox.error();
        if (auto r = make_folder(target); !r)
            return r;
        std::unordered_set<std::string> moved;
        auto done = locked(target, [&]() -> util::result<void> {
            uid_index index;
            auto validity = allocate_uidvalidity(root_, now);
            if (!validity)
                return validity.error();
            index.uidvalidity = *validity;
            index.uidnext = inbox->index.uidnext;
            for (std::size_t i = 0; i < inbox->messages.size(); ++i) {
                const auto& m = inbox->messages[i];
                if (auto r = rename_new(join(root_, m.file), join(target, m.file)); !r) {
                    if (r.error() == util::errc::not_found)
                        continue; // renamed meanwhile: it stays in INBOX
                    return r;
                }
                index.entries.push_back(inbox->index.entries[i]);
                moved.insert(m.unique);
            }
            for (const char* sub : {"new", "cur"})
                if (auto r = util::fsync_dir(join(target, sub)); !r)
                    return r;
            return write_index(target, index);
        });
        std::erase_if(inbox->index.entries, [&](const index_entry& e) { return moved.contains(e.unique); });
        if (auto w = write_index(root_, inbox->index); !w)
            return w;
        if (!done)
            return done;
        return util::fsync_dir(root_);
    });
}

util::result<std::vector<std::string>> store::subscriptions() const
{
    std::vector<std::string> out;
    auto text = util::read_file(join(root_, subscriptions_file));
    if (!text) {
        if (text.error() == std::errc::no_such_file_or_directory)
            return out;
        return text.error();
    }
    for (auto line : util::split(*text, '\n')) {
        auto name = mutf7_decode(util::trim(line));
        if (!name)
            continue; // a damaged line is skipped, never fatal
        auto canonical = canonical_folder_name(*name);
        if (canonical && std::find(out.begin(), out.end(), *canonical) == out.end() &&
            out.size() < 2 * options_.max_folders)
            out.push_back(std::move(*canonical));
    }
    return out;
}

util::result<void> store::write_subscriptions(const std::vector<std::string>& names) const
{
    std::string text;
    for (const auto& n : names) {
        auto encoded = mutf7_encode(n);
        if (!encoded)
            return encoded.error();
        text += *encoded + "\n";
    }
    return util::atomic_write(root_, subscriptions_file, text);
}

util::result<void> store::subscribe(std::string_view name)
{
    auto canonical = canonical_folder_name(name);
    if (!canonical)
        return canonical.error();
    if (auto r = make_maildir(root_); !r)
        return r;
    auto held = lock::wait(join(root_, subscriptions_lock_file));
    if (!held)
        return held.error();
    auto names = subscriptions();
    if (!names)
        return names.error();
    if (std::find(names->begin(), names->end(), *canonical) != names->end())
        return {};
    if (names->size() >= 2 * options_.max_folders)
        return util::errc::limit;
    names->push_back(std::move(*canonical));
    return write_subscriptions(*names);
}

util::result<void> store::unsubscribe(std::string_view name)
{
    auto canonical = canonical_folder_name(name);
    if (!canonical)
        return canonical.error();
    auto held = lock::wait(join(root_, subscriptions_lock_file));
    if (!held)
        return held.error();
    auto names = subscriptions();
    if (!names)
        return names.error();
    const auto n = std::erase(*names, *canonical);
    if (n == 0)
        return {}; // RFC 9051 6.3.8 leaves it to the server; unsubscribing twice is harmless
    return write_subscriptions(*names);
}

util::result<folder_status> store::status(std::string_view name)
{
    auto path = folder_path(name, true);
    if (!path)
        return path.error();
    const auto now = util::unix_seconds(clock_->now());
    auto st = locked(*path, [&] { return refresh(root_, *path, now); });
    if (!st)
        return st.error();
    folder_status s;
    s.messages = static_cast<std::uint32_t>(st->messages.size());
    for (const auto& m : st->messages) {
        s.recent += in_new(m.file) ? 1 : 0;
        s.unseen += m.has('S') ? 0 : 1;
        s.size += m.size;
    }
    s.uidnext = st->index.uidnext;
    s.uidvalidity = st->index.uidvalidity;
    return s;
}

util::result<folder_view> store::open(std::string_view name)
{
    auto path = folder_path(name, true);
    if (!path)
        return path.error();
    const auto now = util::unix_seconds(clock_->now());
    auto st = locked(*path, [&] { return refresh(root_, *path, now); });
    if (!st)
        return st.error();
    folder_view v;
    v.name_ = *canonical_folder_name(name);
    v.path_ = std::move(*path);
    v.uidvalidity_ = st->index.uidvalidity;
    v.uidnext_ = st->index.uidnext;
    v.messages_ = std::move(st->messages);
    v.index_rebuilt_ = st->rebuilt;
    return v;
}

util::result<sync_changes> store::sync(folder_view& view)
{
    const auto now = util::unix_seconds(clock_->now());
    auto st = locked(view.path_, [&] { return refresh(root_, view.path_, now); });
    if (!st)
        return st.error();
    sync_changes changes;
    view.index_rebuilt_ = st->rebuilt;
    view.uidnext_ = st->index.uidnext;
    if (st->index.uidvalidity != view.uidvalidity_) {
        changes.uidvalidity_changed = true;
        view.uidvalidity_ = st->index.uidvalidity;
        view.messages_ = std::move(st->messages);
        return changes;
    }
    std::unordered_set<std::uint32_t> gone;
    for (const auto& m : view.messages_)
        if (find_uid(st->messages, m.uid) == nullptr)
            gone.insert(m.uid);
    changes.expunged = drop_from_view(view.messages_, gone);
    for (auto& m : view.messages_) {
        const auto* now_m = find_uid(st->messages, m.uid);
        if (now_m->flags != m.flags || now_m->keywords != m.keywords)
            changes.flags_changed.push_back(m.uid);
        const bool recent = m.recent;
        m = *now_m;
        m.recent = recent;
    }
    // UIDs only grow, so whatever this view has not seen comes after its last.
    const std::uint32_t last = view.messages_.empty() ? 0 : view.messages_.back().uid;
    for (auto& m : st->messages)
        if (m.uid > last && !gone.contains(m.uid)) {
            view.messages_.push_back(std::move(m));
            ++changes.added;
        }
    return changes;
}

util::result<std::string> store::read(const folder_view& view, std::uint32_t uid) const
{
    const auto* m = view.find(uid);
    if (m == nullptr)
        return util::errc::not_found;
    auto bytes = util::read_file(join(view.path_, m->file));
    if (!bytes && bytes.error() == std::errc::no_such_file_or_directory) {
        auto now = locate(view.path_, m->unique); // its flags changed meanwhile
        if (!now)
            return now.error();
        bytes = util::read_file(join(view.path_, now->file));
    }
    if (!bytes)
        return bytes;
    return to_crlf(std::move(*bytes)); // RFC 9051 2.3.4: in RFC 5322 format, as RFC822.SIZE counts it
}

util::result<append_result> store::append(std::string_view folder, std::string_view bytes, const flag_set& flags,
                                          std::optional<std::int64_t> internal_date)
{
    auto path = folder_path(folder, true);
    if (!path)
        return path.error();
    const auto now = util::unix_seconds(clock_->now());
    std::string letters;
    for (char c : flags.letters)
        if (is_system_letter(c))
            letters.push_back(c);
    const std::string unique = new_unique();
    const std::string file = cur_name(unique, sorted_letters(std::move(letters)));
    return locked(*path, [&]() -> util::result<append_result> {
        auto st = refresh(root_, *path, now);
        if (!st)
            return st.error();
        if (st->index.uidnext == std::numeric_limits<std::uint32_t>::max())
            return util::errc::limit;
        if (auto w = deliver_bytes(*path, unique, file, bytes, internal_date.value_or(now)); !w)
            return w.error();
        const std::uint32_t uid = st->index.uidnext++;
        st->index.entries.push_back({uid, unique, flags.keywords, bytes.size() + bare_lf_count(bytes)});
        if (auto w = write_index(*path, st->index); !w)
            return w.error();
        return append_result{st->index.uidvalidity, uid};
    });
}

util::result<copy_result> store::copy(folder_view& view, std::span<const std::uint32_t> uids, std::string_view to)
{
    return transfer(view, uids, to, false);
}

util::result<copy_result> store::move(folder_view& view, std::span<const std::uint32_t> uids, std::string_view to)
{
    return transfer(view, uids, to, true);
}

util::result<copy_result> store::transfer(folder_view& view, std::span<const std::uint32_t> uids, std::string_view to,
                                          bool move)
{
    auto target = folder_path(to, true);
    if (!target)
        return target.error();
    const auto now = util::unix_seconds(clock_->now());
    const std::unordered_set<std::uint32_t> wanted(uids.begin(), uids.end());
    copy_result out;
    std::unordered_set<std::uint32_t> moved;
    auto done = locked(*target, [&]() -> util::result<void> {
        auto st = refresh(root_, *target, now);
        if (!st)
            return st.error();
        out.uidvalidity = st->index.uidvalidity;
        util::result<void> failed;
        for (const auto& m : view.messages_) {
            if (!wanted.contains(m.uid))
                continue;
            if (st->index.uidnext == std::numeric_limits<std::uint32_t>::max()) {
                failed = util::errc::limit;
                break;
            }
            const std::string unique = new_unique();
            std::string file = cur_name(unique, m.flags);
            auto r = transfer_file(join(view.path_, m.file), *target, unique, file, move);
            if (!r && r.error() == util::errc::not_found) {
                // Renamed since the view saw it (flags changed elsewhere): find it.
                auto now_m = locate(view.path_, m.unique);
                if (!now_m)
                    continue; // gone: the next sync reports it expunged
                file = cur_name(unique, now_m->flags);
                r = transfer_file(join(view.path_, now_m->file), *target, unique, file, move);
            }
            if (!r) {
                failed = r;
                break;
            }
            const std::uint32_t uid = st->index.uidnext++;
            st->index.entries.push_back({uid, unique, m.keywords, m.size}); // the same bytes
            out.uids.emplace_back(m.uid, uid);
            moved.insert(m.uid);
        }
        if (!out.uids.empty()) {
            if (auto s = util::fsync_dir(join(*target, "cur")); !s)
                return s;
            if (auto w = write_index(*target, st->index); !w)
                return w;
        }
        return failed;
    });
    if (move && !moved.empty()) {
        // The source index forgets the moved files (they are gone from it).
        auto src = locked(view.path_, [&] { return refresh(root_, view.path_, now); });
        if (!src)
            return src.error();
        if (view.path_ == *target)
            view.uidnext_ = src->index.uidnext;
        out.expunged = drop_from_view(view.messages_, moved);
    }
    if (!done)
        return done.error();
    return out;
}

util::result<std::vector<std::uint32_t>> store::store_flags(folder_view& view, std::span<const std::uint32_t> uids,
                                                            flag_change how, const flag_set& flags)
{
    const auto now = util::unix_seconds(clock_->now());
    const std::unordered_set<std::uint32_t> wanted(uids.begin(), uids.end());
    std::string letters;
    for (char c : flags.letters)
        if (is_system_letter(c))
            letters.push_back(c);
    letters = sorted_letters(std::move(letters));
    std::vector<std::uint32_t> changed;
    auto done = locked(view.path_, [&]() -> util::result<void> {
        auto st = refresh(root_, view.path_, now);
        if (!st)
            return st.error();
        bool keywords_changed = false;
        for (auto& m : view.messages_) {
            if (!wanted.contains(m.uid))
                continue;
            const auto* cur = find_uid(st->messages, m.uid);
            if (cur == nullptr)
                continue; // gone: the next sync reports it
            std::string new_letters = changed_letters(cur->flags, how, letters);
            std::string file = cur->file;
            if (new_letters != cur->flags) {
                // Maildir spec: flags change by a rename into cur/.
                file = cur_name(cur->unique, new_letters);
                if (::rename(join(view.path_, cur->file).c_str(), join(view.path_, file).c_str()) != 0) {
                    if (errno == ENOENT)
                        continue; // renamed by someone else this instant: the next sync shows it
                    return util::last_os_error();
                }
            }
            auto keywords = changed_keywords(cur->keywords, how, flags.keywords);
            if (keywords != cur->keywords) {
                const auto e = std::lower_bound(st->index.entries.begin(), st->index.entries.end(), m.uid,
                                                [](const index_entry& x, std::uint32_t u) { return x.uid < u; });
                e->keywords = keywords;
                keywords_changed = true;
            }
            if (new_letters != m.flags || keywords != m.keywords)
                changed.push_back(m.uid);
            m.flags = std::move(new_letters);
            m.file = std::move(file);
            m.keywords = std::move(keywords);
        }
        if (keywords_changed)
            return write_index(view.path_, st->index);
        return {};
    });
    if (!done)
        return done.error();
    return changed;
}

util::result<std::vector<expunged_message>> store::expunge(folder_view& view)
{
    return expunge_some(view, nullptr);
}

util::result<std::vector<expunged_message>> store::expunge(folder_view& view, std::span<const std::uint32_t> uids)
{
    const std::vector<std::uint32_t> only(uids.begin(), uids.end());
    return expunge_some(view, &only);
}

util::result<std::vector<expunged_message>> store::expunge_some(folder_view& view,
                                                                const std::vector<std::uint32_t>* only)
{
    const auto now = util::unix_seconds(clock_->now());
    std::unordered_set<std::uint32_t> wanted;
    if (only != nullptr)
        wanted.insert(only->begin(), only->end());
    std::unordered_set<std::uint32_t> gone;
    auto done = locked(view.path_, [&]() -> util::result<void> {
        auto st = refresh(root_, view.path_, now);
        if (!st)
            return st.error();
        for (const auto& m : view.messages_) {
            if (only != nullptr && !wanted.contains(m.uid))
                continue;
            const auto* cur = find_uid(st->messages, m.uid);
            if (cur == nullptr) {
                gone.insert(m.uid); // already gone from disk
                continue;
            }
            // The flags on disk now decide (another session may have changed them).
            if (!cur->has('T'))
                continue;
            if (::unlink(join(view.path_, cur->file).c_str()) != 0 && errno != ENOENT)
                return util::last_os_error();
            gone.insert(m.uid);
        }
        if (gone.empty())
            return {};
        std::erase_if(st->index.entries, [&](const index_entry& e) { return gone.contains(e.uid); });
        return write_index(view.path_, st->index);
    });
    // What was unlinked is gone even when the index write failed.
    auto out = drop_from_view(view.messages_, gone);
    if (!done)
        return done.error();
    return out;
}

} // namespace postern::mailbox
