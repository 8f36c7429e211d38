"""CHUNKING / BINARYMIME (RFC 3030) and DSN (RFC 3461/3464) against the real
binary: raw-socket BDAT dialogues, smtplib with mail_options/rcpt_options,
and the reports parsed with Python's email package."""

from conftest import RawSMTP, make_message, queue_id_of, split_delivered, wait_for_files
from relay_helpers import SENDER, dns, relay_env, wait_dsns, wait_log  # noqa: F401


def bdat(c, data, last=False):
    """One BDAT chunk: the command and its octets in one write."""
    c.send(f"BDAT {len(data)}{' LAST' if last else ''}\r\n".encode() + data)


def test_ehlo_offers_chunking_binarymime_and_dsn(server):
    with server.smtplib() as s:
        code, _ = s.ehlo("client.test")
        assert code == 250
        for kw in ("chunking", "binarymime", "dsn"):
            assert s.has_extn(kw), (kw, s.esmtp_features)


def test_pipelined_bdat_chunks_are_delivered_byte_for_byte(server):
    """Dots and CRLF.CRLF inside chunks are content: nothing unstuffed,
    nothing cut (RFC 3030 2)."""
    body = (b"Subject: chunked\r\nMessage-ID: <c1@client.test>\r\n\r\n"
            b".leading dot\r\n..two\r\n.\r\nafter a dot line\r\n")
    with RawSMTP(server.port) as c:
        c.greeting()
        c.ehlo()
        # the whole transaction in one write (RFC 2920 + RFC 3030 4.2)
        c.send(b"MAIL FROM:<bob@example.test>\r\nRCPT TO:<alice@example.test>\r\n"
               + f"BDAT {len(body[:20])}\r\n".encode() + body[:20]
               + f"BDAT {len(body[20:])}\r\n".encode() + body[20:]
               + b"BDAT 0 LAST\r\n")
        assert c.expect(250, "2.1.0")
        assert c.expect(250, "2.1.5")
        assert c.expect(250, "2.0.0") == ["2.0.0 20 octets received"]
        assert c.expect(250, "2.0.0") == [f"2.0.0 {len(body) - 20} octets received"]
        qid = queue_id_of(c.expect(250, "2.0.0")[-1])
        c.ok("QUIT", 221)
    (f,) = wait_for_files(server.new("alice@example.test"), 1)
    rp, dt, received, rest = split_delivered(f.read_bytes())
    assert rp == b"<bob@example.test>" and dt == b"alice@example.test"
    assert qid.encode() in received
    assert rest == body


def test_binarymime_content_is_kept_exactly(server):
    body = (b"Subject: bin\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\n"
            b"Content-Transfer-Encoding: binary\r\n\r\n" + bytes(range(256)) + b"\n.\n\r.\r\n")
    with RawSMTP(server.port) as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<bob@example.test> BODY=BINARYMIME", 250, "2.1.0")
        c.ok("RCPT TO:<alice@example.test>", 250, "2.1.5")
        c.ok("DATA", 503, "5.5.1")  # BINARYMIME only by BDAT (RFC 3030 3)
        bdat(c, body[:100])
        c.expect(250, "2.0.0")
        bdat(c, body[100:], last=True)
        c.expect(250, "2.0.0")
        c.ok("QUIT", 221)
    (f,) = wait_for_files(server.new("alice@example.test"), 1)
    assert split_delivered(f.read_bytes())[3] == body


def test_refused_chunk_octets_never_run_as_commands(server):
    """A BDAT refused (no MAIL yet) still has its octets read: the
    MAIL/RCPT/BDAT inside it are data and nothing is queued."""
    inner = b"MAIL FROM:<evil@example.test>\r\nRCPT TO:<alice@example.test>\r\nBDAT 3 LAST\r\nhi\n"
    with RawSMTP(server.port) as c:
        c.greeting()
        c.ehlo()
        bdat(c, inner, last=True)
        c.expect(503, "5.5.1")
        c.ok("NOOP", 250)
        c.ok("QUIT", 221)
    assert not server.queue_files()
    assert not server.all_delivered()


