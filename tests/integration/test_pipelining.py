"""PIPELINING (RFC 2920): whole transactions in one write, replies in order."""

from conftest import (check_delivered, dot_stuff, make_message, parse_received, queue_id_of,
                      split_delivered, wait_for_files)


def test_whole_transactions_in_one_write(server):
    n = 5
    msgs = [make_message(f"pipelined {i}", [f"body {i}", ".dot line", "end"]) for i in range(n)]
    with server.connect() as c:
        c.greeting()
        texts = c.ehlo()
        assert "PIPELINING" in [t.strip() for t in texts[1:]]
        blob = b""
        for i, m in enumerate(msgs):
            blob += (f"MAIL FROM:<s{i}@remote.test>\r\n"
                     f"RCPT TO:<alice@example.test>\r\n"
                     f"RCPT TO:<u{i}@catchall.test>\r\n"
                     f"DATA\r\n").encode()
            blob += dot_stuff(m) + b".\r\n"
        blob += b"NOOP\r\nQUIT\r\n"
        c.send(blob)
        ids = []
        for i in range(n):
            c.expect(250, "2.1.0")
            c.expect(250, "2.1.5")
            c.expect(250, "2.1.5")
            c.expect(354)
            ids.append(queue_id_of(c.expect(250, "2.0.0")[-1]))
        c.expect(250, "2.0.0")
        c.expect(221, "2.0.0")
        c.expect_eof()
    assert len(set(ids)) == n
    files = wait_for_files(server.new("alice@example.test"), n)
    server.wait_queue_empty()
    assert len(server.delivered("alice@example.test")) == n
    by_id = {}
    for f in files:
        data = f.read_bytes()
        qid = parse_received(split_delivered(data)[2])["id"]
        assert qid in ids, qid
        by_id[qid] = (ids.index(qid), data)
    assert set(by_id) == set(ids)
    for qid, (i, data) in by_id.items():
        check_delivered(data, sender=f"s{i}@remote.test", recipient="alice@example.test",
                        body=msgs[i], queue_id=qid, proto="ESMTP")
    for i in range(n):
        f = wait_for_files(server.new(f"u{i}@catchall.test"), 1)
        check_delivered(f[0].read_bytes(), sender=f"s{i}@remote.test",
                        recipient=f"u{i}@catchall.test", body=msgs[i], queue_id=ids[i])
    assert len(server.all_delivered()) == 2 * n


def test_pipelined_with_refusals_and_rset(server):
    """Errors inside a pipelined group are answered in order and do not
    disturb the other commands."""
    m1 = make_message("one")
    m2 = make_message("two")
    blob = (b"EHLO client.test\r\n"
            b"MAIL FROM:<a@remote.test>\r\n"
            b"RCPT TO:<nobody@example.test>\r\n"      # 550
            b"RCPT TO:<victim@other.test>\r\n"        # 554 relay
            b"RCPT TO:<bob@example.test>\r\n"         # 250
            b"DATA\r\n" + dot_stuff(m1) + b".\r\n"
            b"MAIL FROM:<b@remote.test>\r\n"
            b"RCPT TO:<alice@example.test>\r\n"
            b"RSET\r\n"                               # drops the transaction
            b"MAIL FROM:<c@remote.test>\r\n"
            b"RCPT TO:<alice@example.test>\r\n"
            b"DATA\r\n" + dot_stuff(m2) + b".\r\n"
            b"QUIT\r\n")
    with server.connect() as c:
        c.greeting()
        c.send(blob)
        c.expect(250)
        c.expect(250, "2.1.0")
        c.expect(550, "5.1.1")
        c.expect(554, "5.7.1")
        c.expect(250, "2.1.5")
        c.expect(354)
        id1 = queue_id_of(c.expect(250, "2.0.0")[-1])
        c.expect(250, "2.1.0")
        c.expect(250, "2.1.5")
        c.expect(250, "2.0.0")
        c.expect(250, "2.1.0")
        c.expect(250, "2.1.5")
        c.expect(354)
        id2 = queue_id_of(c.expect(250, "2.0.0")[-1])
        c.expect(221, "2.0.0")
        c.expect_eof()
    fb = wait_for_files(server.new("bob@example.test"), 1)
    fa = wait_for_files(server.new("alice@example.test"), 1)
    server.wait_queue_empty()
    check_delivered(fb[0].read_bytes(), sender="a@remote.test", recipient="bob@example.test",
                    body=m1, queue_id=id1)
    check_delivered(fa[0].read_bytes(), sender="c@remote.test",
                    recipient="alice@example.test", body=m2, queue_id=id2)
    assert len(server.all_delivered()) == 2


