#include "postern/delivery/runner.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "postern/log/log.hpp"
#include "postern/metrics/metrics.hpp"
#include "postern/mail/address.hpp"
#include "postern/mail/envelope.hpp"
#include "postern/util/id.hpp"
#include "postern/util/strings.hpp"
#include "postern/util/xtext.hpp"

namespace postern::delivery {

namespace {

// RFC 3461 4.1: the reports a recipient asked for. Without NOTIFY, failure
// and delay reports (the MTA's choice the RFC allows); NEVER: none.
bool wants(const queue::recipient& r, std::uint8_t kind)
{
    return r.notify == 0 ? kind != mail::notify::success : (r.notify & kind) != 0;
}

// RFC 3461 5.2.1: what goes on to a next hop that offers DSN (the client
// sends these only then): RET and ENVID on MAIL, NOTIFY and ORCPT on RCPT,
// xtext encoded again.
std::vector<std::string> dsn_mail_params(const queue::entry& e)
{
    std::vector<std::string> out;
    if (e.ret == static_cast<std::uint8_t>(mail::dsn_ret::full))
        out.emplace_back("RET=FULL");
    else if (e.ret == static_cast<std::uint8_t>(mail::dsn_ret::headers))
        out.emplace_back("RET=HDRS");
    if (!e.envid.empty())
        out.push_back("ENVID=" + util::xtext_encode(e.envid));
    return out;
}

std::string dsn_rcpt_params(const queue::recipient& r)
{
    std::string out;
    if (r.notify != 0) {
        if ((r.notify & mail::notify::never) != 0) {
            out = "NOTIFY=NEVER";
        } else {
            std::string list;
            for (auto [bit, name] : {std::pair{mail::notify::success, "SUCCESS"}, {mail::notify::failure, "FAILURE"},
                                     {mail::notify::delay, "DELAY"}})
                if ((r.notify & bit) != 0)
                    list += (list.empty() ? "" : ",") + std::string(name);
            out = "NOTIFY=" + list;
        }
    }
    if (auto semi = r.orcpt.find(';'); semi != std::string::npos) {
        // The "utf-8" type (RFC 6533) was kept as sent; others are decoded.
        auto type = r.orcpt.substr(0, semi);
        auto value = r.orcpt.substr(semi + 1);
        out += (out.empty() ? "" : " ") + ("ORCPT=" + type + ";") +
               (util::iequals(type, "utf-8") ? value : util::xtext_encode(value));
    }
    return out;
}

runner_options with_retry(scheduler::retry_policy retry, std::size_t max_batch)
{
    runner_options o;
    o.retry = retry;
    o.max_batch = max_batch;
    return o;
}

std::vector<queue::rcpt_state> states_of(const queue::entry& e)
{
    std::vector<queue::rcpt_state> s;
    for (const auto& r : e.recipients)
        s.push_back(r.state);
    return s;
}

std::string domain_of(const std::string& address)
{
    auto at = address.rfind('@');
    return at == std::string::npos ? std::string() : util::to_lower(address.substr(at + 1));
}

// "550 5.1.1 text" for Diagnostic-Code and last_error.
std::string reply_text(const smtp::rcpt_result& r)
{
    std::string s = std::to_string(r.code);
    if (!r.enhanced.empty())
        s += " " + r.enhanced;
    if (!r.text.empty())
        s += " " + r.text;
    return s;
}

// The enhanced code at the start of a last_error ("5.1.1 user unknown").
std::string status_of(const std::string& last_error)
{
    auto sp = last_error.find(' ');
    auto first = last_error.substr(0, sp);
    if (first.size() == 3 && sp != std::string::npos) { // "550 5.1.1 ..."
        auto rest = last_error.substr(sp + 1);
        return rest.substr(0, rest.find(' '));
    }
    return first;
}

} // namespace

runner::runner(queue::store& store, local_agent& agent, const util::clock& clock, runner_options opt)
    : store_(store), agent_(agent), clock_(clock), opt_(std::move(opt))
{
}

runner::runner(queue::store& store, local_agent& agent, const util::clock& clock,
               scheduler::retry_policy retry, std::size_t max_batch)
    : runner(store, agent, clock, with_retry(retry, max_batch))
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

void runner::remote_done(remote_outcome o)
{
    std::lock_guard lk(mu_);
    outcomes_.push_back(std::move(o));
    cv_.notify_one();
}

void runner::control(std::string request, reply_fn reply)
{
    std::lock_guard lk(mu_);
    controls_.emplace_back(std::move(request), std::move(reply));
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
        auto n = static_cast<std::ptrdiff_t>(std::min(recovered_.size(), opt_.max_batch));
        std::vector<std::string> batch(recovered_.begin(), recovered_.begin() + n);
        recovered_.erase(recovered_.begin(), recovered_.begin() + n);
        refresh();
        process(std::move(batch), true);
    }
    for (;;) {
        std::vector<std::string> batch;
        std::deque<remote_outcome> outcomes;
        std::deque<std::pair<std::string, reply_fn>> controls;
        {
            std::unique_lock lk(mu_);
            for (;;) {
                if (stopping_)
                    return;
                outcomes.swap(outcomes_);
                controls.swap(controls_);
                auto now = util::unix_seconds(clock_.now());
                for (auto it = deferred_.begin(); it != deferred_.end() && batch.size() < opt_.max_batch;) {
                    if (it->second <= now) {
                        batch.push_back(it->first);
                        it = deferred_.erase(it);
                    } else {
                        ++it;
                    }
                }
                while (!ready_.empty() && batch.size() < opt_.max_batch) {
                    batch.push_back(std::move(ready_.front()));
                    ready_.pop_front();
                }
                if (!batch.empty() || !outcomes.empty() || !controls.empty())
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
        refresh();
        for (auto& o : outcomes)
            apply(std::move(o));
        for (auto& [request, reply] : controls)
            reply(handle_control(request));
        if (!batch.empty())
            process(std::move(batch), false);
    }
}

void runner::refresh()
{
    if (opt_.live == nullptr)
        return;
    const auto gen = opt_.live->get();
    const auto& cfg = gen->cfg;
    opt_.retry = {cfg.queue.retry_initial, cfg.queue.retry_max, cfg.queue.give_up};
    opt_.delay_warning = cfg.queue.delay_warning;
    opt_.hostname = cfg.hostname;
    lmtp_domains_ = std::set<std::string, std::less<>>(cfg.delivery.domains.begin(), cfg.delivery.domains.end());
    agent_.refresh();
}

bool runner::lmtp_handles(std::string_view domain) const
{
    if (opt_.live == nullptr)
        return opt_.lmtp->handles(domain);
    return lmtp_domains_.find(domain) != lmtp_domains_.end();
}

bool runner::in_flight(const std::string& id, const std::string& address) const
{
    return in_flight_.count({id, address}) > 0;
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
        if (e->meta.held)
            continue; // `postern queue release` brings it back
        jobs.push_back({std::move(e->meta), std::move(e->message), recovered, false});
    }
    std::vector<snapshot> before;
    for (const auto& j : jobs)
        before.push_back(states_of(j.entry));
    auto now = clock_.now();
    agent_.deliver(jobs, now);
    for (std::size_t i = 0; i < jobs.size(); ++i) {
        auto& j = jobs[i];
        // Shared by the agents' jobs (which outlive this batch), not copied.
        const auto message = std::make_shared<const std::string>(std::move(j.message));
        if (opt_.lmtp)
            dispatch_lmtp(j.entry, message, now);
        if (opt_.remote) {
            dispatch_remote(j.entry, message, now);
        } else {
            // No remote agent: keep remote recipients queued on the backoff
            // schedule rather than spinning.
            auto now_s = util::unix_seconds(now);
            for (auto& r : j.entry.recipients) {
                if (r.state == queue::rcpt_state::pending && r.next_attempt <= now_s &&
                    !in_flight(j.entry.id, r.address)) {
                    r.attempts++;
                    r.next_attempt = util::unix_seconds(scheduler::next_attempt(opt_.retry, r.attempts, now));
                    r.last_error = "4.4.0 no remote delivery agent configured";
                    j.changed = true;
                }
            }
        }
        finish(j.entry, *message, before[i], j.changed, dsn_action::delivered, now);
    }
}

// LMTP (RFC 2033): the due mailboxes of LMTP domains, one job per message:
// the server answers for each recipient.
void runner::dispatch_lmtp(const queue::entry& e, const std::shared_ptr<const std::string>& message,
                           util::time_point now)
{
    const auto now_s = util::unix_seconds(now);
    remote_job j;
    for (const auto& r : e.recipients) {
        if (r.state != queue::rcpt_state::pending || r.next_attempt > now_s || in_flight(e.id, r.address) ||
            !lmtp_handles(domain_of(r.address)))
            continue;
        j.recipients.push_back(r.address);
    }
    if (j.recipients.empty())
        return;
    j.id = e.id;
    j.sender = e.sender;
    j.smtputf8 = e.smtputf8;
    j.eight_bit = e.eight_bit;
    j.binary = e.binary;
    j.size = message->size();
    j.body = message;
    for (const auto& a : j.recipients)
        in_flight_.insert({e.id, a});
    opt_.lmtp->submit(std::move(j));
}

void runner::dispatch_remote(const queue::entry& e, const std::shared_ptr<const std::string>& message,
                             util::time_point now)
{
    const auto now_s = util::unix_seconds(now);
    std::map<std::string, std::vector<std::string>> by_domain;
    for (const auto& r : e.recipients) {
        if (r.state != queue::rcpt_state::pending || r.next_attempt > now_s || in_flight(e.id, r.address))
            continue;
        // Only recipients the local agent left pending and that are not
        // local: a remote domain (relay or alias target).
        auto d = domain_of(r.address);
        if (d.empty() || (opt_.lmtp && lmtp_handles(d)))
            continue;
        by_domain[d].push_back(r.address);
    }
    if (by_domain.empty())
        return;
    for (auto& [domain, rcpts] : by_domain) {
        remote_job j;
        j.id = e.id;
        j.domain = domain;
        j.sender = e.sender;
        j.recipients = rcpts;
        j.mail_params = dsn_mail_params(e);
        for (const auto& a : rcpts)
            for (const auto& r : e.recipients)
                if (r.address == a && r.state == queue::rcpt_state::pending) {
                    j.rcpt_params.push_back(dsn_rcpt_params(r));
                    break;
                }
        j.smtputf8 = e.smtputf8;
        j.eight_bit = e.eight_bit;
        j.binary = e.binary;
        j.size = message->size();
        j.body = message;
        for (const auto& a : rcpts)
            in_flight_.insert({e.id, a});
        opt_.remote->submit(std::move(j));
    }
}

void runner::apply(remote_outcome o)
{
    for (const auto& a : o.recipients)
        in_flight_.erase({o.id, a});
    auto loaded = store_.load_full(o.id);
    if (!loaded) {
        log::error("queue_load").kv("id", o.id).kv("error", loaded.error().message());
        return;
    }
    auto& e = loaded->meta;
    auto before = states_of(e);
    auto now = clock_.now();
    auto now_s = util::unix_seconds(now);
    for (std::size_t i = 0; i < o.recipients.size() && i < o.results.size(); ++i) {
        const auto& res = o.results[i];
        for (auto& r : e.recipients) {
            if (r.address != o.recipients[i] || r.state != queue::rcpt_state::pending)
                continue;
            const char* status = "sent";
            auto counted = metrics::result::sent;
            if (res.code >= 200 && res.code < 300) {
                r.state = queue::rcpt_state::done;
            } else if (res.code >= 500) {
                r.state = queue::rcpt_state::bounced;
                r.last_error = reply_text(res);
                status = "bounced";
                counted = metrics::result::bounced;
            } else {
                r.attempts++;
                r.next_attempt = util::unix_seconds(scheduler::next_attempt(opt_.retry, r.attempts, now));
                r.last_error = reply_text(res);
                status = "deferred";
                counted = metrics::result::deferred;
            }
            // LMTP hands the message to the local store: local transport.
            metrics::delivery(o.relay.starts_with("lmtp:") ? metrics::transport::local : metrics::transport::remote,
                              counted, static_cast<double>(now_s - e.received_at));
            if (!o.remote_mta.empty())
                remote_mta_[e.id + "\n" + r.address] = o.remote_mta;
            log::info("delivery")
                .kv("id", e.id)
                .kv("to", r.address)
                .kv("status", status)
                .kv("relay", !o.relay.empty() ? o.relay : o.remote_mta.empty() ? std::string("none") : o.remote_mta)
                .kv("delay", static_cast<double>(now_s - e.received_at))
                .kv("detail", reply_text(res));
            break;
        }
    }
    std::optional<dsn_action> success;
    if (!o.peer_dsn)
        success = o.final_delivery ? dsn_action::delivered : dsn_action::relayed;
    finish(e, loaded->message, before, true, success, now);
}

void runner::finish(queue::entry& e, const std::string& message, const snapshot& before, bool changed,
                    std::optional<dsn_action> success, util::time_point now)
{
    const auto now_s = util::unix_seconds(now);
    // Past give_up a deferred recipient fails (RFC 3463 X.4.7: delivery time expired).
    if (scheduler::expired(opt_.retry, util::from_unix_seconds(e.received_at), now)) {
        for (auto& r : e.recipients) {
            if (r.state == queue::rcpt_state::pending && !in_flight(e.id, r.address)) {
                r.state = queue::rcpt_state::bounced;
                r.last_error = "4.4.7 delivery time expired" +
                               (r.last_error.empty() ? std::string() : " (last error: " + r.last_error + ")");
                changed = true;
                log::info("delivery").kv("id", e.id).kv("to", r.address).kv("status", "expired")
                    .kv("detail", r.last_error);
            }
        }
    }
    std::vector<dsn_recipient> failed;
    for (std::size_t i = 0; i < e.recipients.size(); ++i) {
        const auto& r = e.recipients[i];
        bool was_bounced = i < before.size() && before[i] == queue::rcpt_state::bounced;
        if (r.state != queue::rcpt_state::bounced || was_bounced || !wants(r, mail::notify::failure))
            continue;
        dsn_recipient d;
        d.final_recipient = r.address;
        d.original_recipient = r.orcpt;
        d.action = dsn_action::failed;
        d.status = status_of(r.last_error);
        if (auto it = remote_mta_.find(e.id + "\n" + r.address); it != remote_mta_.end())
            d.remote_mta = "dns; " + it->second;
        d.diagnostic = r.last_error;
        d.last_attempt = now_s;
        failed.push_back(std::move(d));
    }
    if (!failed.empty())
        send_dsn(e, message, std::move(failed), now);

    // Success notices (RFC 3461 4.1 NOTIFY=SUCCESS; RFC 3464 2.3.3 Action).
    std::vector<dsn_recipient> succeeded;
    for (std::size_t i = 0; success && i < e.recipients.size() && i < before.size(); ++i) {
        const auto& r = e.recipients[i];
        if (r.state != queue::rcpt_state::done || before[i] == queue::rcpt_state::done ||
            (r.notify & mail::notify::success) == 0)
            continue;
        dsn_recipient d;
        d.final_recipient = r.address;
        d.original_recipient = r.orcpt;
        d.action = *success;
        d.status = "2.0.0";
        if (auto it = remote_mta_.find(e.id + "\n" + r.address); it != remote_mta_.end())
            d.remote_mta = "dns; " + it->second;
        d.last_attempt = now_s;
        succeeded.push_back(std::move(d));
    }
    if (!succeeded.empty())
        send_dsn(e, message, std::move(succeeded), now);

    // One "delayed" notice (RFC 3464 Action: delayed) once the message has
    // waited delay_warning and recipients are still deferred.
    if (opt_.delay_warning.count() > 0 && !e.delay_warned &&
        now_s - e.received_at >= opt_.delay_warning.count()) {
        std::vector<dsn_recipient> delayed;
        for (const auto& r : e.recipients) {
            if (r.state != queue::rcpt_state::pending || r.attempts == 0 || !wants(r, mail::notify::delay))
                continue;
            dsn_recipient d;
            d.final_recipient = r.address;
            d.original_recipient = r.orcpt;
            d.action = dsn_action::delayed;
            d.status = status_of(r.last_error);
            d.diagnostic = r.last_error;
            d.last_attempt = now_s;
            d.will_retry_until = e.received_at + opt_.retry.give_up.count();
            delayed.push_back(std::move(d));
        }
        if (!delayed.empty()) {
            send_dsn(e, message, std::move(delayed), now);
            e.delay_warned = true;
            changed = true;
        }
    }

    if (e.all_final()) {
        for (const auto& r : e.recipients)
            remote_mta_.erase(e.id + "\n" + r.address);
        if (auto r = store_.remove(e.id); !r)
            log::error("queue_remove").kv("id", e.id).kv("error", r.error().message());
        else // the last line of a message's story (Postfix's "removed")
            log::info("removed").kv("id", e.id);
        return;
    }
    if (changed)
        if (auto r = store_.update(e); !r)
            log::error("queue_update").kv("id", e.id).kv("error", r.error().message());
    std::int64_t next = INT64_MAX;
    for (const auto& r : e.recipients)
        if (r.state == queue::rcpt_state::pending && !in_flight(e.id, r.address))
            next = std::min(next, r.next_attempt);
    if (next != INT64_MAX) {
        std::lock_guard lk(mu_);
        deferred_[e.id] = next;
    }
}

void runner::send_dsn(const queue::entry& e, const std::string& message, std::vector<dsn_recipient> rs,
                      util::time_point now)
{
    if (e.sender.empty())
        return; // RFC 5321 4.5.5: never a report about a report
    queue::new_message m;
    m.meta.id = util::make_queue_id(now);
    bounce_input in;
    in.reporting_mta = opt_.hostname;
    in.original_sender = e.sender;
    in.original_id = e.id;
    in.arrival_date = e.received_at;
    in.original_message = message;
    in.recipients = std::move(rs);
    in.envid = e.envid;
    // RFC 3461 4.3: RET=FULL asks for the whole message in failure reports;
    // success and delay notices, and reports without RET, carry the headers.
    in.return_full = in.recipients.front().action == dsn_action::failed &&
                     e.ret == static_cast<std::uint8_t>(mail::dsn_ret::full);
    auto text = build_dsn(in, now, m.meta.id);
    if (!text)
        return;
    m.meta.sender = "";
    m.meta.received_at = util::unix_seconds(now);
    m.meta.size = text->size();
    m.meta.helo = opt_.hostname;
    m.meta.eight_bit = dsn_is_eight_bit(*text);
    m.meta.smtputf8 = !mail::parse_address(e.sender) || !mail::parse_address(e.sender)->is_ascii();
    queue::recipient to;
    to.address = e.sender;
    m.meta.recipients.push_back(std::move(to));
    m.parts.push_back(std::move(*text));
    auto results = store_.commit(std::span(&m, 1));
    if (!results[0]) {
        log::error("dsn").kv("id", e.id).kv("error", results[0].error().message());
        return;
    }
    log::info("dsn").kv("id", e.id).kv("dsn_id", m.meta.id).kv("to", e.sender)
        .kv("action", action_name(in.recipients.front().action));
    std::lock_guard lk(mu_);
    ready_.push_back(m.meta.id);
}

namespace {

using json = nlohmann::json;

const char* state_name(queue::rcpt_state s)
{
    switch (s) {
    case queue::rcpt_state::pending: return "pending";
    case queue::rcpt_state::done: return "done";
    case queue::rcpt_state::bounced: return "bounced";
    }
    return "pending";
}

json describe(const queue::entry& e, std::int64_t now_s)
{
    json rcpts = json::array();
    std::int64_t next = 0;
    for (const auto& r : e.recipients) {
        rcpts.push_back({{"address", r.address},
                         {"state", state_name(r.state)},
                         {"attempts", r.attempts},
                         {"next_attempt", r.next_attempt},
                         {"last_error", r.last_error}});
        if (r.state == queue::rcpt_state::pending && (next == 0 || r.next_attempt < next))
            next = r.next_attempt;
    }
    return {{"id", e.id},
            {"age_s", now_s - e.received_at},
            {"received_at", e.received_at},
            {"size", e.size},
            {"sender", e.sender},
            {"held", e.held},
            {"next_attempt", next},
            {"recipients", std::move(rcpts)}};
}

json error_reply(std::string_view what)
{
    return {{"ok", false}, {"error", what}};
}

} // namespace

// Runs on the runner thread, between batches: the runner owns every entry
// it may be delivering, so queue commands never race a delivery.
std::string runner::handle_control(const std::string& request)
{
    auto req = json::parse(request, nullptr, false);
    if (req.is_discarded() || !req.is_object() || !req.contains("cmd") || !req["cmd"].is_string())
        return error_reply("bad request").dump();
    const auto cmd = req["cmd"].get<std::string>();
    const std::string id = req.contains("id") && req["id"].is_string() ? req["id"].get<std::string>() : "";
    const auto now = clock_.now();
    const auto now_s = util::unix_seconds(now);
    if (!id.empty() && !util::is_queue_id(id))
        return error_reply("not a queue id: " + id).dump();

    if (cmd == "list") {
        auto ids = store_.list();
        if (!ids)
            return error_reply(ids.error().message()).dump();
        json out = json::array();
        for (const auto& i : *ids)
            if (auto e = store_.load(i))
                out.push_back(describe(*e, now_s));
        return json{{"ok", true}, {"entries", std::move(out)}}.dump(-1, ' ', false, json::error_handler_t::replace);
    }
    if (id.empty() && cmd != "flush")
        return error_reply(cmd + " needs a queue id").dump();
    std::vector<std::string> ids;
    if (id.empty()) {
        auto all = store_.list();
        if (!all)
            return error_reply(all.error().message()).dump();
        ids = std::move(*all);
    } else {
        ids.push_back(id);
    }
    json done = json::array();
    for (const auto& i : ids) {
        auto e = store_.load_full(i);
        if (!e) {
            if (!id.empty())
                return error_reply("no such queue entry: " + i).dump();
            continue;
        }
        auto& m = e->meta;
        if (cmd == "show") {
            auto d = describe(m, now_s);
            d["client_ip"] = m.client_ip;
            d["helo"] = m.helo;
            constexpr std::size_t max_show = 64 * 1024;
            d["message"] = e->message.substr(0, max_show);
            d["message_truncated"] = e->message.size() > max_show;
            return json{{"ok", true}, {"entry", std::move(d)}}.dump(-1, ' ', false, json::error_handler_t::replace);
        }
        if (cmd == "delete") {
            if (auto r = store_.remove(i); !r)
                return error_reply(r.error().message()).dump();
            log::info("queue_delete").kv("id", i);
            std::lock_guard lk(mu_);
            deferred_.erase(i);
        } else if (cmd == "hold" || cmd == "release") {
            m.held = cmd == "hold";
            if (auto r = store_.update(m); !r)
                return error_reply(r.error().message()).dump();
            log::info(cmd == "hold" ? "queue_hold" : "queue_release").kv("id", i);
            std::lock_guard lk(mu_);
            if (m.held)
                deferred_.erase(i);
            else
                ready_.push_back(i);
        } else if (cmd == "flush") {
            if (m.held)
                continue;
            for (auto& r : m.recipients)
                if (r.state == queue::rcpt_state::pending)
                    r.next_attempt = 0;
            if (auto r = store_.update(m); !r)
                return error_reply(r.error().message()).dump();
            std::lock_guard lk(mu_);
            deferred_.erase(i);
            ready_.push_back(i);
        } else {
            return error_reply("unknown command: " + cmd).dump();
        }
        done.push_back(i);
    }
    return json{{"ok", true}, {"ids", std::move(done)}}.dump();
}

} // namespace postern::delivery
