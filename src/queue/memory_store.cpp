#include "postern/queue/memory_store.hpp"

#include <algorithm>

namespace postern::queue {

std::vector<util::result<void>> memory_store::commit(std::span<new_message> batch)
{
    std::lock_guard lk(mu_);
    ++commits_;
    std::vector<util::result<void>> out(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i) {
        auto& m = batch[i];
        if (items_.count(m.meta.id)) {
            out[i] = util::errc::exists;
            continue;
        }
        std::string msg;
        for (const auto& p : m.parts)
            msg += p;
        items_.emplace(m.meta.id, item{m.meta, std::move(msg)});
    }
    return out;
}

util::result<std::vector<std::string>> memory_store::list()
{
    std::lock_guard lk(mu_);
    std::vector<std::string> ids;
    for (const auto& [id, _] : items_)
        ids.push_back(id);
    return ids;
}

util::result<entry> memory_store::load(std::string_view id)
{
    std::lock_guard lk(mu_);
    auto it = items_.find(id);
    if (it == items_.end())
        return std::errc::no_such_file_or_directory;
    return it->second.meta;
}

util::result<std::string> memory_store::read_message(std::string_view id)
{
    std::lock_guard lk(mu_);
    auto it = items_.find(id);
    if (it == items_.end())
        return std::errc::no_such_file_or_directory;
    return it->second.message;
}

util::result<loaded_entry> memory_store::load_full(std::string_view id)
{
    std::lock_guard lk(mu_);
    auto it = items_.find(id);
    if (it == items_.end())
        return std::errc::no_such_file_or_directory;
    return loaded_entry{it->second.meta, it->second.message};
}

util::result<void> memory_store::update(const entry& e)
{
    std::lock_guard lk(mu_);
    auto it = items_.find(e.id);
    if (it == items_.end())
        return std::errc::no_such_file_or_directory;
    it->second.meta = e;
    return {};
}

util::result<void> memory_store::remove(std::string_view id)
{
    std::lock_guard lk(mu_);
    auto it = items_.find(id);
    if (it != items_.end())
        items_.erase(it);
    return {};
}

} // namespace postern::queue
