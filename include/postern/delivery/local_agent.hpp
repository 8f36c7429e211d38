// delivery/local_agent.hpp — delivers the local recipients of queued
// messages into Maildirs, a batch of messages at a time.
// For each pending, due recipient: expand it (route::table), write one file
// per distinct mailbox (Return-Path:, Delivered-To:, then the message as
// queued), make the batch durable, and only then mark the recipient done
// (DESIGN promise 2). Remote targets reached through aliases become new
// recipients of the entry, left pending for the remote agent; so do the
// mailboxes of lmtp_domains (config delivery.lmtp), by their mailbox address
// local@domain, for the LMTP agent (a recipient that is already that
// address simply stays pending). Alias targets that reach no mailbox become
// bounced recipients (5.1.1), so the sender hears of them.
// Configuration: fixed (the first constructor), or live: refresh() takes
// the generation in force (routes, hostname, retry, LMTP domains) and keeps
// it until the next refresh(); the owner calls it at the start of each
// delivery attempt.
// Thread: blocking; the delivery thread only.
#pragma once

#include <set>
#include <span>
#include <string>
#include <vector>

#include "postern/live/generation.hpp"
#include "postern/queue/entry.hpp"
#include "postern/route/table.hpp"
#include "postern/scheduler/retry.hpp"
#include "postern/util/clock.hpp"

namespace postern::delivery {

struct job {
    queue::entry entry;
    std::string message;
    bool recovered = false; // loaded at start-up: look for files of an earlier attempt
    bool changed = false;   // entry differs from the stored one
};

class local_agent {
public:
    local_agent(std::string mail_root, std::string hostname, const route::table& routes,
                scheduler::retry_policy retry, std::set<std::string> lmtp_domains = {});
    // live outlives the agent.
    explicit local_agent(const live::current& live);

    // Takes the generation in force (live agents; a no-op for fixed ones).
    void refresh();
    const route::table& routes() const noexcept { return *routes_; }

    void deliver(std::span<job> jobs, util::time_point now);

private:
    const live::current* live_ = nullptr;
    std::shared_ptr<const live::generation> gen_; // the one in use (live agents)
    std::string mail_root_;
    std::string hostname_;
    const route::table* routes_;
    scheduler::retry_policy retry_;
    std::set<std::string> lmtp_domains_; // delivered by the LMTP agent, not here
    std::set<std::string> known_dirs_; // Maildirs created or seen (delivery thread only)
};

} // namespace postern::delivery
