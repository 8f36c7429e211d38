// queue/group_committer.hpp — group commit (DESIGN promise 1, BENCH-NOTES):
// concurrent sessions hand their messages to one committer thread, which
// takes everything pending, makes the whole batch durable with one
// store::commit() (one shared sync), then calls every submitter back.
// A 250 therefore waits for the batch its message is in, never for a sync
// of its own, and the sync rate no longer bounds the message rate.
// Thread: submit() from any thread; callbacks run on the committer thread
// and must only hand the result on (e.g. post to the event loop).
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

#include "postern/queue/store.hpp"

namespace postern::queue {

class group_committer {
public:
    using callback = std::function<void(util::result<void>)>;
    // Called after each batch with the ids that are now durable.
    using batch_hook = std::function<void(std::vector<std::string>)>;

    explicit group_committer(store& s, batch_hook hook = {}, std::size_t max_batch = 512);
    ~group_committer();
    group_committer(const group_committer&) = delete;
    group_committer& operator=(const group_committer&) = delete;

    void submit(new_message m, callback cb);
    // Commits what is pending, then stops the thread. Later submits fail
    // with errc::shutting_down.
    void stop();

    std::uint64_t batches() const noexcept { return batches_.load(); }

private:
    void run();

    struct pending {
        new_message msg;
        callback cb;
    };
    store& store_;
    batch_hook hook_;
    std::size_t max_batch_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<pending> queue_;
    bool stopping_ = false;
    std::atomic<std::uint64_t> batches_{0};
    std::thread thread_;
};

} // namespace postern::queue
