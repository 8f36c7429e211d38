// delivery/lmtp_agent.hpp — delivers local recipients to an LMTP server
// (RFC 2033: Dovecot's lmtp, Cyrus lmtpd) instead of Maildir, for the
// domains of config "delivery": {"lmtp": ..., "domains": [...]}.
// A thin Asio shell around smtp::client_session in LMTP mode, as
// remote_agent is for SMTP (delivery/client_io.hpp holds what they share):
// connect (unix socket or TCP host:port, within remote.connect_timeout),
// LHLO, then messages one after another over the connection (up to
// remote.messages_per_connection), at most max_connections at a time.
// Every reply waits at most remote.command_timeout.
// Outcomes (remote_outcome, relay "lmtp:<spec>"), one result per recipient:
// the server's own reply after the message (RFC 2033 4.2): 2xx delivered,
// 4xx deferred, 5xx bounced. A server that cannot be reached (socket
// missing, refused, timeout) or a connection lost defers every recipient in
// hand, 4.4.1 / 4.4.2: nothing is lost.
// Jobs carry the mailbox addresses (local@domain, aliases already expanded
// by local_agent) and the message as queued; the LMTP server writes
// Return-Path: and Delivered-To: (RFC 5321 4.4: the final delivery agent
// does; Dovecot always writes Return-Path, so adding ours would double it).
// Thread: submit()/stop()/handles() from any thread; everything else runs
// on the io thread, and done() is called there.
#pragma once

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include "postern/config/config.hpp"
#include "postern/delivery/remote_agent.hpp"
#include "postern/live/generation.hpp"
#include "postern/net/asio.hpp"

namespace postern::delivery {

class lmtp_agent {
public:
    using done_fn = std::function<void(remote_outcome)>;
    static constexpr std::uint32_t max_connections = 8;

    // cfg.delivery.lmtp must be set; cfg outlives the agent.
    lmtp_agent(asio::io_context& io, const config::settings& cfg, done_fn done);
    // Live: each connection takes the generation in force (hostname,
    // remote.* timeouts and reuse); the server (delivery.lmtp) and handles()
    // stay as at construction (live::restart_only; the runner asks the
    // generation for the domains). live outlives the agent.
    lmtp_agent(asio::io_context& io, const live::current& live, done_fn done);
    // True when mail for this (lower-case) local domain goes over LMTP.
    bool handles(std::string_view domain) const;
    // "lmtp:unix:/run/dovecot/lmtp": relay= in the delivery log lines.
    const std::string& relay() const noexcept { return relay_; }
    void submit(remote_job job);
    // Stops taking jobs; connections in progress finish their transaction.
    void stop();

    struct state;

private:
    std::shared_ptr<state> st_;
    std::set<std::string, std::less<>> domains_;
    std::string relay_;
};

} // namespace postern::delivery
