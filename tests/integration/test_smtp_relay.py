"""No open relay: non-local recipients and every relay trick get 554 5.7.1,
and nothing is ever queued or delivered for them."""

import smtplib

import pytest

from conftest import dot_stuff, make_message, wait_for_files

RELAY_TRICKS = [
    "user@other.test",
    "USER@OTHER.TEST",
    "alice@example.test.other.test",
    "user%other.test@example.test",
    "@example.test,@b.test:user@other.test",     # source route, real destination other.test
    "@example.test:user@other.test",
    '"user@other.test"@example.test',
    "other.test!user@example.test",
    "user%other.test@catchall.test",
    '"user@other.test"@catchall.test',
    "other.test!user@catchall.test",
    "@catchall.test:user@other.test",
    "user%other.test@users.test",
    "other.test!user@users.test",
]


@pytest.mark.parametrize("rcpt", RELAY_TRICKS)
def test_relay_refused(server, rcpt):
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<spammer@other.test>", 250, "2.1.0")
        c.ok(f"RCPT TO:<{rcpt}>", 554, "5.7.1")
        # With no accepted recipient there is no DATA phase
        code, texts = c.cmd("DATA")
        assert code in (503, 554), (code, texts)
        assert code != 354
        c.ok("NOOP", 250, "2.0.0")
        c.assert_nothing_pending()
    assert server.all_delivered() == []
    assert server.queue_files() == []
    assert server.log_events("message") == []


def test_relay_refused_mixed_with_local(server):
    """Relay tricks in a transaction with a valid local recipient: only the
    local mailbox receives the message, once; no mailbox for any trick."""
    msg = make_message("mixed")
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<someone@other.test>", 250, "2.1.0")
        for r in RELAY_TRICKS:
            c.ok(f"RCPT TO:<{r}>", 554, "5.7.1")
        c.ok("RCPT TO:<bob@example.test>", 250, "2.1.5")
        c.ok("DATA", 354)
        c.send(dot_stuff(msg) + b".\r\n")
        c.expect(250, "2.0.0")
        c.assert_nothing_pending()
    wait_for_files(server.new("bob@example.test"), 1)
    server.wait_queue_empty()
    delivered = server.all_delivered()
    assert [p.relative_to(server.mail_root).parts[:2] for p in delivered] == \
        [("example.test", "bob")], delivered
    # only local domains ever appear under mail_root
    assert {p.name for p in server.mail_root.iterdir()} <= {"example.test"}
    deliveries = server.log_events("delivery")
    assert len(deliveries) == 1
    assert "other.test" not in (deliveries[0].get("to") or "")


def test_relay_refused_smtplib(server):
    s = server.smtplib()
    try:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as ei:
            s.sendmail("a@other.test", ["victim@other.test"], make_message("relay"))
        code, text = ei.value.recipients["victim@other.test"]
        assert code == 554 and text.startswith(b"5.7.1")
    finally:
        s.quit()
    assert server.all_delivered() == []
    assert server.queue_files() == []
