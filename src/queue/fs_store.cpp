#include "postern/queue/fs_store.hpp"

#include <algorithm>
#include <cerrno>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <unistd.h>

#include "postern/log/log.hpp"
#include "postern/util/atomic_write.hpp"
#include "postern/util/id.hpp"
#include "postern/util/strings.hpp"

namespace postern::queue {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view env_suffix = ".env";

// The first line of an entry file: the envelope as written at commit.
util::result<std::string> read_first_line(const std::string& path)
{
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return util::last_os_error();
    std::string out;
    char buf[16384];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ::close(fd);
            // No newline at all: a truncated or foreign file.
            return n < 0 ? util::last_os_error() : util::make_error_code(util::errc::corrupt);
        }
        std::string_view chunk(buf, static_cast<std::size_t>(n));
        auto nl = chunk.find('\n');
        out.append(chunk.substr(0, nl));
        if (nl != std::string_view::npos)
            break;
        if (out.size() > (16u << 20)) { // no envelope is that large
            ::close(fd);
            return util::errc::corrupt;
        }
    }
    ::close(fd);
    return out;
}

} // namespace

fs_store::fs_store(std::string spool_dir) : dir_(std::move(spool_dir)) {}

void fs_store::open()
{
    fs::create_directories(dir_ + "/incoming");
    fs::create_directories(dir_ + "/corrupt");
    fs::create_directories(dir_ + "/free");
    for (unsigned i = 0; i < 256; ++i)
        fs::create_directories(dir_ + "/queue/" + util::hex(i, 2));
    // Owner only: the spool itself is passable by local users (0711, for
    // pickup/), its queue is not theirs to list.
    for (const char* d : {"/incoming", "/corrupt", "/free", "/queue"})
        fs::permissions(dir_ + d, fs::perms::owner_all, fs::perm_options::replace);
    // Promise 1: whatever is in incoming/ never got its 250.
    std::size_t purged = 0;
    for (const auto& e : fs::directory_iterator(dir_ + "/incoming")) {
        fs::remove_all(e.path());
        ++purged;
    }
    if (purged > 0)
        log::warn("spool_purge").kv("dir", dir_ + "/incoming").kv("entries", purged);
    if (auto r = util::fsync_dir(dir_ + "/incoming"); !r)
        throw std::system_error(r.error(), dir_ + "/incoming");
    purge_leftovers();
    scan(nullptr);
    std::lock_guard lk(mu_);
    free_.clear();
    for (const auto& e : fs::directory_iterator(dir_ + "/free")) {
        if (free_.size() < max_free && e.is_regular_file())
            free_.push_back(e.path().filename().string());
        else
            fs::remove_all(e.path());
    }
}

// What a crash can leave in queue/<xx>/ besides whole entries: the temp file
// of an update() killed before its rename (never durable, never read), and
// the later envelope of an entry remove() took away before the kill let it
// delete the envelope too. Both are garbage; only open() may remove them,
// while no update() is in flight.
void fs_store::purge_leftovers()
{
    std::size_t purged = 0;
    std::error_code ec;
    for (const auto& bucket : fs::directory_iterator(dir_ + "/queue", ec)) {
        std::vector<fs::path> doomed;
        for (const auto& e : fs::directory_iterator(bucket.path(), ec)) {
            const auto name = e.path().filename().string();
            const bool tmp = name.starts_with(".tmp.");
            const bool orphan_env = name.size() == 16 + env_suffix.size() && name.ends_with(env_suffix) &&
                                    util::is_queue_id(std::string_view(name).substr(0, 16)) &&
                                    !fs::exists(bucket.path() / name.substr(0, 16));
            if (tmp || orphan_env)
                doomed.push_back(e.path());
        }
        for (const auto& d : doomed) {
            std::error_code ignored;
            fs::remove(d, ignored);
            ++purged;
        }
    }
    if (purged > 0)
        log::warn("spool_purge").kv("dir", dir_ + "/queue").kv("entries", purged)
            .kv("what", "unfinished updates and envelopes of removed entries");
}

