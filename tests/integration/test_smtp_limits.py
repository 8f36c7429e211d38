"""Limits: command line length, SIZE, message size, recipients, timeouts,
error count, connection limits, and a 20 MB message delivered intact."""

import hashlib
import socket
import struct

import pytest

from conftest import (RawSMTP, check_delivered, dot_stuff, make_message, wait_for_files,
                      wait_until)


# ---------------------------------------------------------------- line length

def test_command_line_at_512_is_accepted(server):
    with server.connect() as c:
        c.greeting()
        line = b"NOOP " + b"a" * (512 - 2 - 5)
        assert len(line) + 2 == 512
        c.ok(line, 250, "2.0.0")
        c.assert_nothing_pending()


@pytest.mark.parametrize("length", [513, 1000, 100_000])
def test_command_line_too_long(server, length):
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        line = b"NOOP " + b"a" * (length - 2 - 5)
        assert len(line) + 2 == length
        c.ok(line, 500, "5.5.6")
        # the rest of the long line must not be taken as a command; session continues
        c.ok("NOOP", 250, "2.0.0")
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        c.assert_nothing_pending()


def test_long_mail_command_not_executed(server):
    """An over-long MAIL line is refused as a whole: no transaction starts."""
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok(b"MAIL FROM:<" + b"a" * 600 + b"@remote.test>", 500, "5.5.6")
        c.ok("RCPT TO:<alice@example.test>", 503, "5.5.1")
        c.assert_nothing_pending()


def test_data_line_1000_accepted_1001_refused(server):
    ok_line = b"x" * 998                     # 998 + CRLF = 1000 octets
    long_line = b"y" * 999                   # 999 + CRLF = 1001 octets
    good = b"Subject: long ok\r\n\r\n" + ok_line + b"\r\n"
    bad = b"Subject: too long\r\n\r\n" + long_line + b"\r\nMAIL FROM:<evil@x.test>\r\n"
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        qid = c.transaction("x@remote.test", ["alice@example.test"], good)
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        c.ok("RCPT TO:<bob@example.test>", 250, "2.1.5")
        c.ok("DATA", 354)
        c.send(bad + b".\r\n")
        c.expect(554, "5.6.0")
        c.ok("NOOP", 250, "2.0.0")
        c.assert_nothing_pending()
    f = wait_for_files(server.new("alice@example.test"), 1)
    check_delivered(f[0].read_bytes(), sender="x@remote.test",
                    recipient="alice@example.test", body=good, queue_id=qid)
    server.wait_queue_empty()
    assert server.delivered("bob@example.test") == []
    assert len(server.all_delivered()) == 1


def test_data_very_long_line_no_desync(server):
    bad = b"Subject: huge line\r\n\r\n" + b"z" * 200_000 + b"\r\nRSET\r\n"
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        c.ok("RCPT TO:<bob@example.test>", 250, "2.1.5")
        c.ok("DATA", 354)
        c.send(bad + b".\r\n")
        c.expect(554, "5.6.0")
        c.ok("NOOP", 250, "2.0.0")
        c.assert_nothing_pending()
    server.wait_queue_empty()
    assert server.all_delivered() == []


# ---------------------------------------------------------------- sizes

SMALL = 10_000


def test_size_param_over_limit(make_server):
    srv = make_server({"limits": {"message_size": SMALL}})
    with srv.connect() as c:
        c.greeting()
        texts = c.ehlo()
        assert f"SIZE {SMALL}" in [t.strip() for t in texts[1:]]
        c.ok(f"MAIL FROM:<x@remote.test> SIZE={SMALL + 1}", 552, "5.3.4")
        # the refused MAIL started no transaction
        c.ok("RCPT TO:<alice@example.test>", 503, "5.5.1")
        c.ok(f"MAIL FROM:<x@remote.test> SIZE={SMALL}", 250, "2.1.0")
        c.assert_nothing_pending()


def test_size_param_over_limit_smtplib(make_server):
    srv = make_server({"limits": {"message_size": SMALL}})
    s = srv.smtplib()
    try:
        s.ehlo()
        assert int(s.esmtp_features["size"]) == SMALL
        code, text = s.mail("x@remote.test", ["SIZE=%d" % (SMALL * 10)])
        assert code == 552 and text.startswith(b"5.3.4")
    finally:
        s.quit()


