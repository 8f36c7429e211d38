#include "postern/delivery/maildir.hpp"

#include <cerrno>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

namespace postern::delivery {

namespace {

util::result<void> make_dir(const std::string& d)
{
    if (::mkdir(d.c_str(), 0700) != 0 && errno != EEXIST)
        return util::last_os_error();
    return {};
}

util::result<void> make_dirs(const std::string& path)
{
    // mkdir -p: create each missing component.
    for (std::size_t pos = 1; pos != std::string::npos;) {
        pos = path.find('/', pos + 1);
        auto part = path.substr(0, pos);
        if (auto r = make_dir(part); !r)
            return r;
    }
    return {};
}

bool exists(const std::string& p)
{
    struct stat st{};
    return ::stat(p.c_str(), &st) == 0;
}

bool in_cur(const std::string& dir, const std::string& name)
{
    // A reader may have moved it to cur/ as "<name>:2,<flags>".
    DIR* d = ::opendir((dir + "/cur").c_str());
    if (!d)
        return false;
    bool found = false;
    std::string prefix = name + ":";
    while (auto* e = ::readdir(d)) {
        std::string_view n(e->d_name);
        if (n == name || n.substr(0, prefix.size()) == prefix) {
            found = true;
            break;
        }
    }
    ::closedir(d);
    return found;
}

} // namespace

std::string maildir_name(std::int64_t received_at, std::string_view queue_id, std::string_view host)
{
    std::string out = std::to_string(received_at) + ".Q" + std::string(queue_id) + ".";
    for (char c : host) {
        if (c == '/')
            out += "\\057";
        else if (c == ':')
            out += "\\072";
        else
            out.push_back(c);
    }
    return out;
}

util::result<void> maildir_batch::ensure(const std::string& dir)
{
    if (known_dirs_->count(dir))
        return {};
    if (auto r = make_dirs(dir); !r)
        return r;
    for (const char* sub : {"/tmp", "/new", "/cur"})
        if (auto r = make_dir(dir + sub); !r)
            return r;
    known_dirs_->insert(dir);
    return {};
}

util::result<std::size_t> maildir_batch::add(const std::string& dir, const std::string& name,
                                             std::span<const std::string_view> parts,
                                             bool check_existing)
{
    if (auto r = ensure(dir); !r)
        return r.error();
    item it;
    const std::string final_path = dir + "/new/" + name;
    if (check_existing && (exists(final_path) || in_cur(dir, name))) {
        it.already = true;
        items_.push_back(it);
        return items_.size() - 1;
    }
    const std::string tmp = dir + "/tmp/" + name;
    if (check_existing)
        ::unlink(tmp.c_str()); // a leftover of an attempt cut off by a crash
    auto w = batch_.write(tmp, parts);
    if (!w && w.error() == std::errc::file_exists) {
        ::unlink(tmp.c_str()); // the same leftover, met without check_existing
        w = batch_.write(tmp, parts);
    }
    if (!w) {
        known_dirs_->erase(dir); // it may have been removed under us: re-create next time
        return w.error();
    }
    it.rename = batch_.rename(tmp, final_path);
    it.tmp = tmp;
    items_.push_back(it);
    return items_.size() - 1;
}

std::vector<util::result<void>> maildir_batch::commit()
{
    std::vector<util::result<void>> out(items_.size());
    auto done = batch_.commit();
    for (std::size_t i = 0; i < items_.size(); ++i) {
        const auto& it = items_[i];
        if (it.already)
            continue;
        if (!done) {
            out[i] = done.error();
            ::unlink(it.tmp.c_str());
            continue;
        }
        auto ec = (*done)[it.rename];
        // exists: the same message reached this mailbox before a crash.
        if (ec)
            ::unlink(it.tmp.c_str());
        if (ec && ec != util::errc::exists)
            out[i] = ec;
    }
    items_.clear();
    return out;
}

} // namespace postern::delivery