std::string fs_store::bucket_dir(std::string_view id) const
{
    return dir_ + "/queue/" + std::string(id.substr(id.size() - 2));
}

std::string fs_store::entry_path(std::string_view id) const
{
    return bucket_dir(id) + "/" + std::string(id);
}

std::string fs_store::take_free()
{
    std::lock_guard lk(mu_);
    if (free_.empty())
        return {};
    auto name = dir_ + "/free/" + free_.back();
    free_.pop_back();
    return name;
}

std::vector<util::result<void>> fs_store::commit(std::span<new_message> batch)
{
    std::vector<util::result<void>> out(batch.size());
    std::vector<std::size_t> rename_of(batch.size(), SIZE_MAX);
    util::durable_batch b;
    for (std::size_t i = 0; i < batch.size(); ++i) {
        auto& m = batch[i];
        if (!util::is_queue_id(m.meta.id)) {
            out[i] = util::errc::syntax;
            continue;
        }
        std::string env = encode_envelope(m.meta);
        std::vector<std::string_view> parts;
        parts.reserve(m.parts.size() + 2);
        parts.push_back(env);
        parts.push_back("\n");
        parts.insert(parts.end(), m.parts.begin(), m.parts.end());
        std::string tmp = dir_ + "/incoming/" + m.meta.id;
        if (auto r = b.write(tmp, parts, take_free()); !r) {
            out[i] = r.error() == std::errc::file_exists ? util::make_error_code(util::errc::exists)
                                                         : r.error();
            continue;
        }
        rename_of[i] = b.rename(tmp, entry_path(m.meta.id));
    }
    auto done = b.commit();
    for (std::size_t i = 0; i < batch.size(); ++i) {
        if (rename_of[i] == SIZE_MAX)
            continue;
        if (!done)
            out[i] = done.error();
        else if ((*done)[rename_of[i]])
            out[i] = (*done)[rename_of[i]];
        if (!out[i])
            ::unlink((dir_ + "/incoming/" + batch[i].meta.id).c_str());
    }
    return out;
}

void fs_store::scan(std::vector<std::string>* ids)
{
    std::set<std::string, std::less<>> envs;
    std::error_code ec;
    for (const auto& bucket : fs::directory_iterator(dir_ + "/queue", ec)) {
        for (const auto& e : fs::directory_iterator(bucket.path(), ec)) {
            auto name = e.path().filename().string();
            if (util::is_queue_id(name)) {
                if (ids)
                    ids->push_back(std::move(name));
            } else if (name.size() == 16 + env_suffix.size() && name.ends_with(env_suffix) &&
                       util::is_queue_id(std::string_view(name).substr(0, 16))) {
                envs.insert(name.substr(0, 16));
            }
        }
    }
    std::lock_guard lk(mu_);
    has_env_ = std::move(envs);
}

bool fs_store::has_env(std::string_view id)
{
    std::lock_guard lk(mu_);
    return has_env_.find(id) != has_env_.end();
}

util::result<std::vector<std::string>> fs_store::list()
{
    std::vector<std::string> ids;
    std::error_code ec;
    fs::directory_iterator probe(dir_ + "/queue", ec);
    if (ec)
        return ec;
    scan(&ids);
    std::sort(ids.begin(), ids.end());
    return ids;
}

void fs_store::quarantine(std::string_view id)
{
    std::error_code ec;
    const std::string to = dir_ + "/corrupt/" + std::string(id);
    fs::rename(entry_path(id), to, ec);
    std::error_code ignored;
    fs::rename(entry_path(id) + std::string(env_suffix), to + std::string(env_suffix), ignored);
    log::error("quarantine").kv("id", id).kv("result", ec ? ec.message() : "moved to corrupt/");
}

