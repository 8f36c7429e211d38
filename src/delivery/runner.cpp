#include "postern/delivery/runner.hpp"

#include <algorithm>

#include "postern/log/log.hpp"

namespace postern::delivery {

runner::runner(queue::store& store, local_agent& agent, const util::clock& clock,
               scheduler::retry_policy retry, std::size_t max_batch)
    : store_(store), agent_(agent), clock_(clock), retry_(retry), max_batch_(max_batch)
{
}

runner::~runner()
{
    stop();
}

void runner::start()
{
    auto ids = store_.list();
    if (!ids)
        log::error("queue_scan").kv("error", ids.error().message());
    else {
        recovered_ = std::move(*ids);
        if (!recovered_.empty())
            log::info("queue_scan").kv("entries", recovered_.size());
    }
    thread_ = std::thread([this] { run(); });
}

void runner::notify(std::vector<std::string> ids)
{
    std::lock_guard lk(mu_);
    for (auto& id : ids)
        ready_.push_back(std::move(id));
    cv_.notify_one();
}

void runner::stop()
{
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
        cv_.notify_one();
    }
    if (thread_.joinable())
        thread_.join();
}

void runner::run()
{
    // Entries found at start-up go first, in batches.
    while (!recovered_.empty()) {
        {
            std::lock_guard lk(mu_);
            if (stopping_)
                return;
        }
        auto n = std::min(recovered_.size(), max_batch_);
        std::vector<std::string> batch(recovered_.begin(), recovered_.begin() + static_cast<std::ptrdiff_t>(n));
        recovered_.erase(recovered_.begin(), recovered_.begin() + static_cast<std::ptrdiff_t>(n));
        process(std::move(batch), true);
    }
    for (;;) {
        std::vector<std::string> batch;
        {
            std::unique_lock lk(mu_);
            for (;;) {
                if (stopping_)
                    return;
                auto now = util::unix_seconds(clock_.now());
                for (auto it = deferred_.begin(); it != deferred_.end() && batch.size() < max_batch_;) {
                    if (it->second <= now) {
                        batch.push_back(it->first);
                        it = deferred_.erase(it);
                    } else {
                        ++it;
                    }
                }
                while (!ready_.empty() && batch.size() < max_batch_) {
                    batch.push_back(std::move(ready_.front()));
                    ready_.pop_front();
                }
                if (!batch.empty())
                    break;
                std::int64_t next = INT64_MAX;
                for (const auto& [id, t] : deferred_)
                    next = std::min(next, t);
                if (next == INT64_MAX)
                    cv_.wait(lk);
                else
                    cv_.wait_for(lk, std::chrono::seconds(std::max<std::int64_t>(1, next - now)));
            }
        }
        process(std::move(batch), false);
    }
}

void runner::process(std::vector<std::string> ids, bool recovered)
{
    std::vector<job> jobs;
    jobs.reserve(ids.size());
    for (auto& id : ids) {
        auto e = store_.load_full(id);
        if (!e) {
            if (e.error() == std::errc::no_such_file_or_directory)
                (void)store_.remove(id); // a removal cut off half-way
            else
                log::error("queue_load").kv("id", id).kv("error", e.error().message());
            continue;
        }
        jobs.push_back({std::move(e->meta), std::move(e->message), recovered, false});
    }
    auto now = clock_.now();
    agent_.deliver(jobs, now);

    std::vector<std::pair<std::string, std::int64_t>> later;
    for (auto& j : jobs) {
        auto& e = j.entry;
        // Recipients outside our domains wait for the remote agent, which
        // this build does not have yet: keep them queued on the backoff
        // schedule rather than spinning.
        auto now_s = util::unix_seconds(now);
        for (auto& r : e.recipients) {
            if (r.state == queue::rcpt_state::pending && r.next_attempt <= now_s) {
                r.attempts++;
                r.next_attempt = util::unix_seconds(scheduler::next_attempt(retry_, r.attempts, now));
                r.last_error = "4.4.0 no remote delivery agent configured";
                j.changed = true;
            }
        }
        if (e.all_final()) {
            if (auto r = store_.remove(e.id); !r)
                log::error("queue_remove").kv("id", e.id).kv("error", r.error().message());
            continue;
        }
        if (j.changed)
            if (auto r = store_.update(e); !r)
                log::error("queue_update").kv("id", e.id).kv("error", r.error().message());
        std::int64_t next = INT64_MAX;
        for (const auto& r : e.recipients)
            if (r.state == queue::rcpt_state::pending)
                next = std::min(next, r.next_attempt);
        later.emplace_back(e.id, next);
    }
    std::lock_guard lk(mu_);
    for (auto& [id, t] : later)
        deferred_[id] = t;
}

} // namespace postern::delivery
