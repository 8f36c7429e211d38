#include "postern/queue/fs_store.hpp"

#include <algorithm>
#include <cerrno>
#include <dirent.h>
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

std::string bucket_of(std::string_view id)
{
    return std::string(id.substr(id.size() - 2));
}

void remove_entry_files(const std::string& dir)
{
    ::unlink((dir + "/message").c_str());
    ::unlink((dir + "/envelope.json").c_str());
    ::rmdir(dir.c_str());
}

} // namespace

fs_store::fs_store(std::string spool_dir) : dir_(std::move(spool_dir)) {}

void fs_store::open()
{
    fs::create_directories(dir_ + "/incoming");
    fs::create_directories(dir_ + "/corrupt");
    for (int i = 0; i < 256; ++i)
        fs::create_directories(dir_ + "/queue/" + util::hex(static_cast<unsigned>(i), 2));
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
}

std::string fs_store::entry_dir(std::string_view id) const
{
    return dir_ + "/queue/" + bucket_of(id) + "/" + std::string(id);
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
        std::string tmp = dir_ + "/incoming/" + m.meta.id;
        if (::mkdir(tmp.c_str(), 0700) != 0) {
            out[i] = errno == EEXIST ? util::make_error_code(util::errc::exists) : util::last_os_error();
            continue;
        }
        std::vector<std::string_view> parts(m.parts.begin(), m.parts.end());
        std::string env = encode_envelope(m.meta);
        std::string_view env_parts[] = {env};
        auto r = b.write(tmp + "/message", parts);
        if (r)
            r = b.write(tmp + "/envelope.json", env_parts);
        if (!r) {
            out[i] = r.error();
            remove_entry_files(tmp);
            continue;
        }
        rename_of[i] = b.rename(tmp, entry_dir(m.meta.id));
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
            remove_entry_files(dir_ + "/incoming/" + batch[i].meta.id);
    }
    return out;
}

util::result<std::vector<std::string>> fs_store::list()
{
    std::vector<std::string> ids;
    std::error_code ec;
    for (const auto& bucket : fs::directory_iterator(dir_ + "/queue", ec)) {
        for (const auto& e : fs::directory_iterator(bucket.path(), ec)) {
            auto name = e.path().filename().string();
            if (util::is_queue_id(name))
                ids.push_back(std::move(name));
        }
    }
    if (ec)
        return ec;
    std::sort(ids.begin(), ids.end());
    return ids;
}

void fs_store::quarantine(std::string_view id)
{
    std::error_code ec;
    fs::rename(entry_dir(id), dir_ + "/corrupt/" + std::string(id), ec);
    log::error("quarantine").kv("id", id).kv("result", ec ? ec.message() : "moved to corrupt/");
}

util::result<entry> fs_store::load(std::string_view id)
{
    if (!util::is_queue_id(id))
        return util::errc::syntax;
    auto text = util::read_file(entry_dir(id) + "/envelope.json");
    if (!text)
        return text.error();
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

util::result<std::string> fs_store::read_message(std::string_view id)
{
    if (!util::is_queue_id(id))
        return util::errc::syntax;
    return util::read_file(entry_dir(id) + "/message");
}

util::result<void> fs_store::update(const entry& e)
{
    if (!util::is_queue_id(e.id))
        return util::errc::syntax;
    return util::atomic_write(entry_dir(e.id), "envelope.json", encode_envelope(e));
}

util::result<void> fs_store::remove(std::string_view id)
{
    if (!util::is_queue_id(id))
        return util::errc::syntax;
    auto dir = entry_dir(id);
    // The envelope goes first: a half-removed entry has no envelope and is
    // not listed as deliverable work.
    if (::unlink((dir + "/envelope.json").c_str()) != 0 && errno != ENOENT)
        return util::last_os_error();
    ::unlink((dir + "/message").c_str());
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
        return util::last_os_error();
    return {};
}

} // namespace postern::queue