def test_size_limit_counts_across_chunks(make_server):
    srv = make_server({"limits": {"message_size": 2048}})
    with RawSMTP(srv.port) as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<bob@example.test>", 250)
        c.ok("RCPT TO:<alice@example.test>", 250)
        bdat(c, b"x" * 1200)
        c.expect(250, "2.0.0")
        bdat(c, b"y" * 1200)
        c.expect(552, "5.3.4")
        bdat(c, b"z" * 10, last=True)
        c.expect(552, "5.3.4")
        # the session is fine afterwards
        c.ok("MAIL FROM:<bob@example.test>", 250)
        c.ok("RCPT TO:<alice@example.test>", 250)
        bdat(c, b"Subject: small\r\n\r\nok\r\n", last=True)
        c.expect(250, "2.0.0")
        c.ok("QUIT", 221)
    assert len(wait_for_files(srv.new("alice@example.test"), 1)) == 1


def test_bad_chunk_size_gets_501_and_the_connection_ends(server):
    for size in (b"12x", b"99999999999999999999999"):
        with RawSMTP(server.port) as c:
            c.greeting()
            c.ehlo()
            c.ok("MAIL FROM:<bob@example.test>", 250)
            c.ok("RCPT TO:<alice@example.test>", 250)
            c.send(b"BDAT " + size + b" LAST\r\nQUIT\r\n")
            c.expect(501, "5.5.4")
            c.expect_eof()
    assert not server.queue_files()


def test_dsn_success_notice_for_local_delivery(server):
    """NOTIFY=SUCCESS on a local delivery: a "delivered" report to the
    sender with ENVID and ORCPT, headers only (RFC 3461 4.3)."""
    msg = make_message("dsn success")
    with server.smtplib() as s:
        s.sendmail("carl@users.test", ["alice@example.test", "team@example.test"], msg,
                   mail_options=["RET=FULL", "ENVID=QQ+2B314"],
                   rcpt_options=["NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;Alice+40Example.test"])
    (dsn,) = wait_dsns(server, "carl@users.test", 1)
    assert dsn["per_message"]["original-envelope-id"] == "QQ+314"
    rs = {r["final-recipient"].lower(): r for r in dsn["recipients"]}
    assert set(rs) == {"rfc822; alice@example.test", "rfc822; team@example.test"}, rs
    for r in rs.values():
        assert r["action"] == "delivered", r
        assert r["status"] == "2.0.0", r
        assert r["original-recipient"].lower().replace(" ", "") == "rfc822;alice@example.test", r
    assert dsn["msg"].get_payload()[2].get_content_type() == "text/rfc822-headers"
    assert "Subject: dsn success" in dsn["headers"]


def test_dsn_notify_never_and_ret_full_on_relay_failures(relay_env):
    """A 550 from the next hop: no report with NOTIFY=NEVER; with
    NOTIFY=FAILURE and RET=FULL the whole message comes back."""
    relay_env.dns.mx("far.test", (10, "mx.far.test"))
    relay_env.dns.a("mx.far.test", "127.0.0.2")
    sink = relay_env.sink("127.0.0.2")
    sink.rcpt_replies = {"gone@far.test": "550 5.1.1 gone: no such user",
                         "lost@far.test": "550 5.1.1 lost: no such user"}
    srv = relay_env.postern()
    with srv.smtplib() as s:
        s.ehlo("client.test")
        s.mail(SENDER, ["RET=FULL"])
        assert s.rcpt("gone@far.test", ["NOTIFY=NEVER"])[0] == 250
        assert s.rcpt("lost@far.test", ["NOTIFY=FAILURE"])[0] == 250
        code, _ = s.data(make_message("dsn never"))
        assert code == 250
    wait_log(srv, "delivery", to="gone@far.test", status="bounced")
    wait_log(srv, "delivery", to="lost@far.test", status="bounced")
    (dsn,) = wait_dsns(srv, SENDER, 1)
    assert [r["final-recipient"].lower() for r in dsn["recipients"]] == ["rfc822; lost@far.test"]
    part3 = dsn["msg"].get_payload()[2]
    assert part3.get_content_type() == "message/rfc822"
    assert "dsn never" in part3.as_string()
    srv.wait_queue_empty()
    assert len(srv.delivered(SENDER)) == 1  # nothing about gone@far.test


