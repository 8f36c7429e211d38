"""Outbound relay: finding the remote host (MX preference, fallback to the
next host, implicit MX, null MX, NXDOMAIN, temporary DNS failures, loops).

Each test runs postern with relay_networks 127.0.0.0/8, a test DNS server
(relay_helpers.TestDNS) and aiosmtpd sinks on 127.0.0.N:<remote.port>."""

import re

import pytest

from conftest import HOSTNAME, wait_until
from relay_helpers import (SENDER, assert_dsn_envelope, dns, relay_env,  # noqa: F401
                           send, wait_dsns, wait_log, log_events_with, unq)


def assert_relayed_copy(m, *, rcpts, body, sender=SENDER):
    """What a sink got is postern's copy: the envelope, postern's EHLO name,
    postern's Received: header on top and the original bytes after it."""
    assert m["mail_from"] == sender, m
    assert sorted(r.lower() for r in m["rcpt_tos"]) == sorted(r.lower() for r in rcpts), m
    assert m["ehlo"] == HOSTNAME, m
    data = m["data"]
    assert data.startswith(b"Received: from "), data[:200]
    assert b"by " + HOSTNAME.encode() + b" (postern)" in re.sub(rb"\s+", b" ", data[:1000]), data[:400]
    assert data.endswith(body), (data[-300:], body[-300:])
    # SIZE declared (the sink advertises SIZE)
    opts = [o.upper() for o in m["mail_options"]]
    assert any(o.startswith("SIZE=") for o in opts), opts
    size = int([o for o in opts if o.startswith("SIZE=")][0][5:])
    assert size >= len(body), (size, len(body))


def test_mx_preference_best_host_gets_it(relay_env):
    d = relay_env.dns
    d.mx("pref.test", (20, "mx2.pref.test"), (10, "mx1.pref.test"))
    d.a("mx1.pref.test", "127.0.0.2")
    d.a("mx2.pref.test", "127.0.0.3")
    best = relay_env.sink("127.0.0.2")
    worse = relay_env.sink("127.0.0.3")
    srv = relay_env.postern()
    qid, msg = send(srv, ["user@pref.test"])
    (m,) = best.wait_messages(1)
    assert_relayed_copy(m, rcpts=["user@pref.test"], body=msg)
    ev = wait_log(srv, "delivery", id=qid, status="sent")
    assert unq(ev[0]["relay"]) == "mx1.pref.test", ev
    assert unq(ev[0]["to"]) == "user@pref.test", ev
    srv.wait_queue_empty()
    assert worse.messages == [] and worse.connections == []
    assert srv.all_delivered() == []  # no DSN, nothing local


def test_mx_fallback_when_best_is_dead(relay_env):
    d = relay_env.dns
    d.mx("dead.test", (10, "mx1.dead.test"), (20, "mx2.dead.test"))
    d.a("mx1.dead.test", "127.0.0.2")  # nothing listens there
    d.a("mx2.dead.test", "127.0.0.3")
    second = relay_env.sink("127.0.0.3")
    srv = relay_env.postern()
    qid, msg = send(srv, ["user@dead.test"])
    (m,) = second.wait_messages(1)
    assert_relayed_copy(m, rcpts=["user@dead.test"], body=msg)
    ev = wait_log(srv, "delivery", id=qid, status="sent")
    assert unq(ev[0]["relay"]) == "mx2.dead.test", ev
    srv.wait_queue_empty()
    assert srv.all_delivered() == []


@pytest.mark.parametrize("greeting", ["421 4.3.2 Service not available, closing",
                                      "554 5.3.2 No SMTP service here"])
def test_mx_fallback_when_best_refuses_greeting(relay_env, greeting):
    d = relay_env.dns
    d.mx("busy.test", (10, "mx1.busy.test"), (20, "mx2.busy.test"))
    d.a("mx1.busy.test", "127.0.0.2")
    d.a("mx2.busy.test", "127.0.0.3")
    refusing = relay_env.refusing("127.0.0.2", greeting)
    second = relay_env.sink("127.0.0.3")
    srv = relay_env.postern()
    qid, msg = send(srv, ["user@busy.test"])
    (m,) = second.wait_messages(1)
    assert_relayed_copy(m, rcpts=["user@busy.test"], body=msg)
    assert refusing.connections >= 1
    # after a refused greeting the client may only say QUIT
    assert all(c.upper().startswith("QUIT") for c in refusing.commands), refusing.commands
    wait_log(srv, "delivery", id=qid, status="sent", relay="mx2.busy.test")
    srv.wait_queue_empty()
    assert srv.all_delivered() == []  # a 554 greeting is no reason to bounce


