// queue/fs_store.hpp — the durable on-disk queue.
//   spool_dir/incoming/<id>          being written, never synced alone
//   spool_dir/queue/<xx>/<id>        committed: one line of envelope JSON, then the message
//   spool_dir/queue/<xx>/<id>.env    the envelope's later versions (retry state), when any
//   spool_dir/corrupt/               quarantined records
//   spool_dir/free/                  delivered entries' files, kept for reuse
// (xx: the last two digits of the id.)
// One file per message, not a directory of two, and files are recycled
// rather than deleted: on ext4 every inode freed makes later allocations in
// its group scan past it for a while (recently_deleted()), which profiling
// showed as the largest CPU cost at high message rates. A delivered entry's
// file moves to free/ and is truncated (no content lingers); the next commit
// renames it into incoming/ and writes it. Nothing in free/ is ever read.
// Invariant: an entry appears under queue/ only after its file is on stable
// storage — written unsynced in incoming/, made durable with the rest of its
// batch by util::durable_batch, then renamed in (DESIGN promise 1). Anything
// left in incoming/ at open() never got its 250 and is purged.
// Thread: every member blocks on disk I/O; call from the disk threads, never
// the event loop. Calls for different ids may run concurrently.
#pragma once

#include <mutex>
#include <set>
#include <string>
#include <vector>

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
    util::result<loaded_entry> load_full(std::string_view id) override;
    util::result<void> update(const entry& e) override;
    util::result<void> remove(std::string_view id) override;

    const std::string& dir() const noexcept { return dir_; }

private:
    std::string bucket_dir(std::string_view id) const;
    std::string entry_path(std::string_view id) const;
    void quarantine(std::string_view id);
    std::string take_free();
    bool has_env(std::string_view id);
    util::result<entry> decode_checked(std::string_view id, util::result<std::string> text);
    void scan(std::vector<std::string>* ids);
    // At open(): removes update() temp files and .env files without an entry.
    void purge_leftovers();
    // Recycles the entry's file into free/ (or unlinks it).
    util::result<void> remove_entry_file(std::string_view id, const std::string& path);

    std::string dir_;
    std::mutex mu_;
    std::vector<std::string> free_; // names in free/
    // Entries with a later envelope (<id>.env). The store is the spool's only
    // writer, so it knows without asking the filesystem on every load.
    std::set<std::string, std::less<>> has_env_;
    std::uint64_t free_seq_ = 0;
    static constexpr std::size_t max_free = 8192;
};

} // namespace postern::queue
