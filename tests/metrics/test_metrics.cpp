#include "postern/metrics/metrics.hpp"

#include <map>
#include <sstream>
#include <string>

#include <doctest/doctest.h>

using namespace postern;

namespace {

// name{labels} → value, from the exposition text; every sample line must
// follow a TYPE line of its family.
std::map<std::string, std::string> samples(const std::string& text)
{
    std::map<std::string, std::string> out;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
        if (line.empty() || line[0] == '#')
            continue;
        auto sp = line.rfind(' ');
        REQUIRE(sp != std::string::npos);
        out[line.substr(0, sp)] = line.substr(sp + 1);
    }
    return out;
}

} // namespace

TEST_SUITE("metrics")
{
    TEST_CASE("counters and gauges are rendered in the Prometheus text format with HELP and TYPE")
    {
        metrics::reset();
        metrics::connection_opened(metrics::protocol::smtp);
        metrics::connection_opened(metrics::protocol::smtp);
        metrics::connection_closed(metrics::protocol::smtp);
        metrics::connection_rejected(metrics::protocol::pop3);
        metrics::message_received();
        metrics::refused(metrics::refusal::relay_denied);
        metrics::refused(metrics::refusal::relay_denied);
        metrics::dns_lookup(false);
        metrics::dns_lookup(true);
        metrics::tls_handshake(true);
        const auto text = metrics::render({3, 42.5});
        auto m = samples(text);
        CHECK(m["postern_connections{protocol=\"smtp\"}"] == "1");
        CHECK(m["postern_connections_total{protocol=\"smtp\"}"] == "2");
        CHECK(m["postern_connections_rejected_total{protocol=\"pop3\"}"] == "1");
        CHECK(m["postern_messages_received_total"] == "1");
        CHECK(m["postern_refusals_total{reason=\"relay_denied\"}"] == "2");
        CHECK(m["postern_refusals_total{reason=\"unknown_user\"}"] == "0");
        CHECK(m["postern_dns_lookups_total"] == "2");
        CHECK(m["postern_dns_failures_total"] == "1");
        CHECK(m["postern_tls_handshakes_total{result=\"ok\"}"] == "1");
        CHECK(m["postern_queue_messages"] == "3");
        CHECK(m["postern_queue_oldest_age_seconds"] == "42.5");
        CHECK(text.find("# TYPE postern_connections_total counter\n") != std::string::npos);
        CHECK(text.find("# TYPE postern_delivery_delay_seconds histogram\n") != std::string::npos);
        CHECK(text.find("# HELP postern_queue_messages ") != std::string::npos);
        CHECK(text.back() == '\n');
    }

    TEST_CASE("the delivery delay histogram is cumulative per transport; only successes are observed")
    {
        metrics::reset();
        metrics::delivery(metrics::transport::local, metrics::result::sent, 0.05);
        metrics::delivery(metrics::transport::local, metrics::result::sent, 3);
        metrics::delivery(metrics::transport::local, metrics::result::sent, 100000); // past the last bound
        metrics::delivery(metrics::transport::remote, metrics::result::deferred, 7);
        metrics::delivery(metrics::transport::remote, metrics::result::bounced, 7);
        auto m = samples(metrics::render({}));
        const std::string local = "postern_delivery_delay_seconds_bucket{transport=\"local\",le=";
        CHECK(m[local + "\"0.10000000000000001\"}"] == "1");
        CHECK(m[local + "\"1\"}"] == "1");
        CHECK(m[local + "\"5\"}"] == "2");
        CHECK(m[local + "\"86400\"}"] == "2");
        CHECK(m[local + "\"+Inf\"}"] == "3");
        CHECK(m["postern_delivery_delay_seconds_count{transport=\"local\"}"] == "3");
        CHECK(m["postern_delivery_delay_seconds_sum{transport=\"local\"}"] == "100003.05");
        CHECK(m["postern_delivery_delay_seconds_count{transport=\"remote\"}"] == "0");
        CHECK(m["postern_deliveries_total{transport=\"local\",result=\"sent\"}"] == "3");
        CHECK(m["postern_deliveries_total{transport=\"remote\",result=\"deferred\"}"] == "1");
        CHECK(m["postern_deliveries_total{transport=\"remote\",result=\"bounced\"}"] == "1");
        CHECK(m["postern_queue_messages"] == "0");
    }
}
