"""Robustness: garbage input, resets, aborted sessions, end-of-data framing
split across writes, parameter edge cases, log format."""

import re
import socket

import pytest

from conftest import (RawSMTP, check_delivered, dot_stuff, make_message, queue_id_of,
                      wait_for_files, wait_until)


def test_garbage_lines_do_not_hurt(server):
    garbage = [b"\x00\x01\x02", b"\xff\xfe\xfd", b"   ", b"", b"\x1b[31mred",
               b"MAIL\x00FROM:<a@b.test>", "ÄÖÜ".encode(), b"\t"]
    with server.connect() as c:
        c.greeting()
        for g in garbage:
            c.send(g + b"\r\n")
            code, texts = c.reply()
            assert 500 <= code <= 504, (g, code, texts)
        c.ok("EHLO client.test", 250)
        c.ok("NOOP", 250, "2.0.0")
        c.assert_nothing_pending()
    assert server.alive()


def test_ehlo_resets_transaction(server):
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        c.ok("RCPT TO:<alice@example.test>", 250, "2.1.5")
        c.ehlo()
        c.ok("DATA", 503, "5.5.1")
        c.ok("RCPT TO:<alice@example.test>", 503, "5.5.1")
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        c.assert_nothing_pending()


def test_recipient_case_duplicates_deliver_once(server):
    msg = make_message("dupes")
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        for r in ("bob@example.test", "BOB@example.test", "bob@EXAMPLE.TEST",
                  "Someone@catchall.test", "someone@CATCHALL.test"):
            c.ok(f"RCPT TO:<{r}>", 250, "2.1.5")
        c.ok("DATA", 354)
        c.send(dot_stuff(msg) + b".\r\n")
        c.expect(250, "2.0.0")
        c.assert_nothing_pending()
    wait_for_files(server.new("bob@example.test"), 1)
    wait_for_files(server.new("someone@catchall.test"), 1)
    server.wait_queue_empty()
    assert len(server.delivered("bob@example.test")) == 1
    assert len(server.delivered("someone@catchall.test")) == 1
    assert len(server.all_delivered()) == 2