def test_body_over_limit_then_next_transaction_works(make_server):
    srv = make_server({"limits": {"message_size": SMALL}})
    big = b"Subject: big\r\n\r\n" + (b"0123456789" * 7 + b"\r\n") * 500   # ~36 kB
    assert len(big) > SMALL * 3
    small = make_message("small after big")
    with srv.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        c.ok("RCPT TO:<alice@example.test>", 250, "2.1.5")
        c.ok("DATA", 354)
        c.send(big + b".\r\n")
        c.expect(552, "5.3.4")
        c.ok("NOOP", 250, "2.0.0")
        qid = c.transaction("x@remote.test", ["bob@example.test"], dot_stuff(small))
        c.assert_nothing_pending()
    f = wait_for_files(srv.new("bob@example.test"), 1)
    check_delivered(f[0].read_bytes(), sender="x@remote.test", recipient="bob@example.test",
                    body=small, queue_id=qid)
    srv.wait_queue_empty()
    assert srv.delivered("alice@example.test") == []
    assert len(srv.all_delivered()) == 1


def test_body_over_limit_smtplib(make_server):
    """Body over the limit without a SIZE parameter (smtplib's low-level calls)."""
    srv = make_server({"limits": {"message_size": SMALL}})
    big = b"Subject: big\r\n\r\n" + (b"b" * 70 + b"\r\n") * 300
    s = srv.smtplib()
    try:
        s.ehlo()
        assert s.mail("x@remote.test")[0] == 250
        assert s.rcpt("alice@example.test")[0] == 250
        code, text = s.data(big)
        assert code == 552 and text.startswith(b"5.3.4"), (code, text)
        assert s.sendmail("x@remote.test", ["alice@example.test"], make_message("ok")) == {}
    finally:
        s.quit()
    wait_for_files(srv.new("alice@example.test"), 1)
    srv.wait_queue_empty()
    assert len(srv.all_delivered()) == 1


def test_twenty_mb_message_intact(make_server):
    srv = make_server({"limits": {"message_size": 64 * 1024 * 1024}})
    # 20 MB of varied lines, including lines that start with a dot
    rnd = hashlib.sha256(b"seed").hexdigest().encode()
    lines = []
    size = 0
    i = 0
    while size < 20 * 1024 * 1024:
        line = (b"." if i % 97 == 0 else b"") + rnd[i % 40:] + (b"%08d" % i) + rnd[: i % 30]
        lines.append(line)
        size += len(line) + 2
        i += 1
    msg = b"Subject: twenty MB\r\nMessage-ID: <big@client.test>\r\n\r\n" + b"\r\n".join(lines) + b"\r\n"
    s = srv.smtplib(timeout=120)
    try:
        assert s.sendmail("x@remote.test", ["alice@example.test", "bob@example.test"], msg) == {}
    finally:
        s.quit()
    for r in ("alice@example.test", "bob@example.test"):
        f = wait_for_files(srv.new(r), 1, timeout=60)
        check_delivered(f[0].read_bytes(), sender="x@remote.test", recipient=r, body=msg)
    srv.wait_queue_empty(60)


# ---------------------------------------------------------------- recipients

def test_too_many_recipients(make_server):
    srv = make_server({"limits": {"recipients": 3}})
    msg = make_message("three")
    rcpts = [f"r{i}@catchall.test" for i in range(3)]
    with srv.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        for r in rcpts:
            c.ok(f"RCPT TO:<{r}>", 250, "2.1.5")
        c.ok("RCPT TO:<r3@catchall.test>", 452, "4.5.3")
        c.ok("RCPT TO:<r4@catchall.test>", 452, "4.5.3")
        c.ok("DATA", 354)
        c.send(dot_stuff(msg) + b".\r\n")
        c.expect(250, "2.0.0")
        c.assert_nothing_pending()
    for r in rcpts:
        f = wait_for_files(srv.new(r), 1)
        check_delivered(f[0].read_bytes(), sender="x@remote.test", recipient=r, body=msg)
    srv.wait_queue_empty()
    assert not srv.maildir("r3@catchall.test").exists()
    assert not srv.maildir("r4@catchall.test").exists()
    assert len(srv.all_delivered()) == 3