util::result<entry> fs_store::decode_checked(std::string_view id, util::result<std::string> text)
{
    if (!text) {
        if (text.error() == util::errc::corrupt)
            quarantine(id);
        return text.error();
    }
    auto e = decode_envelope(*text);
    if (!e && e.error() == util::errc::unsupported_version) {
        // Written by a newer postern: refuse it but leave it where it is, so
        // that version can still deliver it (DESIGN "Data on disk").
        log::error("queue_version").kv("id", id).kv("error", e.error().message());
        return e.error();
    }
    if (!e || e->id != id) {
        quarantine(id);
        return e ? util::make_error_code(util::errc::corrupt) : e.error();
    }
    return e;
}

util::result<entry> fs_store::load(std::string_view id)
{
    if (!util::is_queue_id(id))
        return util::errc::syntax;
    // The latest envelope: the .env written by update(), else the entry's first line.
    if (has_env(id))
        return decode_checked(id, util::read_file(entry_path(id) + std::string(env_suffix)));
    return decode_checked(id, read_first_line(entry_path(id)));
}

util::result<loaded_entry> fs_store::load_full(std::string_view id)
{
    if (!util::is_queue_id(id))
        return util::errc::syntax;
    auto all = util::read_file(entry_path(id));
    if (!all)
        return all.error();
    auto nl = all->find('\n');
    if (nl == std::string::npos) {
        quarantine(id);
        return util::errc::corrupt;
    }
    auto meta = has_env(id) ? decode_checked(id, util::read_file(entry_path(id) + std::string(env_suffix)))
                            : decode_checked(id, all->substr(0, nl));
    if (!meta)
        return meta.error();
    all->erase(0, nl + 1);
    return loaded_entry{std::move(*meta), std::move(*all)};
}

util::result<std::string> fs_store::read_message(std::string_view id)
{
    if (!util::is_queue_id(id))
        return util::errc::syntax;
    auto all = util::read_file(entry_path(id));
    if (!all)
        return all;
    auto nl = all->find('\n');
    if (nl == std::string::npos)
        return util::errc::corrupt;
    all->erase(0, nl + 1);
    return all;
}

util::result<void> fs_store::update(const entry& e)
{
    if (!util::is_queue_id(e.id))
        return util::errc::syntax;
    if (::access(entry_path(e.id).c_str(), F_OK) != 0)
        return util::last_os_error(); // no such entry: do not leave an orphan .env
    auto r = util::atomic_write(bucket_dir(e.id), e.id + std::string(env_suffix), encode_envelope(e));
    if (r) {
        std::lock_guard lk(mu_);
        has_env_.insert(e.id);
    }
    return r;
}

util::result<void> fs_store::remove(std::string_view id)
{
    if (!util::is_queue_id(id))
        return util::errc::syntax;
    const auto path = entry_path(id);
    // The entry goes first, its later envelope after: a crash in between
    // leaves an orphan .env that open() purges. The other order would bring
    // back the entry's first line, every recipient pending, and deliver
    // again what was already sent.
    auto r = remove_entry_file(id, path);
    if (!r)
        return r;
    if (has_env(id)) {
        if (::unlink((path + std::string(env_suffix)).c_str()) != 0 && errno != ENOENT)
            return util::last_os_error();
        std::lock_guard lk(mu_);
        has_env_.erase(has_env_.find(id));
    }
    return {};
}

util::result<void> fs_store::remove_entry_file(std::string_view id, const std::string& path)
{
    {
        std::lock_guard lk(mu_);
        if (free_.size() < max_free) {
            auto name = std::to_string(++free_seq_) + "." + std::string(id);
            auto to = dir_ + "/free/" + name;
            if (::rename(path.c_str(), to.c_str()) == 0) {
                // Delivered mail does not linger in the spool: the blocks go,
                // the inode stays for the next message.
                (void)::truncate(to.c_str(), 0);
                free_.push_back(std::move(name));
                return {};
            }
            if (errno == ENOENT)
                return {};
        }
    }
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        return util::last_os_error();
    return {};
}

} // namespace postern::queue