def test_byte_at_a_time(server):
    """The opposite extreme: every byte in its own write."""
    m = make_message("trickle")
    blob = (b"EHLO client.test\r\nMAIL FROM:<t@remote.test>\r\n"
            b"RCPT TO:<bob@example.test>\r\nDATA\r\n")
    with server.connect() as c:
        c.greeting()
        for b in blob:
            c.send(bytes([b]))
        c.expect(250)
        c.expect(250, "2.1.0")
        c.expect(250, "2.1.5")
        c.expect(354)
        for b in dot_stuff(m) + b".\r\n":
            c.send(bytes([b]))
        qid = queue_id_of(c.expect(250, "2.0.0")[-1])
        c.assert_nothing_pending()
    f = wait_for_files(server.new("bob@example.test"), 1)
    check_delivered(f[0].read_bytes(), sender="t@remote.test", recipient="bob@example.test",
                    body=m, queue_id=qid)


def test_smtplib_many_messages_one_session(server):
    s = server.smtplib()
    try:
        for i in range(20):
            assert s.sendmail("x@remote.test", ["team@example.test"],
                              make_message(f"m{i}")) == {}
    finally:
        s.quit()
    wait_for_files(server.new("alice@example.test"), 20)
    wait_for_files(server.new("bob@example.test"), 20)
    server.wait_queue_empty()
    assert len(server.delivered("alice@example.test")) == 20
    assert len(server.delivered("bob@example.test")) == 20


def test_hundred_transactions_in_one_write(server):
    n = 100
    blob = b"EHLO client.test\r\n"
    for i in range(n):
        blob += (f"MAIL FROM:<s{i}@remote.test>\r\nRCPT TO:<p{i % 7}@catchall.test>\r\n"
                 f"DATA\r\n").encode()
        blob += dot_stuff(make_message(f"burst {i}", [f"n={i}"], msgid=f"burst-{i}@p.test")) + b".\r\n"
    blob += b"QUIT\r\n"
    with server.connect(timeout=60) as c:
        c.greeting()
        c.send(blob)
        c.expect(250)
        ids = []
        for i in range(n):
            c.expect(250, "2.1.0")
            c.expect(250, "2.1.5")
            c.expect(354)
            ids.append(queue_id_of(c.expect(250, "2.0.0")[-1]))
        c.expect(221, "2.0.0")
        c.expect_eof()
    assert len(set(ids)) == n
    for k in range(7):
        wait_for_files(server.new(f"p{k}@catchall.test"), len(range(k, n, 7)), timeout=60)
    server.wait_queue_empty()
    assert len(server.all_delivered()) == n


def test_client_that_never_reads_does_not_stall_others(server):
    """A client floods NOOPs without reading the replies until the server
    stops reading from it; meanwhile another session works normally."""
    import socket
    import time as _time
    hog = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        hog.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        chunk = b"NOOP\r\n" * 10_000
        hog.settimeout(2)
        sent = 0
        stalled = False
        deadline = _time.monotonic() + 60
        while sent < 200 * 1024 * 1024 and _time.monotonic() < deadline:
            try:
                sent += hog.send(chunk)
            except socket.timeout:
                stalled = True        # the server no longer reads from us: back-pressure
                break
        msg = make_message("while hogged")
        with server.connect() as c:
            c.greeting()
            c.ehlo()
            qid = c.transaction("x@remote.test", ["bob@example.test"], dot_stuff(msg))
            c.assert_nothing_pending()
        f = wait_for_files(server.new("bob@example.test"), 1)
        check_delivered(f[0].read_bytes(), sender="x@remote.test",
                        recipient="bob@example.test", body=msg, queue_id=qid)
        # every buffer has a limit: replies nobody reads must not pile up forever
        assert stalled, f"server kept reading {sent} bytes of unanswered-to NOOPs"
    finally:
        hog.close()
    assert server.alive()