# ---------------------------------------------------------------- timeouts / errors

def test_command_timeout(make_server):
    srv = make_server({"limits": {"command_timeout_s": 1}})
    with srv.connect(timeout=30) as c:
        c.greeting()
        c.ehlo()
        c.expect(421, "4.4.2", timeout=30)
        c.expect_eof(timeout=30)
    # the server keeps serving others
    with srv.connect() as c:
        c.greeting()
        c.ok("NOOP", 250, "2.0.0")
        c.assert_nothing_pending()


def test_command_timeout_mid_transaction_delivers_nothing(make_server):
    srv = make_server({"limits": {"command_timeout_s": 1}})
    with srv.connect(timeout=30) as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        c.ok("RCPT TO:<alice@example.test>", 250, "2.1.5")
        c.send("NOO")                        # a partial command, then silence
        c.expect(421, "4.4.2", timeout=30)
        c.expect_eof(timeout=30)
    srv.wait_queue_empty()
    assert srv.all_delivered() == []


def test_data_timeout(make_server):
    srv = make_server({"limits": {"command_timeout_s": 1, "data_timeout_s": 1}})
    with srv.connect(timeout=30) as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        c.ok("RCPT TO:<alice@example.test>", 250, "2.1.5")
        c.ok("DATA", 354)
        c.send(b"Subject: stalled\r\n\r\npartial\r\n")
        code, texts = c.reply(timeout=30)
        assert code == 421, (code, texts)
        c.expect_eof(timeout=30)
    srv.wait_queue_empty()
    assert srv.all_delivered() == []


def test_too_many_errors(make_server):
    srv = make_server({"limits": {"errors": 3}})
    with srv.connect() as c:
        c.greeting()
        c.ok("EHLO client.test", 250)
        for _ in range(3):
            c.ok("BOGUS", 500, "5.5.1")
        # after 3 error replies: 421 4.7.0 (unsolicited or as the reply to the
        # next command), then the connection is closed
        try:
            c.send("BOGUS\r\n")
        except OSError:
            pass
        c.expect(421, "4.7.0")
        c.expect_eof()
    with srv.connect() as c:
        c.greeting()
        c.assert_nothing_pending()


def test_errors_mixed_kinds_count(make_server):
    srv = make_server({"limits": {"errors": 3}})
    with srv.connect() as c:
        c.greeting()
        c.ok("RCPT TO:<alice@example.test>", 503, "5.5.1")   # bad sequence
        c.ok("EHLO client.test", 250)
        c.ok("MAIL FROM alice", 501, "5.5.4")               # bad syntax
        c.ok("FOO", 500, "5.5.1")                           # unknown
        try:
            c.send("NOOP\r\n")
        except OSError:
            pass
        c.expect(421, "4.7.0")
        c.expect_eof()


# ---------------------------------------------------------------- connections

def _open_greeted(srv, n, source=None):
    conns = []
    for _ in range(n):
        c = RawSMTP(srv.port, source=source)
        c.expect(220)
        conns.append(c)
    return conns


def _wait_probe_gone(srv):
    # the readiness probe's connection must be accounted for as closed
    wait_until(lambda: len(srv.log_events("disconnect")) >= 1, 10,
               "the readiness probe's disconnect")


def _expect_refused_at_connect(srv, source=None):
    c = RawSMTP(srv.port, source=source)
    try:
        c.expect(421, "4.7.0")
        c.expect_eof()
    finally:
        c.close()


def _reconnect_works(srv, source=None):
    def attempt():
        c = RawSMTP(srv.port, source=source)
        try:
            code, _ = c.reply()
            if code == 220:
                c.assert_nothing_pending()
                return True
            return False
        finally:
            c.close()
    wait_until(attempt, 10, "a new connection to be accepted after one closed", interval=0.1)


