// delivery/remote_agent.hpp — relays messages to other servers: MX lookup
// (dns::resolver, RFC 5321 5.1 via dns::plan_mx), connect, drive
// smtp::client_session over the connection, report per-recipient outcomes.
// A thin Asio shell around the pure client, as smtp_server is around the
// pure server session.
// Jobs queue per destination domain; each connection worker takes jobs of
// its domain one after another over one connection (reuse, up to
// remote.messages_per_connection). Connections are capped overall
// (remote.concurrency) and per domain (remote.concurrency_per_domain).
// A host that refuses the greeting, cannot be reached or drops before the
// first transaction is skipped for the next address / MX host; when none
// is left the jobs are deferred with the last failure (4xx).
// Thread: submit() from any thread; everything else runs on the io thread,
// and done() is called there.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "postern/config/config.hpp"
#include "postern/dns/resolver.hpp"
#include "postern/live/generation.hpp"
#include "postern/net/asio.hpp"
#include "postern/smtp/client_session.hpp"

namespace postern::delivery {

struct remote_job {
    std::string id;     // queue id
    std::string domain; // destination domain, lower-case
    std::string sender; // "" for <>
    std::vector<std::string> recipients;
    bool smtputf8 = false;
    bool eight_bit = false;
    bool binary = false; // BODY=BINARYMIME: only a peer with CHUNKING and BINARYMIME takes it
    std::uint64_t size = 0;
    // The message as queued (not dot-encoded: the client encodes it as it
    // goes out for DATA, or sends it as is with BDAT), shared by the jobs of
    // one message.
    std::shared_ptr<const std::string> body;
    // DSN (RFC 3461) parameters passed on to a peer that offers DSN: MAIL's
    // ("RET=HDRS", "ENVID=<xtext>") and one string per recipient ("NOTIFY=…
    // ORCPT=…", "" for none), as smtp::envelope_out takes them.
    std::vector<std::string> mail_params;
    std::vector<std::string> rcpt_params;
};

struct remote_outcome {
    std::string id;
    std::vector<std::string> recipients;
    std::vector<smtp::rcpt_result> results; // one per recipient, same order
    std::string remote_mta;                 // the host that gave the answers, if any
    // relay= of the delivery log line when not remote_mta ("lmtp:<spec>":
    // no DNS name for a DSN's Remote-MTA).
    std::string relay;
    // DSN (RFC 3461): the peer offered DSN, so NOTIFY went on with the
    // message and success notices are its business (5.2.2); otherwise a
    // 2xx is "relayed" — or "delivered" for a final delivery (LMTP, 5.2.3).
    bool peer_dsn = false;
    bool final_delivery = false;
};

class remote_agent {
public:
    using done_fn = std::function<void(remote_outcome)>;

    // live: the configuration (remote.*, relay.*, hostname), taken afresh
    // by every delivery attempt; relay.password_file is read here, once.
    // live outlives the agent.
    remote_agent(asio::io_context& io, dns::resolver& resolver, const live::current& live,
                 done_fn done);
    void submit(remote_job job);
    // Stops taking jobs; connections in progress finish their transaction.
    void stop();

    struct state;

private:
    std::shared_ptr<state> st_;
};

} // namespace postern::delivery
