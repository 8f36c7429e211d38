#include "postern/queue/group_committer.hpp"

namespace postern::queue {

group_committer::group_committer(store& s, batch_hook hook, std::size_t max_batch)
    : store_(s), hook_(std::move(hook)), max_batch_(max_batch), thread_([this] { run(); })
{
}

group_committer::~group_committer()
{
    stop();
}

void group_committer::submit(new_message m, callback cb)
{
    {
        std::lock_guard lk(mu_);
        if (!stopping_) {
            queue_.push_back({std::move(m), std::move(cb)});
            cv_.notify_one();
            return;
        }
    }
    cb(util::errc::shutting_down);
}

void group_committer::stop()
{
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
        cv_.notify_one();
    }
    if (thread_.joinable())
        thread_.join();
}

void group_committer::run()
{
    for (;;) {
        std::vector<pending> batch;
        {
            std::unique_lock lk(mu_);
            cv_.wait(lk, [this] { return stopping_ || !queue_.empty(); });
            if (queue_.empty())
                return; // stopping, and everything submitted was committed
            while (!queue_.empty() && batch.size() < max_batch_) {
                batch.push_back(std::move(queue_.front()));
                queue_.pop_front();
            }
        }
        // Everything that arrived while the previous sync ran is in this
        // batch: under load, batches grow and syncs per message fall.
        std::vector<new_message> msgs;
        msgs.reserve(batch.size());
        for (auto& p : batch)
            msgs.push_back(std::move(p.msg));
        auto results = store_.commit(msgs);
        ++batches_;
        std::vector<std::string> durable;
        for (std::size_t i = 0; i < batch.size(); ++i)
            if (results[i] && !msgs[i].delivered)
                durable.push_back(msgs[i].meta.id);
        // Release the bodies before the callbacks: memory returns as soon as possible.
        msgs.clear();
        for (std::size_t i = 0; i < batch.size(); ++i)
            batch[i].cb(results[i]);
        if (hook_ && !durable.empty())
            hook_(std::move(durable));
    }
}

} // namespace postern::queue