def test_all_hosts_unusable_defers(relay_env):
    """Every MX dead: deferred, no bounce, still queued."""
    d = relay_env.dns
    d.mx("down.test", (10, "mx1.down.test"), (20, "mx2.down.test"))
    d.a("mx1.down.test", "127.0.0.2")
    d.a("mx2.down.test", "127.0.0.3")
    srv = relay_env.postern(queue={"retry_initial_s": 60, "retry_max_s": 60})
    qid, _ = send(srv, ["user@down.test"])
    ev = wait_log(srv, "delivery", id=qid, status="deferred")
    assert unq(ev[0]["detail"]).startswith("4"), ev
    assert srv.queue_files(), "the deferred message must stay queued"
    assert srv.all_delivered() == []
    assert log_events_with(srv, "dsn") == []


def test_implicit_mx(relay_env):
    """No MX record: the domain's own A record is the host (RFC 5321 5.1)."""
    d = relay_env.dns
    d.a("plain.test", "127.0.0.4")
    sink = relay_env.sink("127.0.0.4")
    srv = relay_env.postern()
    qid, msg = send(srv, ["someone@plain.test"])
    (m,) = sink.wait_messages(1)
    assert_relayed_copy(m, rcpts=["someone@plain.test"], body=msg)
    ev = wait_log(srv, "delivery", id=qid, status="sent")
    assert unq(ev[0]["relay"]) == "plain.test", ev
    assert d.queried("plain.test", "MX"), d.queries
    srv.wait_queue_empty()


def bounce_test(relay_env, domain, rcpt, status, route_result):
    sinks = [relay_env.sink(h) for h in ("127.0.0.2", "127.0.0.3")]
    srv = relay_env.postern()
    qid, msg = send(srv, [rcpt], subject=f"to {domain}")
    (dsn,) = wait_dsns(srv, SENDER, 1)
    assert_dsn_envelope(srv, dsn, HOSTNAME)
    assert len(dsn["recipients"]) == 1, dsn["recipients"]
    r = dsn["recipients"][0]
    assert r["final-recipient"].lower() == f"rfc822; {rcpt}".lower(), r
    assert r["action"].lower() == "failed", r
    assert r["status"] == status, r
    assert "remote-mta" not in r, r  # no host ever answered
    assert dsn["headers"] is not None and f"Subject: to {domain}" in dsn["headers"], dsn["headers"]
    wait_log(srv, "remote_route", domain=domain, result=route_result)
    ev = wait_log(srv, "dsn", id=qid, action="failed")
    assert unq(ev[0]["to"]) in (SENDER, f"<{SENDER}>"), ev
    wait_log(srv, "delivery", id=qid, status="bounced")
    srv.wait_queue_empty()
    for s in sinks:
        assert s.messages == [] and s.connections == [], s.name
    return dsn, qid


def test_null_mx_bounces_5_1_10(relay_env):
    relay_env.dns.mx("nullmx.test", (0, "."))
    relay_env.dns.a("nullmx.test", "127.0.0.2")  # must not be used
    bounce_test(relay_env, "nullmx.test", "user@nullmx.test", "5.1.10", "null_mx")


def test_nxdomain_bounces_5_1_2(relay_env):
    bounce_test(relay_env, "nowhere.test", "user@nowhere.test", "5.1.2", "nxdomain")


def test_mx_loop_to_myself_bounces_5_4_6(relay_env):
    d = relay_env.dns
    d.mx("loop.test", (10, HOSTNAME), (20, "mx2.loop.test"))
    d.a(HOSTNAME, "127.0.0.2")
    d.a("mx2.loop.test", "127.0.0.3")
    bounce_test(relay_env, "loop.test", "user@loop.test", "5.4.6", "loop")


