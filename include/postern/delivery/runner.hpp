// delivery/runner.hpp — the queue runner: one thread that takes committed
// messages (notify() from the group committer), due retries and the
// outcomes of remote deliveries, and moves every recipient towards a final
// state:
//  - local recipients through the local agent (Maildir), in batches;
//  - remote recipients handed to the remote agent (grouped per domain, the
//    message shared by the jobs, not copied), their outcomes applied when
//    they come back;
//  - recipients in LMTP domains (config delivery.lmtp; local_agent leaves
//    them pending, aliases expanded to mailbox addresses) handed to the LMTP
//    agent, one job per message, their outcomes applied as remote ones;
//  - deferred recipients retried on the backoff schedule; past give_up they
//    fail (4.4.7); after delay_warning one "delayed" DSN goes to the sender;
//  - recipients that fail get a DSN (RFC 3464) to the sender, queued like
//    any message — never for a message whose sender is <>.
// An entry whose recipients are all final is removed, any other is updated
// durably. At start() every entry already in the queue is picked up again
// (crash or restart), flagged as recovered so delivery looks for earlier files.
// Thread: notify()/remote_done() from any thread; the rest on the runner thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "postern/delivery/bounce.hpp"
#include "postern/delivery/lmtp_agent.hpp"
#include "postern/delivery/local_agent.hpp"
#include "postern/delivery/remote_agent.hpp"
#include "postern/queue/store.hpp"
#include "postern/scheduler/retry.hpp"
#include "postern/util/clock.hpp"

namespace postern::delivery {

struct runner_options {
    scheduler::retry_policy retry;
    std::chrono::seconds delay_warning{0}; // 0: no delay warnings
    std::string hostname = "localhost";    // Reporting-MTA of DSNs
    remote_agent* remote = nullptr;        // null: remote recipients wait
    lmtp_agent* lmtp = nullptr;            // null: no LMTP delivery (local_agent has no lmtp_domains)
    std::size_t max_batch = 256;
    // Set: retry, delay_warning and hostname follow the generation in force,
    // taken (with agent.refresh()) at the start of each pass; live outlives
    // the runner.
    const live::current* live = nullptr;
};

class runner {
public:
    runner(queue::store& store, local_agent& agent, const util::clock& clock, runner_options opt);
    runner(queue::store& store, local_agent& agent, const util::clock& clock,
           scheduler::retry_policy retry, std::size_t max_batch = 256);
    ~runner();
    runner(const runner&) = delete;
    runner& operator=(const runner&) = delete;

    void start();
    void notify(std::vector<std::string> ids);
    // A remote (or LMTP) delivery finished (called by the agent on its thread).
    void remote_done(remote_outcome o);
    // A queue command from the control socket (`postern queue ...`), as one
    // JSON object {"cmd": "list|show|flush|delete|hold|release", "id": "..."};
    // reply gets one JSON object, called on the runner thread.
    using reply_fn = std::function<void(std::string)>;
    void control(std::string request, reply_fn reply);
    // Finishes the batch in hand, then stops; the rest stays queued on disk.
    void stop();

private:
    using snapshot = std::vector<queue::rcpt_state>;
    void run();
    // Takes the generation in force (runner_options::live), with the agent.
    void refresh();
    // Whether opt_.lmtp delivers this domain (under the generation in use).
    bool lmtp_handles(std::string_view domain) const;
    void process(std::vector<std::string> ids, bool recovered);
    void apply(remote_outcome o);
    void dispatch_remote(const queue::entry& e, const std::shared_ptr<const std::string>& message,
                         util::time_point now);
    void dispatch_lmtp(const queue::entry& e, const std::shared_ptr<const std::string>& message,
                       util::time_point now);
    // success: the notice owed for recipients that reached done in this pass
    // and asked for one (NOTIFY=SUCCESS); nullopt when the next hop owns it.
    void finish(queue::entry& e, const std::string& message, const snapshot& before, bool changed,
                std::optional<dsn_action> success, util::time_point now);
    void send_dsn(const queue::entry& e, const std::string& message,
                  std::vector<dsn_recipient> rs, util::time_point now);
    bool in_flight(const std::string& id, const std::string& address) const;
    std::string handle_control(const std::string& request);

    queue::store& store_;
    local_agent& agent_;
    const util::clock& clock_;
    runner_options opt_;

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::string> ready_;
    std::deque<remote_outcome> outcomes_;
    std::deque<std::pair<std::string, reply_fn>> controls_;
    std::vector<std::string> recovered_;
    std::map<std::string, std::int64_t> deferred_; // id → next attempt (unix s)
    bool stopping_ = false;
    std::thread thread_;
    // Runner thread only: recipients handed to the remote agent, not yet answered.
    std::set<std::pair<std::string, std::string>> in_flight_;
    std::map<std::string, std::string> remote_mta_; // "id\naddress" → host, for DSNs
    std::set<std::string, std::less<>> lmtp_domains_; // runner_options::live: the generation's
};

} // namespace postern::delivery
