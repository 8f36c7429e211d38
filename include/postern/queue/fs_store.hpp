// queue/fs_store.hpp — the durable on-disk queue.
//   spool_dir/incoming/<id>/{message,envelope.json}   being written, never synced alone
//   spool_dir/queue/<xx>/<id>/{message,envelope.json} committed (xx: last two id digits)
//   spool_dir/corrupt/<id>/                            quarantined records
// Invariant: an entry appears under queue/ only after both its files are on
// stable storage — written unsynced in incoming/, made durable with the rest
// of the batch by util::durable_batch, then renamed in (DESIGN promise 1).
// Anything left in incoming/ at open() never got its 250 and is purged.
// Thread: every member blocks on disk I/O; call from the disk threads, never
// the event loop.
#pragma once

#include <string>

#include "postern/queue/store.hpp"

namespace postern::queue {

class fs_store final : public store {
public:
    explicit fs_store(std::string spool_dir);

    // Creates the layout and purges incoming/. Throws std::system_error at
    // start-up when the spool is unusable.
    void open();

    std::vector<util::result<void>> commit(std::span<new_message> batch) override;
    util::result<std::vector<std::string>> list() override;
    util::result<entry> load(std::string_view id) override;
    util::result<std::string> read_message(std::string_view id) override;
    util::result<void> update(const entry& e) override;
    util::result<void> remove(std::string_view id) override;

    const std::string& dir() const noexcept { return dir_; }

private:
    std::string entry_dir(std::string_view id) const;
    void quarantine(std::string_view id);

    std::string dir_;
};

} // namespace postern::queue