@pytest.mark.parametrize("stage", ["in-data", "before-dot", "after-partial-dot"])
def test_client_disconnect_mid_data(server, stage):
    tail = {"in-data": b"", "before-dot": b"\r\n", "after-partial-dot": b"\r\n."}[stage]
    c = RawSMTP(server.port)
    c.greeting()
    c.ehlo()
    c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
    c.ok("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.ok("DATA", 354)
    c.send(b"Subject: aborted\r\n\r\n" + b"line\r\n" * 2000 + b"no end" + tail)
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    # a later transaction still works and is the only delivery
    msg = make_message("after abort")
    with server.connect() as c2:
        c2.greeting()
        c2.ehlo()
        qid = c2.transaction("y@remote.test", ["bob@example.test"], dot_stuff(msg))
        c2.assert_nothing_pending()
    wait_for_files(server.new("bob@example.test"), 1)
    wait_until(lambda: len(server.log_events("disconnect")) >= 3, 10,
               "the aborted session to end")
    server.wait_queue_empty()
    assert server.delivered("alice@example.test") == []
    assert [m.get("id") for m in server.log_events("message")] == [qid]


@pytest.mark.parametrize("split", range(1, 5))
def test_end_of_data_split_across_writes(server, split):
    msg = make_message("split end")
    eod = b"\r\n.\r\n"
    data = dot_stuff(msg)[:-2]          # without its final CRLF: it is part of eod
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        c.ok("RCPT TO:<alice@example.test>", 250, "2.1.5")
        c.ok("DATA", 354)
        c.send(data + eod[:split])
        c.send(eod[split:])
        qid = queue_id_of(c.expect(250, "2.0.0")[-1])
        c.assert_nothing_pending()
    f = wait_for_files(server.new("alice@example.test"), 1)
    check_delivered(f[0].read_bytes(), sender="x@remote.test",
                    recipient="alice@example.test", body=msg, queue_id=qid)


def test_size_param_edge_cases(make_server):
    srv = make_server({"limits": {"message_size": 10000}})
    with srv.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<x@remote.test> SIZE=abc", 501, "5.5.4")
        code, texts = c.cmd("MAIL FROM:<x@remote.test> SIZE=99999999999999999999999999999")
        assert code in (501, 552), (code, texts)      # an overflowing number never passes
        c.ok("MAIL FROM:<x@remote.test> SIZE=0", 250, "2.1.0")
        c.ok("RSET", 250, "2.0.0")
        c.ok("MAIL FROM:<x@remote.test> size=10000", 250, "2.1.0")   # keywords are case-insensitive
        c.assert_nothing_pending()


def test_lying_size_param_body_over_limit(make_server):
    srv = make_server({"limits": {"message_size": 10000}})
    big = b"Subject: liar\r\n\r\n" + (b"x" * 78 + b"\r\n") * 400
    with srv.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<x@remote.test> SIZE=100", 250, "2.1.0")
        c.ok("RCPT TO:<alice@example.test>", 250, "2.1.5")
        c.ok("DATA", 354)
        c.send(big + b".\r\n")
        c.expect(552, "5.3.4")
        c.ok("NOOP", 250, "2.0.0")
        c.assert_nothing_pending()
    srv.wait_queue_empty()
    assert srv.all_delivered() == []


KV = r'[A-Za-z_][A-Za-z0-9_.]*=(?:"(?:[^"\\]|\\.)*"|\S*)'


def test_log_lines_are_key_value(server):
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        qid = c.transaction("x@remote.test", ["alice@example.test"], make_message("log"))
        c.ok("FOO", 500, "5.5.1")
        c.assert_nothing_pending()
    wait_for_files(server.new("alice@example.test"), 1)
    server.wait_queue_empty()
    wait_until(lambda: len(server.log_events("disconnect")) >= 2, 10, "disconnect logged")
    lines = [ln for ln in server.log().splitlines() if not ln.startswith("---- start")]
    assert lines
    for ln in lines:
        m = re.search(r"(?:^|\s)(severity=\S+ event=\S+.*)$", ln)
        assert m, f"not a 'severity=... event=...' line: {ln!r}"
        assert re.fullmatch(rf"{KV}(?: {KV})*", m.group(1)), f"not key=value: {ln!r}"
    msg = [e for e in server.log_events("message") if e.get("id") == qid]
    assert len(msg) == 1
    assert msg[0].get("from") in ("<x@remote.test>", "x@remote.test")
    assert msg[0].get("nrcpt") == "1"
    assert msg[0].get("size", "").isdigit()
    assert any(e.get("id") == qid and e.get("status") == "sent"
               and "alice@example.test" in e.get("to", "")
               for e in server.log_events("delivery"))


TRICKY_LOCAL_PARTS = [
    '"../../escape"',
    '"../../../../tmp/postern-escape"',
    '"/tmp/postern-abs"',
    "a/./b",
    "x/y",
    '"a\\\\b"',
    '".."',
    '"."',
    '""',
    "con",
]


@pytest.mark.parametrize("local", TRICKY_LOCAL_PARTS)
def test_mailbox_path_stays_inside_mail_root(server, local):
    """Whatever a catch-all domain accepts, the delivery stays inside
    mail_root/catchall.test/ (refusing such a local part is fine too)."""
    tag = f"path-safety-{TRICKY_LOCAL_PARTS.index(local)}"
    msg = make_message(tag, [tag])
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        code, texts = c.cmd(f"RCPT TO:<{local}@catchall.test>")
        assert code in (250, 501, 550, 553, 554), (code, texts)
        c.ok("RCPT TO:<bob@example.test>", 250, "2.1.5")
        c.ok("DATA", 354)
        c.send(dot_stuff(msg) + b".\r\n")
        c.expect(250, "2.0.0")
        c.assert_nothing_pending()
    wait_for_files(server.new("bob@example.test"), 1)
    server.wait_queue_empty()
    # every file holding the message is inside mail_root/<local domain>/
    root = server.root
    holders = [p for p in root.rglob("*") if p.is_file() and tag.encode() in p.read_bytes()]
    outside = [p for p in holders if server.mail_root not in p.parents]
    assert not outside, f"message written outside mail_root: {outside}"
    for p in holders:
        rel = p.relative_to(server.mail_root).parts
        assert rel[0] in ("catchall.test", "example.test"), p
        assert ".." not in rel, p
    assert len([p for p in holders if p.relative_to(server.mail_root).parts[0] ==
                "catchall.test"]) == (1 if code == 250 else 0)
    for stray in ("/tmp/postern-escape", "/tmp/postern-abs"):
        assert not __import__("os").path.exists(stray), stray
    assert sorted(p.name for p in root.iterdir()) == sorted(
        ["mail", "spool", "postern.json", "postern.stderr.log", "postern.stdout.log"]), \
        list(root.iterdir())


def test_mail_from_without_angle_brackets(server):
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        code, texts = c.cmd("MAIL FROM:alice@example.test")
        assert code == 501, (code, texts)
        c.ok("NOOP", 250, "2.0.0")
        c.assert_nothing_pending()
