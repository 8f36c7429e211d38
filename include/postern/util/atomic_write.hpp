// util/atomic_write.hpp — the one place where bytes become durable (STYLE 13).
//
// durable_batch stages new files (created with O_EXCL, written, not yet
// synced) and renames, then commit() makes them all durable together:
//   1. the staged files' data: fsync() of each file for a small batch, one
//      syncfs() of each filesystem touched for a large one (measured here:
//      fsync of a small new file ~0.15–0.3 ms, syncfs ~2 ms whatever the
//      batch; BENCH-NOTES: batching is what breaks the per-file wall),
//   2. every staged rename, done with RENAME_NOREPLACE so an existing target
//      is reported (errc::exists) rather than overwritten,
//   3. the renames: fsync() of each distinct target directory, or one more
//      syncfs() for a large batch.
// A file or rename becomes visible under its final name only after its data
// is on stable storage. atomic_write() is the one-file case of the same path.
// Thread: a batch belongs to one thread; separate batches may run concurrently.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "postern/util/result.hpp"

namespace postern::util {

class durable_batch {
public:
    durable_batch() = default;
    durable_batch(const durable_batch&) = delete;
    durable_batch& operator=(const durable_batch&) = delete;
    ~durable_batch();

    // Creates path (O_CREAT|O_EXCL, mode 0600) and writes the parts in order.
    // With recycle, that existing file is first renamed to path (never over
    // an existing one) and truncated, so no inode is allocated; if it cannot
    // be, path is created as usual. On failure the partial file is removed
    // and nothing is staged.
    result<void> write(const std::string& path, std::span<const std::string_view> parts,
                       const std::string& recycle = {});
    // Stages a rename performed by commit(); returns its index in commit()'s results.
    std::size_t rename(std::string from, std::string to);

    // Makes every staged write durable, performs the renames, syncs again.
    // The returned vector has one entry per staged rename; the outer result
    // fails only if the sync itself failed (then nothing may be trusted).
    result<std::vector<std::error_code>> commit();

    bool empty() const noexcept { return files_.empty() && renames_.empty(); }

    // At or below this many staged files and target directories, commit()
    // fsyncs them one by one; above it, syncfs() is cheaper.
    static constexpr std::size_t fsync_threshold = 8;

private:
    struct staged_rename {
        std::string from, to;
    };
    struct staged_file {
        std::string path;
        int fd;
    };
    std::vector<staged_file> files_; // open until commit(), to fsync them
    std::vector<staged_rename> renames_;
    // One open descriptor per filesystem touched, to syncfs() each of them
    // (a spool and a mail root may live on different filesystems).
    struct fs_handle {
        unsigned long dev;
        int fd;
    };
    result<void> remember_fs(int fd, bool& kept);
    result<void> sync_all();
    void release();
    std::vector<fs_handle> fss_;
};

// Writes dir/name atomically and durably: temp file (dir/.tmp.<16 hex>,
// of the given mode whatever the umask), sync, rename over any existing
// file, sync of the directory — or, when the caller may write the
// directory but not read it (the pickup directory, mode 3733), syncfs() of
// its file system instead.
result<void> atomic_write(const std::string& dir, std::string_view name, std::string_view bytes,
                          unsigned mode = 0600);
// fsync() of a directory, for callers that unlink or create dirs.
result<void> fsync_dir(const std::string& dir);
// Reads a whole file.
result<std::string> read_file(const std::string& path);

} // namespace postern::util
