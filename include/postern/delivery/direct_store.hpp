// delivery/direct_store.hpp — a queue::store that delivers local mail as
// its commit: a message whose recipients all expand to local Maildirs is
// written into them (durably, util::durable_batch via maildir_batch) in
// place of a spool entry; anything else — a remote or unknown target, a
// Maildir that fails — goes to the wrapped spool store, with the recipients
// already delivered marked done. The 250 therefore still means "on stable
// storage" (DESIGN promise 1), in its final place: the common local message
// costs two syncs (file, new/) instead of four (spool file and directory,
// then Maildir file and directory), and no queue runner work.
// Every other store call goes to the spool.
// Thread: commit() on the committer thread only (it owns its local_agent).
#pragma once

#include "postern/delivery/local_agent.hpp"
#include "postern/queue/store.hpp"
#include "postern/route/table.hpp"
#include "postern/util/clock.hpp"

namespace postern::delivery {

class direct_store final : public queue::store {
public:
    // Recipients are routed by the agent's table (agent.refresh() at each commit).
    direct_store(queue::store& spool, local_agent& agent, const util::clock& clock);

    std::vector<util::result<void>> commit(std::span<queue::new_message> batch) override;
    util::result<std::vector<std::string>> list() override { return spool_.list(); }
    util::result<queue::entry> load(std::string_view id) override { return spool_.load(id); }
    util::result<std::string> read_message(std::string_view id) override { return spool_.read_message(id); }
    util::result<queue::loaded_entry> load_full(std::string_view id) override { return spool_.load_full(id); }
    util::result<void> update(const queue::entry& e) override { return spool_.update(e); }
    util::result<void> remove(std::string_view id) override { return spool_.remove(id); }

private:
    bool all_local(const queue::entry& e) const;

    queue::store& spool_;
    local_agent& agent_;
    const util::clock& clock_;
};

} // namespace postern::delivery
