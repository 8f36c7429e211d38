// delivery/runner.hpp — the queue runner: one thread that takes committed
// messages (notify() from the group committer) and due retries, delivers
// them in batches through the local agent, and records the outcome in the
// store: an entry whose recipients are all final is removed, any other is
// updated durably with its retry schedule.
// At start() every entry already in the queue is picked up again (crash or
// restart), flagged as recovered so delivery looks for earlier files.
// Thread: notify() from any thread; everything else on the runner thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "postern/delivery/local_agent.hpp"
#include "postern/queue/store.hpp"
#include "postern/scheduler/retry.hpp"
#include "postern/util/clock.hpp"

namespace postern::delivery {

class runner {
public:
    runner(queue::store& store, local_agent& agent, const util::clock& clock,
           scheduler::retry_policy retry, std::size_t max_batch = 256);
    ~runner();
    runner(const runner&) = delete;
    runner& operator=(const runner&) = delete;

    void start();
    void notify(std::vector<std::string> ids);
    // Finishes the batch in hand, then stops; the rest stays queued on disk.
    void stop();

private:
    void run();
    void process(std::vector<std::string> ids, bool recovered);

    queue::store& store_;
    local_agent& agent_;
    const util::clock& clock_;
    scheduler::retry_policy retry_;
    std::size_t max_batch_;

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::string> ready_;
    std::vector<std::string> recovered_;
    std::map<std::string, std::int64_t> deferred_; // id → next attempt (unix s)
    bool stopping_ = false;
    std::thread thread_;
};

} // namespace postern::delivery
