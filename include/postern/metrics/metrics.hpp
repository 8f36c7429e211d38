// metrics/metrics.hpp — the server's counters for Prometheus (config
// "metrics": {"address": ...}, served on /metrics by server::metrics_server):
// connections, messages received and refused, deliveries by result and
// transport with a delay histogram, DNS lookups, TLS handshakes.
// One process-wide set of relaxed atomics: every thread (event loop,
// committer, runner, pools) counts without a lock; a scrape reads a
// consistent-enough snapshot (counters only grow). The label sets are fixed
// enums, so the output's size is bounded whatever clients do.
// Thread: any.
#pragma once

#include <cstdint>
#include <string>

namespace postern::metrics {

enum class protocol { smtp, pop3, imap };
enum class transport { local, remote };
enum class result { sent, deferred, bounced };
// Why a recipient, sender, login or message was refused (the reason label).
enum class refusal { unknown_user, relay_denied, sender_refused, auth_failed, commit_failed };

void connection_opened(protocol p);
void connection_closed(protocol p);
void connection_rejected(protocol p); // over a connection limit
void message_received();
void refused(refusal r);
// delay_s: from the message's arrival to this outcome.
void delivery(transport t, result r, double delay_s);
void dns_lookup(bool failed);
void tls_handshake(bool ok);

struct queue_state {
    std::uint64_t messages = 0;
    double oldest_age_s = 0; // 0 when empty
};

// The Prometheus text exposition format 0.0.4, every metric with HELP and
// TYPE, names prefixed "postern_".
std::string render(const queue_state& q);

// Back to zero (tests).
void reset();

} // namespace postern::metrics
