// queue/store.hpp — the queue's storage interface (a DESIGN seam): fs_store
// in production, memory_store in tests.
// Contract: commit() returns only once every message it reports as stored is
// on stable storage (DESIGN promise 1); update() is durable on return;
// remove() need not be (a resurrected entry finds its deliveries done by
// name, promise 2). Thread: implementations are safe to call from several
// threads at once for different ids.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "postern/queue/entry.hpp"
#include "postern/util/result.hpp"

namespace postern::queue {

struct new_message {
    entry meta;                     // meta.id set by the caller (util::make_queue_id)
    std::vector<std::string> parts; // concatenated in order they form the message file
    // Set by a store that delivered the message to every recipient as part
    // of commit() (delivery::direct_store): nothing was queued, no queue
    // runner needs to hear of it.
    bool delivered = false;
};

struct loaded_entry {
    entry meta;
    std::string message;
};

class store {
public:
    virtual ~store() = default;
    // One shared sync for the whole batch (group commit); one result per message.
    virtual std::vector<util::result<void>> commit(std::span<new_message> batch) = 0;
    virtual util::result<std::vector<std::string>> list() = 0;
    virtual util::result<entry> load(std::string_view id) = 0;
    virtual util::result<std::string> read_message(std::string_view id) = 0;
    // load() and read_message() in one step (the delivery path: one read).
    virtual util::result<loaded_entry> load_full(std::string_view id) = 0;
    virtual util::result<void> update(const entry& e) = 0;
    virtual util::result<void> remove(std::string_view id) = 0;
};

} // namespace postern::queue