def test_dsn_relayed_notice_when_the_next_hop_has_no_dsn(relay_env):
    """aiosmtpd offers no DSN: the NOTIFY=SUCCESS request ends with us, as a
    "relayed" report (RFC 3461 5.2.2), and no DSN parameter goes to it."""
    relay_env.dns.mx("nodsn.test", (10, "mx.nodsn.test"))
    relay_env.dns.a("mx.nodsn.test", "127.0.0.2")
    sink = relay_env.sink("127.0.0.2")
    srv = relay_env.postern()
    with srv.smtplib() as s:
        s.sendmail(SENDER, ["u@nodsn.test"], make_message("relayed"), mail_options=["ENVID=e1"],
                   rcpt_options=["NOTIFY=SUCCESS"])
    (m,) = sink.wait_messages(1)
    assert not any(o.upper().startswith(("ENVID", "RET")) for o in m["mail_options"]), m
    (dsn,) = wait_dsns(srv, SENDER, 1)
    (r,) = dsn["recipients"]
    assert r["action"] == "relayed", r
    assert "mx.nodsn.test" in r.get("remote-mta", ""), r
    assert dsn["per_message"]["original-envelope-id"] == "e1"


def test_bad_dsn_parameters_get_501(server):
    with server.smtplib() as s:
        s.ehlo("client.test")
        assert s.mail("bob@example.test", ["RET=MAYBE"])[0] == 501
        assert s.mail("bob@example.test", ["ENVID=" + "x" * 101])[0] == 501
        assert s.mail("bob@example.test", ["RET=HDRS"])[0] == 250
        assert s.rcpt("alice@example.test", ["NOTIFY=NEVER,DELAY"])[0] == 501
        assert s.rcpt("alice@example.test", ["ORCPT=alice@example.test"])[0] == 501
        assert s.rcpt("alice@example.test", ["NOTIFY=DELAY"])[0] == 250
        s.rset()


def test_dsn_parameters_go_on_to_a_next_hop_that_offers_dsn(relay_env):
    """postern A relays to postern B, which offers DSN: RET, ENVID, NOTIFY and
    ORCPT go on with the message (RFC 3461 5.2.1), so A sends no "relayed"
    notice; B delivers and sends the "delivered" report, which reaches the
    sender at A with A's original ENVID and ORCPT."""
    b = relay_env.postern_mx("b.test", "127.0.0.5", "postern-b", hostname="mx.b.test",
                             local_domains=["b.test"], users=[], aliases={})
    a = relay_env.postern_mx("example.test", "127.0.0.6", "postern-a")
    with a.smtplib() as s:
        s.sendmail(SENDER, ["bea@b.test"], make_message("dsn passed on"),
                   mail_options=["RET=HDRS", "ENVID=id+2B7"],
                   rcpt_options=["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Bea+40B.test"])
    wait_for_files(b.new("bea@b.test"), 1)
    (dsn,) = wait_dsns(a, SENDER, 1)
    assert "mx.b.test" in dsn["per_message"]["reporting-mta"], dsn["per_message"]
    assert dsn["per_message"]["original-envelope-id"] == "id+7"
    (r,) = dsn["recipients"]
    assert r["action"] == "delivered", r
    assert r["original-recipient"].replace(" ", "") == "rfc822;Bea@B.test", r
    a.wait_queue_empty()
    b.wait_queue_empty()
    assert not a.log_events("dsn"), a.log_events("dsn")  # A owed no notice of its own
