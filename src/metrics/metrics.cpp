#include "postern/metrics/metrics.hpp"

#include <array>
#include <atomic>
#include <cstdio>
#include <string_view>

namespace postern::metrics {

namespace {

using counter = std::atomic<std::uint64_t>;

// Delivery delay buckets, seconds: local delivery is sub-second, a retry
// comes after 5 minutes, a give-up after days.
constexpr std::array<double, 10> delay_bounds{0.1, 1, 5, 30, 60, 300, 1800, 3600, 21600, 86400};

struct histogram {
    std::array<counter, delay_bounds.size()> buckets{}; // non-cumulative; summed when rendered
    counter count{0};
    std::atomic<double> sum{0};
};

struct registry {
    std::array<std::atomic<std::int64_t>, 3> current{};
    std::array<counter, 3> total{};
    std::array<counter, 3> rejected{};
    counter received{0};
    std::array<counter, 5> refusals{};
    std::array<std::array<counter, 3>, 2> deliveries{}; // [transport][result]
    std::array<histogram, 2> delay;                     // [transport], sent only
    counter dns{0}, dns_failed{0};
    counter tls_ok{0}, tls_failed{0};
};

registry& reg()
{
    static registry r;
    return r;
}

constexpr std::array<std::string_view, 3> protocol_names{"smtp", "pop3", "imap"};
constexpr std::array<std::string_view, 2> transport_names{"local", "remote"};
constexpr std::array<std::string_view, 3> result_names{"sent", "deferred", "bounced"};
constexpr std::array<std::string_view, 5> refusal_names{"unknown_user", "relay_denied", "sender_refused",
                                                        "auth_failed", "commit_failed"};

template <class E>
std::size_t index(E e)
{
    return static_cast<std::size_t>(e);
}

void add(counter& c)
{
    c.fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t get(const counter& c)
{
    return c.load(std::memory_order_relaxed);
}

std::string number(double v)
{
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

void head(std::string& out, std::string_view name, std::string_view type, std::string_view help)
{
    out.append("# HELP ").append(name).append(" ").append(help).append("\n");
    out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

void sample(std::string& out, std::string_view name, std::string_view labels, std::string_view value)
{
    out.append(name);
    if (!labels.empty())
        out.append("{").append(labels).append("}");
    out.append(" ").append(value).append("\n");
}

std::string label(std::string_view k, std::string_view v)
{
    return std::string(k) + "=\"" + std::string(v) + "\"";
}

} // namespace

void connection_opened(protocol p)
{
    reg().current[index(p)].fetch_add(1, std::memory_order_relaxed);
    add(reg().total[index(p)]);
}

void connection_closed(protocol p)
{
    reg().current[index(p)].fetch_sub(1, std::memory_order_relaxed);
}

void connection_rejected(protocol p)
{
    add(reg().rejected[index(p)]);
}

void message_received()
{
    add(reg().received);
}

void refused(refusal r)
{
    add(reg().refusals[index(r)]);
}

void delivery(transport t, result r, double delay_s)
{
    add(reg().deliveries[index(t)][index(r)]);
    if (r != result::sent)
        return;
    auto& h = reg().delay[index(t)];
    std::size_t b = 0;
    while (b < delay_bounds.size() && delay_s > delay_bounds[b])
        ++b;
    if (b < delay_bounds.size())
        add(h.buckets[b]);
    add(h.count);
    double old = h.sum.load(std::memory_order_relaxed);
    while (!h.sum.compare_exchange_weak(old, old + delay_s, std::memory_order_relaxed)) {
    }
}

void dns_lookup(bool failed)
{
    add(reg().dns);
    if (failed)
        add(reg().dns_failed);
}

void tls_handshake(bool ok)
{
    add(ok ? reg().tls_ok : reg().tls_failed);
}

std::string render(const queue_state& q)
{
    auto& r = reg();
    std::string out;
    head(out, "postern_connections", "gauge", "Client connections open now.");
    for (std::size_t p = 0; p < protocol_names.size(); ++p)
        sample(out, "postern_connections", label("protocol", protocol_names[p]),
               std::to_string(r.current[p].load(std::memory_order_relaxed)));
    head(out, "postern_connections_total", "counter", "Client connections accepted since start.");
    for (std::size_t p = 0; p < protocol_names.size(); ++p)
        sample(out, "postern_connections_total", label("protocol", protocol_names[p]), std::to_string(get(r.total[p])));
    head(out, "postern_connections_rejected_total", "counter", "Connections refused over a connection limit.");
    for (std::size_t p = 0; p < protocol_names.size(); ++p)
        sample(out, "postern_connections_rejected_total", label("protocol", protocol_names[p]),
               std::to_string(get(r.rejected[p])));
    head(out, "postern_messages_received_total", "counter", "Messages accepted into the queue (250 after DATA/BDAT).");
    sample(out, "postern_messages_received_total", "", std::to_string(get(r.received)));
    head(out, "postern_refusals_total", "counter", "Recipients, senders, logins and commits refused, by reason.");
    for (std::size_t i = 0; i < refusal_names.size(); ++i)
        sample(out, "postern_refusals_total", label("reason", refusal_names[i]), std::to_string(get(r.refusals[i])));
    head(out, "postern_deliveries_total", "counter", "Delivery attempts per recipient, by transport and result.");
    for (std::size_t t = 0; t < transport_names.size(); ++t)
        for (std::size_t x = 0; x < result_names.size(); ++x)
            sample(out, "postern_deliveries_total",
                   label("transport", transport_names[t]) + "," + label("result", result_names[x]),
                   std::to_string(get(r.deliveries[t][x])));
    head(out, "postern_delivery_delay_seconds", "histogram", "From arrival to successful delivery, per recipient.");
    for (std::size_t t = 0; t < transport_names.size(); ++t) {
        const auto& h = r.delay[t];
        const auto tl = label("transport", transport_names[t]);
        std::uint64_t cumulative = 0;
        for (std::size_t b = 0; b < delay_bounds.size(); ++b) {
            cumulative += get(h.buckets[b]);
            sample(out, "postern_delivery_delay_seconds_bucket", tl + "," + label("le", number(delay_bounds[b])),
                   std::to_string(cumulative));
        }
        const auto count = get(h.count);
        sample(out, "postern_delivery_delay_seconds_bucket", tl + "," + label("le", "+Inf"), std::to_string(count));
        sample(out, "postern_delivery_delay_seconds_sum", tl, number(h.sum.load(std::memory_order_relaxed)));
        sample(out, "postern_delivery_delay_seconds_count", tl, std::to_string(count));
    }
    head(out, "postern_queue_messages", "gauge", "Messages in the queue.");
    sample(out, "postern_queue_messages", "", std::to_string(q.messages));
    head(out, "postern_queue_oldest_age_seconds", "gauge", "Age of the oldest message in the queue (0 when empty).");
    sample(out, "postern_queue_oldest_age_seconds", "", number(q.oldest_age_s));
    head(out, "postern_dns_lookups_total", "counter", "DNS queries sent for outbound delivery.");
    sample(out, "postern_dns_lookups_total", "", std::to_string(get(r.dns)));
    head(out, "postern_dns_failures_total", "counter", "DNS queries that failed (no answer, server failure, timeout).");
    sample(out, "postern_dns_failures_total", "", std::to_string(get(r.dns_failed)));
    head(out, "postern_tls_handshakes_total", "counter", "Server-side TLS handshakes, by result.");
    sample(out, "postern_tls_handshakes_total", label("result", "ok"), std::to_string(get(r.tls_ok)));
    sample(out, "postern_tls_handshakes_total", label("result", "failed"), std::to_string(get(r.tls_failed)));
    return out;
}

void reset()
{
    auto& r = reg();
    for (auto& c : r.current)
        c.store(0);
    for (auto* a : {&r.total, &r.rejected})
        for (auto& c : *a)
            c.store(0);
    r.received.store(0);
    for (auto& c : r.refusals)
        c.store(0);
    for (auto& t : r.deliveries)
        for (auto& c : t)
            c.store(0);
    for (auto& h : r.delay) {
        for (auto& c : h.buckets)
            c.store(0);
        h.count.store(0);
        h.sum.store(0);
    }
    for (auto* c : {&r.dns, &r.dns_failed, &r.tls_ok, &r.tls_failed})
        c->store(0);
}

} // namespace postern::metrics
