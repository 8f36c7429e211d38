"""The relay client's CHUNKING (RFC 3030): postern A relays to postern B,
which offers CHUNKING and BINARYMIME, with BDAT (several chunks for a large
message, no dot-stuffing); a BODY=BINARYMIME message goes through byte for
byte; to a peer without CHUNKING (an aiosmtpd sink) a BINARYMIME message is
not converted but bounced, 5.6.3 (RFC 3463)."""

from conftest import RawSMTP, make_message, queue_id_of, wait_for_files
from relay_helpers import (SENDER, dns, relay_env, send, unq, wait_dsns,  # noqa: F401
                           wait_log)


def postern_b(relay_env, host="127.0.0.5"):
    """A second postern, the MX of b.test on host:REMOTE_PORT."""
    return relay_env.postern_mx("b.test", host, "postern-b", hostname="mx.b.test",
                                local_domains=["b.test"], users=[], aliases={})


def test_large_message_relayed_with_bdat_in_chunks(relay_env):
    """A 300 KiB message with lines that start with dots and long lines: A
    sends it with BDAT (PIPELINING offered too), B stores exactly what was
    sent to A."""
    b = postern_b(relay_env)
    a = relay_env.postern(name="postern-a")
    lines = []
    for i in range(6000):
        lines.append((".dot line " if i % 7 == 0 else "line ") + str(i) + " " + "x" * 40)
    lines.append(".")
    msg = make_message("bdat relay", body_lines=lines)
    assert len(msg) > 4 * 64 * 1024
    qid, _ = send(a, ["bea@b.test"], msg=msg)
    (f,) = wait_for_files(b.new("bea@b.test"), 1, timeout=30)
    assert f.read_bytes().endswith(msg)
    (ev,) = wait_log(a, "remote_transaction", id=qid)
    assert unq(ev["body"]) == "BDAT", ev
    wait_log(a, "delivery", id=qid, status="sent", relay="mx.b.test")
    a.wait_queue_empty()


def send_binarymime(server, rcpt, data):
    """BODY=BINARYMIME with BDAT (RFC 3030 3) to postern; returns the queue id."""
    with RawSMTP(server.port) as c:
        c.greeting()
        caps = c.ehlo()
        assert "CHUNKING" in caps and "BINARYMIME" in caps, caps
        c.ok(f"MAIL FROM:<{SENDER}> BODY=BINARYMIME", 250, "2.1.0")
        c.ok(f"RCPT TO:<{rcpt}>", 250, "2.1.5")
        c.send(f"BDAT {len(data)} LAST\r\n".encode() + data)
        texts = c.expect(250, "2.0.0")
        c.ok("QUIT", 221)
    return queue_id_of(texts[-1])


BINARY = (b"From: Alice <alice@example.test>\r\nTo: bea@b.test\r\nSubject: binary\r\n"
          b"MIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
          b"Content-Transfer-Encoding: binary\r\n\r\n"
          b"\x00\x01\x02 NUL and friends\n\rbare LF, bare CR\r\n.\r\n\xff\xfe" + bytes(range(256)) * 4)


def test_binarymime_relayed_to_a_peer_with_chunking_and_binarymime(relay_env):
    b = postern_b(relay_env)
    a = relay_env.postern(name="postern-a")
    qid = send_binarymime(a, "bea@b.test", BINARY)
    (f,) = wait_for_files(b.new("bea@b.test"), 1, timeout=30)
    assert f.read_bytes().endswith(BINARY)
    (ev,) = wait_log(a, "remote_transaction", id=qid)
    assert unq(ev["body"]) == "BDAT", ev
    a.wait_queue_empty()


def test_binarymime_to_a_peer_without_chunking_bounces_5_6_3(relay_env):
    d = relay_env.dns
    d.mx("plain.test", (10, "mx.plain.test"))
    d.a("mx.plain.test", "127.0.0.3")
    sink = relay_env.sink("127.0.0.3")  # aiosmtpd: no CHUNKING, no BINARYMIME
    a = relay_env.postern()
    qid = send_binarymime(a, "user@plain.test", BINARY)
    ev = wait_log(a, "delivery", id=qid, to="user@plain.test", status="bounced")[0]
    assert "554 5.6.3" in unq(ev["detail"]), ev
    (dsn,) = wait_dsns(a, SENDER, 1)
    (r,) = dsn["recipients"]
    assert r["status"] == "5.6.3", r
    assert r["action"].lower() == "failed", r
    assert sink.messages == [], "nothing may reach a peer that cannot take it"
    a.wait_queue_empty()