def test_connection_limit_total(make_server):
    srv = make_server({"limits": {"connections": 5, "connections_per_ip": 50}})
    _wait_probe_gone(srv)
    conns = _open_greeted(srv, 5)
    try:
        _expect_refused_at_connect(srv)
        _expect_refused_at_connect(srv, source="127.0.0.2")   # total limit: any address
        for c in conns:                                       # existing ones keep working
            c.ok("NOOP", 250, "2.0.0")
        conns[0].ok("EHLO client.test", 250)
        conns[0].transaction("x@remote.test", ["alice@example.test"], make_message("limit"))
        conns[0].assert_nothing_pending()
        conns[0].close()
        _reconnect_works(srv)
    finally:
        for c in conns:
            c.close()
    wait_for_files(srv.new("alice@example.test"), 1)


def test_connection_limit_per_ip(make_server):
    srv = make_server({"limits": {"connections": 100, "connections_per_ip": 3}})
    _wait_probe_gone(srv)
    conns = _open_greeted(srv, 3)
    try:
        _expect_refused_at_connect(srv)
        # another client address is not affected by 127.0.0.1's limit
        other = _open_greeted(srv, 3, source="127.0.0.2")
        conns += other
        _expect_refused_at_connect(srv, source="127.0.0.2")
        for c in conns:
            c.ok("NOOP", 250, "2.0.0")
        conns[0].assert_nothing_pending()
        conns[0].close()
        _reconnect_works(srv)
    finally:
        for c in conns:
            c.close()


def _end_quit(c):
    c.assert_nothing_pending()


def _end_abrupt(c):
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST
    c.close()


def _end_mid_data(c):
    c.ehlo()
    c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
    c.ok("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.ok("DATA", 354)
    c.send(b"Subject: cut\r\n\r\npartial")
    c.close()


def _end_errors(c):
    for _ in range(3):
        c.ok("BOGUS", 500, "5.5.1")
    try:
        c.send("BOGUS\r\n")
    except OSError:
        pass
    c.expect(421, "4.7.0")
    c.expect_eof()


def _end_long_line_then_close(c):
    c.send(b"NOOP " + b"a" * 5000)       # unterminated over-long line
    c.close()


@pytest.mark.parametrize("ending", [_end_quit, _end_abrupt, _end_mid_data, _end_errors,
                                    _end_long_line_then_close],
                         ids=["quit", "rst", "mid-data", "too-many-errors", "long-line"])
def test_connection_slots_released(make_server, ending):
    """However a session ends, its slot is given back (3 rounds, per-IP limit 2)."""
    srv = make_server({"limits": {"connections": 100, "connections_per_ip": 2, "errors": 3}})
    _wait_probe_gone(srv)
    for _round in range(3):
        conns = []

        def attempt():
            for c in conns:
                c.close()
            conns.clear()
            for _ in range(2):
                c = RawSMTP(srv.port)
                conns.append(c)
                if c.reply()[0] != 220:
                    return False
            return True
        wait_until(attempt, 10, "2 greeted connections (slots released)", interval=0.1)
        for c in conns:
            ending(c)
    _expect_nothing_leaked(srv)
    srv.wait_queue_empty()
    assert srv.all_delivered() == []


def _expect_nothing_leaked(srv):
    # after everything ended, exactly connections_per_ip sessions fit again
    def ok():
        conns = []
        try:
            for _ in range(2):
                c = RawSMTP(srv.port)
                conns.append(c)
                if c.reply()[0] != 220:
                    return False
            return True
        finally:
            for c in conns:
                c.close()
    wait_until(ok, 10, "slots to be free again", interval=0.1)


def test_connection_flood_over_limit(make_server):
    srv = make_server({"limits": {"connections": 10, "connections_per_ip": 10}})
    _wait_probe_gone(srv)
    keep = _open_greeted(srv, 10)
    try:
        refused = 0
        for _ in range(100):
            c = RawSMTP(srv.port)
            try:
                c.expect(421, "4.7.0")
                c.expect_eof()
                refused += 1
            finally:
                c.close()
        assert refused == 100
        for c in keep:
            c.ok("NOOP", 250, "2.0.0")
        keep[0].ehlo()
        keep[0].transaction("x@remote.test", ["alice@example.test"], make_message("flood"))
        for c in keep:
            c.assert_nothing_pending()
    finally:
        for c in keep:
            c.close()
    wait_for_files(srv.new("alice@example.test"), 1)
    _reconnect_works(srv)
