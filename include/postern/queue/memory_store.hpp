// queue/memory_store.hpp — an in-memory store for unit tests (not durable).
// Thread: internally locked.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "postern/queue/store.hpp"

namespace postern::queue {

class memory_store final : public store {
public:
    std::vector<util::result<void>> commit(std::span<new_message> batch) override;
    util::result<std::vector<std::string>> list() override;
    util::result<entry> load(std::string_view id) override;
    util::result<std::string> read_message(std::string_view id) override;
    util::result<loaded_entry> load_full(std::string_view id) override;
    util::result<void> update(const entry& e) override;
    util::result<void> remove(std::string_view id) override;

    std::size_t commits() const { return commits_; }

private:
    struct item {
        entry meta;
        std::string message;
    };
    mutable std::mutex mu_;
    std::map<std::string, item, std::less<>> items_;
    std::size_t commits_ = 0;
};

} // namespace postern::queue
