#include "postern/delivery/direct_store.hpp"

#include "postern/mail/envelope.hpp"

namespace postern::delivery {

direct_store::direct_store(queue::store& spool, local_agent& agent, const util::clock& clock)
    : spool_(spool), agent_(agent), clock_(clock)
{
}

bool direct_store::all_local(const queue::entry& e) const
{
    for (const auto& r : e.recipients) {
        // A success notice (RFC 3461 NOTIFY=SUCCESS) is sent by the queue
        // runner once the delivery is durable: such a message takes the queue.
        if ((r.notify & mail::notify::success) != 0)
            return false;
        auto a = mail::parse_address(r.address);
        if (!a)
            return false;
        std::vector<std::string> missing;
        auto targets = agent_.routes().expand(*a, &missing);
        // Unknown, looping, or an alias with a target that reaches no one:
        // the queue path bounces it properly (the runner sends the DSN).
        if (!targets || !missing.empty())
            return false;
        for (const auto& t : *targets)
            if (!t.local)
                return false;
    }
    return !e.recipients.empty();
}

std::vector<util::result<void>> direct_store::commit(std::span<queue::new_message> batch)
{
    std::vector<util::result<void>> out(batch.size());
    std::vector<job> jobs;
    std::vector<std::size_t> job_of;
    agent_.refresh(); // this batch's configuration
    for (std::size_t i = 0; i < batch.size(); ++i) {
        auto& m = batch[i];
        if (!all_local(m.meta))
            continue;
        std::string message;
        std::size_t total = 0;
        for (const auto& p : m.parts)
            total += p.size();
        message.reserve(total);
        for (const auto& p : m.parts)
            message += p;
        jobs.push_back({m.meta, std::move(message), false, false});
        job_of.push_back(i);
    }
    if (!jobs.empty())
        agent_.deliver(jobs, clock_.now());

    std::vector<queue::new_message> spooled;
    std::vector<std::size_t> spooled_of;
    for (std::size_t k = 0; k < jobs.size(); ++k) {
        auto& m = batch[job_of[k]];
        if (jobs[k].entry.all_final()) {
            m.delivered = true;
            continue;
        }
        // Some Maildir failed: queue it, its delivered recipients marked done.
        m.meta = std::move(jobs[k].entry);
    }
    for (std::size_t i = 0; i < batch.size(); ++i) {
        if (batch[i].delivered)
            continue;
        spooled.push_back(std::move(batch[i]));
        spooled_of.push_back(i);
    }
    if (!spooled.empty()) {
        auto rs = spool_.commit(spooled);
        for (std::size_t k = 0; k < spooled.size(); ++k) {
            out[spooled_of[k]] = rs[k];
            batch[spooled_of[k]] = std::move(spooled[k]); // ids and flags back for the caller
        }
    }
    return out;
}

} // namespace postern::delivery
