"""Hostile bounce sources: a message built to hurt whoever parses it (MIME
nested thousands of levels deep, a huge header section, boundary strings that
look like the report's own) is bounced by a remote peer. postern's DSN
(RFC 3464) must come out well formed, with a bounded copy of the original
headers, and the server must stay small and keep serving."""

from conftest import HOSTNAME, wait_until
from relay_helpers import (SENDER, assert_dsn_envelope, dns, relay_env,  # noqa: F401
                           send, wait_dsns, wait_log)

DEPTH = 5000


def nested_mime(depth):
    """A message whose body is `depth` multipart levels, each with its own
    boundary, plus a 200 KB header section of folded lines."""
    head = [f"From: <{SENDER}>", "To: <x@bounce.test>", "Subject: nested",
            "MIME-Version: 1.0",
            'Content-Type: multipart/mixed; boundary="b0"']
    # ~200 KB of header: far past the DSN's 64 KiB header copy bound.
    head += [f"X-Filler-{i}: " + "y" * 70 + "\r\n\t" + "z" * 70 for i in range(1300)]
    body = []
    for i in range(depth):
        body.append(f"--b{i}")
        body.append(f'Content-Type: multipart/mixed; boundary="b{i + 1}"')
        body.append("")
    body.append(f"--b{depth}")
    body.append("Content-Type: text/plain")
    body.append("")
    body.append("the innermost part")
    # a line that looks like a boundary of a multipart/report
    body.append("--=_postern_report_boundary")
    for i in range(depth, -1, -1):
        body.append(f"--b{i}--")
    return ("\r\n".join(head) + "\r\n\r\n" + "\r\n".join(body) + "\r\n").encode()


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_deeply_nested_mime_bounce_source(relay_env):
    relay_env.dns.mx("bounce.test", (10, "mx.bounce.test"))
    relay_env.dns.a("mx.bounce.test", "127.0.0.2")
    sink = relay_env.sink("127.0.0.2")
    sink.rcpt_replies = {"x@bounce.test": "550 5.1.1 x: no such user here"}
    srv = relay_env.postern()
    base = rss_kib(srv.proc.pid)
    msg = nested_mime(DEPTH)
    assert len(msg) > 250_000
    qid, _ = send(srv, ["x@bounce.test"], msg=msg)
    wait_log(srv, "delivery", id=qid, to="x@bounce.test", status="bounced")
    (dsn,) = wait_dsns(srv, SENDER, 1)
    assert_dsn_envelope(srv, dsn, HOSTNAME)
    assert [r["final-recipient"].lower() for r in dsn["recipients"]] == ["rfc822; x@bounce.test"]
    assert dsn["recipients"][0]["status"] == "5.1.1"
    # The original's header copy is bounded (64 KiB plus the line that
    # crosses it), and only headers: none of the nested body is in it.
    assert 0 < len(dsn["headers"]) <= 64 * 1024 + 200, len(dsn["headers"])
    assert "Subject: nested" in dsn["headers"]
    assert "the innermost part" not in dsn["headers"]
    # The report's own MIME structure is intact: the fake boundary in the
    # original did not split it (parse_dsn found exactly its parts).
    assert dsn["msg"].get_content_type() == "multipart/report"
    wait_until(lambda: not srv.queue_files(), 20, "the bounced message leaves the queue")
    assert srv.alive()
    grown = rss_kib(srv.proc.pid) - base
    print(f"nested MIME bounce: VmRSS grew {grown} KiB for a {len(msg)} octet source")
    assert grown < 64 * 1024
