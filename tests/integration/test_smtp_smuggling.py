"""SMTP smuggling (CVE-2023-51764/5/6): end of data is <CRLF>.<CRLF> only.
A message containing a bare LF or bare CR is refused with 554 5.6.0 after the
real end of data, nothing is delivered, nothing inside is executed, and the
session stays in sync."""

import pytest

from conftest import check_delivered, dot_stuff, make_message, wait_for_files

VARIANTS = {
    "LF.LF": b"\n.\n",
    "CR.CR": b"\r.\r",
    "LF.CRLF": b"\n.\r\n",
    "CRLF.LF": b"\r\n.\n",
    "CR.CRLF": b"\r.\r\n",
    "LF.CR": b"\n.\r",
    "CRLF.CR": b"\r\n.\r",
}

SMUGGLED = (b"MAIL FROM:<evil@other.test>\r\n"
            b"RCPT TO:<bob@example.test>\r\n"
            b"DATA\r\n"
            b"Subject: smuggled\r\n\r\nsmuggled body\r\n")


def _open_data(c, rcpt="alice@example.test"):
    c.greeting()
    c.ehlo()
    c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
    c.ok(f"RCPT TO:<{rcpt}>", 250, "2.1.5")
    c.ok("DATA", 354)


def _after(server, c):
    """Session in sync: NOOP answered by exactly one 250, then a normal
    transaction works and is the only thing ever delivered."""
    c.ok("NOOP", 250, "2.0.0")
    good = make_message("good after smuggling attempt")
    qid = c.transaction("good@remote.test", ["alice@example.test"], dot_stuff(good))
    c.assert_nothing_pending()
    f = wait_for_files(server.new("alice@example.test"), 1)
    server.wait_queue_empty()
    check_delivered(f[0].read_bytes(), sender="good@remote.test",
                    recipient="alice@example.test", body=good, queue_id=qid)
    assert len(server.all_delivered()) == 1, server.all_delivered()
    assert server.delivered("bob@example.test") == []
    msgs = server.log_events("message")
    assert [m.get("id") for m in msgs] == [qid], msgs
    assert "evil@other.test" not in server.log()


@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
def test_smuggling_variant(server, variant):
    seq = VARIANTS[variant]
    payload = b"Subject: x\r\n\r\nhello" + seq + SMUGGLED + b"\r\n.\r\n"
    with server.connect() as c:
        _open_data(c)
        c.send(payload)
        c.expect(554, "5.6.0")
        _after(server, c)


def test_spec_example_exact(server):
    """The example from the spec: exactly one 554 reply, MAIL inside not executed."""
    with server.connect() as c:
        _open_data(c)
        c.send(b"Subject: x\r\n\r\nhello\n.\nMAIL FROM:<evil@x>\r\n.\r\n")
        c.expect(554, "5.6.0")
        _after(server, c)


@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
def test_smuggling_variant_in_separate_writes(server, variant):
    """Same, but the smuggling sequence arrives split across TCP writes."""
    seq = VARIANTS[variant]
    with server.connect() as c:
        _open_data(c)
        c.send(b"Subject: x\r\n\r\nhello")
        c.send(seq[:1])
        c.send(seq[1:])
        c.send(SMUGGLED)
        c.send(b"\r\n.")
        c.send(b"\r\n")
        c.expect(554, "5.6.0")
        _after(server, c)


@pytest.mark.parametrize("body", [
    b"Subject: x\r\n\r\nbare\nLF in the middle\r\n",
    b"Subject: x\r\n\r\nbare\rCR in the middle\r\n",
    b"Subject: x\nBare-LF: in header\r\n\r\nbody\r\n",
    b"Subject: x\r\n\r\nends with bare LF\n",
    b"Subject: x\r\n\r\n\n\r\n",
])
def test_bare_lf_or_cr_anywhere(server, body):
    with server.connect() as c:
        _open_data(c)
        c.send(body + b"\r\n.\r\n" if body.endswith(b"\n") and not body.endswith(b"\r\n")
               else body + b".\r\n")
        c.expect(554, "5.6.0")
        _after(server, c)


def test_pipelined_commands_after_smuggled_message(server):
    """Commands written in the same packet right after the real end of data
    are executed normally, once."""
    with server.connect() as c:
        _open_data(c)
        c.send(b"Subject: x\r\n\r\nhello\n.\nRSET\r\n.\r\nNOOP\r\nNOOP\r\n")
        c.expect(554, "5.6.0")
        c.expect(250, "2.0.0")
        c.expect(250, "2.0.0")
        _after(server, c)


def test_lone_dot_variants_inside_are_content_when_crlf_framed(server):
    """'\\r\\n..\\r\\n' is a stuffed dot (content), and '.' not at a line start
    is plain content; only <CRLF>.<CRLF> ends the message."""
    body = b"Subject: dots\r\n\r\na.\r\n..\r\n .\r\n...x\r\nend\r\n"
    sent_unstuffed = b"Subject: dots\r\n\r\na.\r\n.\r\n .\r\n..x\r\nend\r\n"
    with server.connect() as c:
        _open_data(c, rcpt="bob@example.test")
        c.send(body + b".\r\n")
        c.expect(250, "2.0.0")
        c.assert_nothing_pending()
    f = wait_for_files(server.new("bob@example.test"), 1)
    check_delivered(f[0].read_bytes(), sender="x@remote.test",
                    recipient="bob@example.test", body=sent_unstuffed)
    server.wait_queue_empty()
    assert len(server.all_delivered()) == 1


def test_empty_message(server):
    """DATA immediately followed by <CRLF>.<CRLF>... the first '.\\r\\n' right
    after the 354 is the end of an empty message."""
    with server.connect() as c:
        _open_data(c, rcpt="bob@example.test")
        c.send(b".\r\n")
        c.expect(250, "2.0.0")
        c.assert_nothing_pending()
    f = wait_for_files(server.new("bob@example.test"), 1)
    check_delivered(f[0].read_bytes(), sender="x@remote.test",
                    recipient="bob@example.test", body=b"")


# BDAT (RFC 3030): there is no end marker to fake, but a text message still
# may not hold bare CR or LF — relayed by DATA later, "<LF>.<LF>" would
# end it early at a peer that takes bare LF as a line end. Each variant is
# refused at LAST (554 5.6.0), whether it sits inside one chunk or is cut
# across two, and the commands inside are never run.
@pytest.mark.parametrize("split", [False, True], ids=["one-chunk", "across-chunks"])
@pytest.mark.parametrize("variant", list(VARIANTS), ids=list(VARIANTS))
def test_smuggling_variant_in_bdat_chunks(server, variant, split):
    payload = b"Subject: x\r\n\r\nhello" + VARIANTS[variant] + SMUGGLED
    cut = payload.index(VARIANTS[variant]) + 1 if split else len(payload)
    chunks = [payload[:cut], payload[cut:]] if split else [payload]
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        c.ok("RCPT TO:<alice@example.test>", 250, "2.1.5")
        for i, chunk in enumerate(chunks):
            last = " LAST" if i == len(chunks) - 1 else ""
            c.send(f"BDAT {len(chunk)}{last}\r\n".encode() + chunk)
            if last:
                c.expect(554, "5.6.0")
            else:
                c.expect(250, "2.0.0")
        _after(server, c)
