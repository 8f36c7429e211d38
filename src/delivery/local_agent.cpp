#include "postern/delivery/local_agent.hpp"

#include <cerrno>
#include <map>
#include <set>

#include "postern/delivery/maildir.hpp"
#include "postern/log/log.hpp"
#include "postern/metrics/metrics.hpp"

namespace postern::delivery {

namespace {

struct staged {
    std::size_t job = 0;
    std::size_t rcpt = 0;
    std::size_t item = 0;
    std::string to;
    bool repeat = false; // the same mailbox reached again: one file, one log line
};

double delay_s(const queue::entry& e, util::time_point now)
{
    return static_cast<double>(util::unix_seconds(now) - e.received_at);
}

void log_delivery(const queue::entry& e, std::string_view to, std::string_view status,
                  std::string_view detail, util::time_point now)
{
    if (status == "sent" || status == "deferred" || status == "bounced")
        metrics::delivery(metrics::transport::local,
                          status == "sent" ? metrics::result::sent
                          : status == "deferred" ? metrics::result::deferred : metrics::result::bounced,
                          delay_s(e, now));
    log::info("delivery")
        .kv("id", e.id)
        .kv("to", to)
        .kv("status", status)
        .kv("relay", "local")
        .kv("delay", delay_s(e, now))
        .kv("detail", detail);
}

void defer(queue::recipient& r, const scheduler::retry_policy& p, util::time_point now,
           std::string why)
{
    r.attempts++;
    r.next_attempt = util::unix_seconds(scheduler::next_attempt(p, r.attempts, now));
    r.last_error = std::move(why);
}

// "<enhanced code> maildir: <reason>" for a Maildir write that failed: a
// full disk is 4.3.1 (mail system full) and a quota 4.2.2 (mailbox full),
// RFC 3463; anything else 4.3.0. All are deferrals: nothing is lost.
std::string maildir_failure(const std::error_code& ec)
{
    const char* code = ec == std::errc::no_space_on_device ? "4.3.1"
                       : ec.value() == EDQUOT && ec.category() == std::system_category() ? "4.2.2"
                                                                                          : "4.3.0";
    return std::string(code) + " maildir: " + ec.message();
}

} // namespace

local_agent::local_agent(std::string mail_root, std::string hostname, const route::table& routes,
                         scheduler::retry_policy retry, std::set<std::string> lmtp_domains)
    : mail_root_(std::move(mail_root)), hostname_(std::move(hostname)), routes_(&routes),
      retry_(retry), lmtp_domains_(std::move(lmtp_domains))
{
}

local_agent::local_agent(const live::current& live) : live_(&live)
{
    refresh();
}

void local_agent::refresh()
{
    if (live_ == nullptr)
        return;
    gen_ = live_->get();
    const auto& cfg = gen_->cfg;
    mail_root_ = cfg.mail_root;
    hostname_ = cfg.hostname;
    routes_ = &gen_->routes;
    retry_ = {cfg.queue.retry_initial, cfg.queue.retry_max, cfg.queue.give_up};
    lmtp_domains_ = std::set<std::string>(cfg.delivery.domains.begin(), cfg.delivery.domains.end());
}

void local_agent::deliver(std::span<job> jobs, util::time_point now)
{
    maildir_batch batch(known_dirs_);
    std::vector<staged> items;
    std::vector<std::string> headers; // kept alive until commit (parts point into them)
    headers.reserve(256);
    // Per recipient (job, index) → number of staged items and whether any failed.
    std::map<std::pair<std::size_t, std::size_t>, std::error_code> early_error;
    const auto now_s = util::unix_seconds(now);

    for (std::size_t j = 0; j < jobs.size(); ++j) {
        auto& e = jobs[j].entry;
        std::map<std::string, std::size_t> staged_mailboxes; // one file per mailbox per message
        const auto name = maildir_name(e.received_at, e.id, hostname_);
        std::vector<queue::recipient> added;
        for (std::size_t i = 0; i < e.recipients.size(); ++i) {
            auto& r = e.recipients[i];
            if (r.state != queue::rcpt_state::pending || r.next_attempt > now_s)
                continue;
            auto addr = mail::parse_address(r.address);
            if (!addr) {
                r.state = queue::rcpt_state::bounced;
                r.last_error = "5.1.3 bad recipient address syntax";
                jobs[j].changed = true;
                log_delivery(e, r.address, "bounced", r.last_error, now);
                continue;
            }
            // A remote recipient has nothing to do here; it waits for the remote agent.
            if (routes_->classify(*addr) == route::kind::remote)
                continue;
            std::vector<std::string> missing;
            auto targets = routes_->expand(*addr, &missing);
            if (!targets) {
                r.state = queue::rcpt_state::bounced;
                r.last_error = targets.error() == util::errc::limit
                                   ? "5.4.6 alias expansion too deep (loop?)" // RFC 3463 X.4.6
                                   : "5.1.1 user unknown";
                jobs[j].changed = true;
                log_delivery(e, r.address, "bounced", r.last_error, now);
                continue;
            }
            // An alias target that is no mailbox bounces on its own, as
            // Postfix's local(8) bounces an alias to an unknown user; the
            // alias's other targets still get the mail. (RCPT refused the
            // alias when none was left: route::table::classify.)
            for (const auto& lost : missing) {
                bool known = false;
                for (const auto& other : e.recipients)
                    known = known || other.address == lost;
                for (const auto& other : added)
                    known = known || other.address == lost;
                if (known)
                    continue;
                queue::recipient nr;
                nr.address = lost;
                nr.state = queue::rcpt_state::bounced;
                nr.last_error = "5.1.1 user unknown (alias " + r.address + ")";
                log_delivery(e, nr.address, "bounced", nr.last_error, now);
                added.push_back(std::move(nr));
            }
            bool any_local = false;
            bool stays = false; // r is itself an LMTP mailbox: pending for the runner
            for (const auto& t : *targets) {
                // A mailbox in an LMTP domain (config delivery.lmtp) goes to
                // the LMTP agent through the runner, by its mailbox address.
                const bool lmtp = t.local && lmtp_domains_.count(t.domain) > 0;
                const auto handoff = lmtp ? t.mailbox + "@" + t.domain : t.address;
                if (lmtp && handoff == r.address) {
                    stays = true;
                    continue;
                }
                if (!t.local || lmtp) {
                    // Alias to a remote address (or an LMTP mailbox): a new
                    // recipient of this entry, appended after the loop (r
                    // must stay valid).
                    bool known = false;
                    for (const auto& other : e.recipients)
                        known = known || other.address == handoff;
                    for (const auto& other : added)
                        known = known || other.address == handoff;
                    if (!known) {
                        queue::recipient nr;
                        nr.address = handoff;
                        added.push_back(std::move(nr));
                    }
                    continue;
                }
                any_local = true;
                // Keyed by mailbox, not address: alice@ and alice+tag@ share
                // one Maildir, and the file name is per message.
                const auto mailbox = t.domain + "/" + t.mailbox;
                auto seen = staged_mailboxes.find(mailbox);
                if (seen != staged_mailboxes.end()) {
                    items.push_back({j, i, seen->second, t.address, true});
                    continue;
                }
                // t.address keeps a plus-address's extension (alice+tag@),
                // as Postfix's Delivered-To: does; the mailbox is alice.
                headers.push_back("Return-Path: <" + e.sender + ">\r\nDelivered-To: " + t.address +
                                  "\r\n");
                std::string_view parts[] = {headers.back(), jobs[j].message};
                bool check = jobs[j].recovered || r.attempts > 0;
                auto item = batch.add(mail_root_ + "/" + t.domain + "/" + t.mailbox, name, parts, check);
                if (!item) {
                    early_error[{j, i}] = item.error();
                    continue;
                }
                staged_mailboxes[mailbox] = *item;
                items.push_back({j, i, *item, t.address});
            }
            if (!any_local && !stays && !early_error.count({j, i})) {
                r.state = queue::rcpt_state::done; // fully handed to remote recipients
                jobs[j].changed = true;
                log_delivery(e, r.address, "expanded", "alias to remote recipients", now);
            }
        }
        if (!added.empty()) {
            for (auto& nr : added)
                e.recipients.push_back(std::move(nr));
            jobs[j].changed = true;
        }
    }

    auto results = batch.commit();

    // A recipient is done only when every file it expanded to is durable.
    std::map<std::pair<std::size_t, std::size_t>, std::error_code> failed = early_error;
    for (const auto& s : items)
        if (!results[s.item])
            failed[{s.job, s.rcpt}] = results[s.item].error();
    for (const auto& s : items) {
        if (s.repeat)
            continue;
        auto& e = jobs[s.job].entry;
        auto f = failed.find({s.job, s.rcpt});
        log_delivery(e, s.to, f == failed.end() ? "sent" : "deferred",
                     f == failed.end() ? "2.0.0 delivered to maildir" : maildir_failure(f->second), now);
    }
    // Failures before anything was staged (the Maildir could not be made or
    // the file not written, e.g. ENOSPC) are deferrals too, and say so.
    for (const auto& [k, ec] : early_error) {
        auto& e = jobs[k.first].entry;
        log_delivery(e, e.recipients[k.second].address, "deferred", maildir_failure(ec), now);
    }
    std::set<std::pair<std::size_t, std::size_t>> touched;
    for (const auto& s : items)
        touched.insert({s.job, s.rcpt});
    for (const auto& [k, why] : early_error)
        touched.insert(k);
    for (const auto& k : touched) {
        auto& r = jobs[k.first].entry.recipients[k.second];
        auto f = failed.find(k);
        if (f == failed.end())
            r.state = queue::rcpt_state::done;
        else
            defer(r, retry_, now, maildir_failure(f->second));
        jobs[k.first].changed = true;
    }
}

} // namespace postern::delivery