def test_servfail_defers_then_delivers(relay_env):
    d = relay_env.dns
    d.mx("flaky.test", (10, "mx.flaky.test"))
    d.a("mx.flaky.test", "127.0.0.2")
    d.servfail("flaky.test")
    sink = relay_env.sink("127.0.0.2")
    srv = relay_env.postern(queue={"retry_initial_s": 1, "retry_max_s": 1})
    qid, msg = send(srv, ["user@flaky.test"])
    ev = wait_log(srv, "delivery", id=qid, status="deferred")
    assert unq(ev[0]["detail"]).startswith("4"), ev
    wait_log(srv, "remote_route", domain="flaky.test", result="temporary")
    assert srv.queue_files(), "a deferred message stays in spool/queue"
    assert srv.all_delivered() == [] and log_events_with(srv, "dsn") == []
    assert sink.messages == []
    # a retry must ask DNS again (temporary failures are not cached)
    n = len(d.queried("flaky.test", "MX"))
    wait_until(lambda: len(d.queried("flaky.test", "MX")) > n, 15, "a retried MX lookup")
    d.servfail("flaky.test", on=False)
    (m,) = sink.wait_messages(1, timeout=20)
    assert_relayed_copy(m, rcpts=["user@flaky.test"], body=msg)
    wait_log(srv, "delivery", id=qid, status="sent")
    srv.wait_queue_empty()
    assert srv.all_delivered() == [] and log_events_with(srv, "dsn") == []


def test_dns_timeout_defers(relay_env):
    """No answer at all from DNS: a temporary failure, never a bounce."""
    d = relay_env.dns
    d.drop("silent.test")
    srv = relay_env.postern(queue={"retry_initial_s": 60, "retry_max_s": 60})
    qid, _ = send(srv, ["user@silent.test"])
    wait_log(srv, "delivery", timeout=60, id=qid, status="deferred")
    wait_log(srv, "remote_route", domain="silent.test", result="temporary")
    assert srv.queue_files()
    assert srv.all_delivered() == [] and log_events_with(srv, "dsn") == []


def test_mx_host_without_address_falls_back(relay_env):
    """The best MX host has no A/AAAA (NXDOMAIN): the next host is used."""
    d = relay_env.dns
    d.mx("noaddr.test", (10, "gone.noaddr.test"), (20, "mx2.noaddr.test"))
    d.a("mx2.noaddr.test", "127.0.0.3")
    sink = relay_env.sink("127.0.0.3")
    srv = relay_env.postern()
    qid, msg = send(srv, ["user@noaddr.test"])
    (m,) = sink.wait_messages(1)
    assert_relayed_copy(m, rcpts=["user@noaddr.test"], body=msg)
    wait_log(srv, "delivery", id=qid, status="sent", relay="mx2.noaddr.test")
    srv.wait_queue_empty()


def test_ipv6_only_mx_host(relay_env):
    """An MX host with only an AAAA record (::1) is reached over IPv6."""
    import socket
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", relay_env.port))
    except OSError as e:
        pytest.skip(f"cannot listen on [::1]:{relay_env.port}: {e}")
    d = relay_env.dns
    d.mx("six.test", (10, "mx.six.test"))
    d.aaaa("mx.six.test", "::1")
    sink = relay_env.sink("::1")
    srv = relay_env.postern()
    qid, msg = send(srv, ["user@six.test"])
    (m,) = sink.wait_messages(1)
    assert_relayed_copy(m, rcpts=["user@six.test"], body=msg)
    assert m["peer"][0] == "::1", m["peer"]
    wait_log(srv, "delivery", id=qid, status="sent", relay="mx.six.test")
    srv.wait_queue_empty()


def test_helo_fallback(relay_env):
    """A server that refuses EHLO gets HELO, and plain SMTP (no ESMTP
    parameters on MAIL FROM)."""
    d = relay_env.dns
    d.mx("old.test", (10, "mx.old.test"))
    d.a("mx.old.test", "127.0.0.2")
    sink = relay_env.sink("127.0.0.2", refuse_ehlo=True)
    srv = relay_env.postern()
    qid, msg = send(srv, ["user@old.test"])
    (m,) = sink.wait_messages(1)
    assert sink.ehlo_refused >= 1
    assert [c["verb"] for c in sink.connections] == ["HELO"], sink.connections
    assert m["ehlo"] == HOSTNAME and m["rcpt_tos"] == ["user@old.test"], m
    assert m["mail_options"] == [], m["mail_options"]
    assert m["data"].endswith(msg)
    wait_log(srv, "delivery", id=qid, status="sent")
    srv.wait_queue_empty()
