"""Outbound relay against real servers: a second postern as the final
destination, Debian's Postfix as the final destination, and who may relay
(relay_networks)."""

import os
import re

import pytest

from conftest import (HOSTNAME, RawSMTP, dot_stuff, make_message,
                      parse_received, split_delivered, wait_for_files)
from relay_helpers import (POSTFIX, SENDER, PostfixInstance, dns, relay_env,  # noqa: F401
                           log_events_with, send, unq, wait_log)


def received_headers(data):
    """Every Received: header (unfolded, in order) of a message."""
    head = data.split(b"\r\n\r\n", 1)[0]
    unfolded = re.sub(rb"\r\n[ \t]+", b" ", head)
    return [line for line in unfolded.split(b"\r\n") if line.lower().startswith(b"received:")]


def test_postern_to_postern(relay_env):
    """postern A relays to postern B (the MX of b.test on 127.0.0.5); the
    message lands in B's Maildir with B's Received: on top of A's."""
    b = relay_env.postern_mx("b.test", "127.0.0.5", "postern-b", hostname="mx.b.test",
                             local_domains=["b.test"], users=[], aliases={})
    a = relay_env.postern(name="postern-a")
    qid, msg = send(a, ["Bea@b.test"], subject="A to B")
    (f,) = wait_for_files(b.new("bea@b.test"), 1)
    data = f.read_bytes()
    rp, dt, rcv_b, rest = split_delivered(data)
    assert rp == b"<" + SENDER.encode() + b">", rp
    assert dt in (b"Bea@b.test", b"<Bea@b.test>", b"bea@b.test", b"<bea@b.test>"), dt
    rb = parse_received(rcv_b)
    assert rb["by"] == "mx.b.test", rcv_b
    # B offers STARTTLS (self-signed by default) and A's tls_policy "may" uses it
    assert rb["proto"] == "ESMTPS", rcv_b
    assert b"version=TLSv1.3" in rcv_b, rcv_b
    # B's Received: names A (EHLO mx.example.test) as the client
    assert HOSTNAME.encode() in rcv_b, rcv_b
    # then A's own Received: header, then the original message, byte for byte
    rcvs = received_headers(rest)
    assert len(rcvs) == 1, rcvs
    ra = parse_received(rcvs[0])
    assert ra["by"] == HOSTNAME and ra["id"] == qid, ra
    assert rest.endswith(msg)
    wait_log(a, "delivery", id=qid, status="sent", relay="mx.b.test")
    a.wait_queue_empty()
    b.wait_queue_empty()
    assert a.all_delivered() == []


def test_relay_refused_outside_relay_networks(relay_env):
    """relay_networks ["127.0.0.2/32"]: a client at 127.0.0.1 gets 554 5.7.1
    for a remote recipient (local ones are fine); a client at 127.0.0.2 may
    relay, and the message reaches the remote host."""
    d = relay_env.dns
    d.mx("far.test", (10, "mx.far.test"))
    d.a("mx.far.test", "127.0.0.3")
    sink = relay_env.sink("127.0.0.3")
    srv = relay_env.postern(relay_networks=["127.0.0.2/32"])
    with RawSMTP(srv.port) as c:
        c.greeting()
        c.ehlo()
        c.ok(f"MAIL FROM:<{SENDER}>", 250, "2.1.0")
        c.ok("RCPT TO:<user@far.test>", 554, "5.7.1")
        c.ok("RCPT TO:<bob@example.test>", 250, "2.1.5")
        c.ok("RSET", 250)
        c.ok("QUIT", 221)
    msg = make_message("from the relay network")
    with RawSMTP(srv.port, source="127.0.0.2") as c:
        c.greeting()
        c.ehlo()
        qid = c.transaction(SENDER, ["user@far.test"], dot_stuff(msg))
        c.ok("QUIT", 221)
    (m,) = sink.wait_messages(1)
    assert m["rcpt_tos"] == ["user@far.test"] and m["data"].endswith(msg)
    # the Received: header records the real client address
    assert b"127.0.0.2" in m["data"].split(b"\r\n\r\n", 1)[0], m["data"][:400]
    wait_log(srv, "delivery", id=qid, status="sent")
    assert len(log_events_with(srv, "message")) == 1, "the refused transaction queued nothing"
    srv.wait_queue_empty()


def test_relay_to_postfix(relay_env):
    """Interop with a real Postfix (Debian's) as the final destination."""
    if not os.access(POSTFIX, os.X_OK):
        pytest.skip(f"{POSTFIX} is not installed")
    if os.geteuid() != 0:
        pytest.skip("a private Postfix instance needs root (postfix start)")
    d = relay_env.dns
    d.mx("p.test", (10, "mx.p.test"))
    d.a("mx.p.test", "127.0.0.6")
    pf = PostfixInstance("127.0.0.6", relay_env.port, "p.test", ["user"])
    try:
        pf.start()
        srv = relay_env.postern()
        msg = make_message("to postfix", body_lines=["Hello Postfix.", ".leading dot", "", "x"])
        qid, _ = send(srv, ["user@p.test"], msg=msg)
        ev = wait_log(srv, "delivery", id=qid, status="sent", relay="mx.p.test")
        assert unq(ev[0]["detail"]).startswith("250"), ev
        (f,) = wait_for_files(pf.new("user"), 1, timeout=30)
        data = f.read_bytes().replace(b"\r\n", b"\n")  # Postfix's Maildir uses LF
        rcvs = received_headers(data.replace(b"\n", b"\r\n"))
        assert len(rcvs) >= 2, rcvs
        # Postfix's own Received: (from postern's EHLO name) above postern's
        assert b"by mx.p.test (Postfix)" in rcvs[0] and HOSTNAME.encode() in rcvs[0], rcvs[0]
        assert parse_received(rcvs[1])["id"] == qid, rcvs[1]
        assert data.endswith(msg.replace(b"\r\n", b"\n")), data[-300:]
        assert f"from=<{SENDER}>" in pf.log(), pf.log()[-2000:]
        srv.wait_queue_empty()
    except BaseException:
        print("---- postfix maillog ----\n" + pf.log()[-4000:])
        raise
    finally:
        pf.stop()
        pf.cleanup()
