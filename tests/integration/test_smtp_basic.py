"""Basic SMTP behaviour: greeting, EHLO, delivery byte-exactness, aliases,
postmaster, catch-all, simple commands, errors, swaks, SMTPUTF8."""

import shutil
import smtplib
import subprocess

import pytest

from conftest import (HOSTNAME, check_delivered, dot_stuff, make_message,
                      parse_received, queue_id_of, split_delivered, wait_for_files)


def test_greeting_exact(server):
    with server.connect() as c:
        code, texts = c.reply()
        assert (code, texts) == (220, [f"{HOSTNAME} ESMTP postern"])
        c.assert_nothing_pending()


def test_ehlo_keywords_raw(server):
    with server.connect() as c:
        c.greeting()
        texts = c.ehlo("client.test")
        assert texts[0].split()[0] == HOSTNAME
        kws = [t.strip() for t in texts[1:]]
        for kw in ("PIPELINING", "SIZE 36700160", "8BITMIME", "ENHANCEDSTATUSCODES",
                   "SMTPUTF8"):
            assert kw in kws, f"{kw!r} missing from EHLO keywords {kws}"
        c.assert_nothing_pending()


def test_ehlo_keywords_smtplib(server):
    s = server.smtplib()
    try:
        code, _ = s.ehlo()
        assert code == 250
        for kw in ("pipelining", "size", "8bitmime", "enhancedstatuscodes", "smtputf8"):
            assert s.has_extn(kw), kw
        assert s.esmtp_features["size"] == "36700160"
    finally:
        s.quit()


def test_helo_reply(server):
    with server.connect() as c:
        c.greeting()
        c.ok("HELO client.test", 250)
        c.assert_nothing_pending()


def test_multi_recipient_byte_exact(server):
    # A line starting with "." (needs stuffing) and one that is just ".."
    msg = make_message("byte exact", [
        "first line",
        ".leading dot line",
        "..",
        ". ",
        "tab\there, trailing spaces   ",
        "8bit? no: plain ASCII ~!@#$%^&*()",
        "",
        "last",
    ])
    rcpts = ["alice@example.test", "bob@example.test", "someone@catchall.test"]
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        qid = c.transaction("sender@remote.test", rcpts, dot_stuff(msg))
        c.assert_nothing_pending()
    for r in rcpts:
        f = wait_for_files(server.new(r), 1)
        assert len(f) == 1
        check_delivered(f[0].read_bytes(), sender="sender@remote.test", recipient=r,
                        body=msg, queue_id=qid, proto="ESMTP")
        assert (server.maildir(r) / "tmp").is_dir() and (server.maildir(r) / "cur").is_dir()
    server.wait_queue_empty()
    for r in rcpts:
        assert len(server.delivered(r)) == 1


def test_smtplib_sendmail_delivers(server):
    msg = make_message("via smtplib", ["hello", ".dot", "bye"])
    s = server.smtplib()
    try:
        refused = s.sendmail("alice@example.test", ["bob@example.test"], msg)
        assert refused == {}
    finally:
        s.quit()
    f = wait_for_files(server.new("bob@example.test"), 1)
    check_delivered(f[0].read_bytes(), sender="alice@example.test",
                    recipient="bob@example.test", body=msg, proto="ESMTP")


def test_helo_protocol_word_smtp(server):
    msg = make_message("helo")
    with server.connect() as c:
        c.greeting()
        c.ok("HELO client.test", 250)
        qid = c.transaction("a@remote.test", ["alice@example.test"], dot_stuff(msg))
        c.assert_nothing_pending()
    f = wait_for_files(server.new("alice@example.test"), 1)
    r = check_delivered(f[0].read_bytes(), sender="a@remote.test",
                        recipient="alice@example.test", body=msg, queue_id=qid, proto="SMTP")
    assert r["proto"] == "SMTP"


def test_null_sender(server):
    msg = make_message("bounce-like")
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<>", 250, "2.1.0")
        c.ok("RCPT TO:<bob@example.test>", 250, "2.1.5")
        c.ok("DATA", 354)
        c.send(dot_stuff(msg) + b".\r\n")
        qid = queue_id_of(c.expect(250)[-1])
        c.assert_nothing_pending()
    f = wait_for_files(server.new("bob@example.test"), 1)
    rp, _, received, rest = split_delivered(f[0].read_bytes())
    assert rp == b"<>"
    assert parse_received(received)["id"] == qid
    assert rest == msg


def test_recipient_case_folds_to_lowercase_maildir(server):
    msg = make_message("case")
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        c.transaction("x@remote.test", ["Alice@Example.TEST"], dot_stuff(msg))
        c.assert_nothing_pending()
    f = wait_for_files(server.mail_root / "example.test" / "alice" / "new", 1)
    _, _, _, rest = split_delivered(f[0].read_bytes())
    assert rest == msg
    server.wait_queue_empty()
    assert len(server.all_delivered()) == 1


def test_aliases_recursive_and_deduplicated(server):
    msg = make_message("aliases")
    # alice is reached via: herself, twice; team; staff -> team; all -> staff + alice
    rcpts = ["alice@example.test", "alice@example.test", "team@example.test",
             "staff@example.test", "all@example.test"]
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        for r in rcpts:
            c.ok(f"RCPT TO:<{r}>", 250, "2.1.5")
        c.ok("DATA", 354)
        c.send(dot_stuff(msg) + b".\r\n")
        qid = queue_id_of(c.expect(250)[-1])
        c.assert_nothing_pending()
    fa = wait_for_files(server.new("alice@example.test"), 1)
    fb = wait_for_files(server.new("bob@example.test"), 1)
    server.wait_queue_empty()
    assert len(server.delivered("alice@example.test")) == 1, "alice got duplicates"
    assert len(server.delivered("bob@example.test")) == 1, "bob got duplicates"
    for f, who in ((fa[0], "alice@example.test"), (fb[0], "bob@example.test")):
        check_delivered(f.read_bytes(), sender="x@remote.test", recipient=who, body=msg,
                        queue_id=qid, delivered_to_any=True)
    # nothing is delivered into mailboxes named after the aliases
    for alias in ("team", "staff", "all"):
        assert not server.delivered(f"{alias}@example.test")
    assert len(server.all_delivered()) == 2


def test_alias_recursive_only(server):
    msg = make_message("staff only")
    s = server.smtplib()
    try:
        assert s.sendmail("x@remote.test", ["staff@example.test"], msg) == {}
    finally:
        s.quit()
    wait_for_files(server.new("alice@example.test"), 1)
    wait_for_files(server.new("bob@example.test"), 1)
    server.wait_queue_empty()
    assert len(server.all_delivered()) == 2


def test_postmaster(server):
    msg = make_message("postmaster")
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        c.ok("RCPT TO:<postmaster@example.test>", 250, "2.1.5")   # alias -> alice
        c.ok("RCPT TO:<postmaster@users.test>", 250, "2.1.5")     # domain with users, no alias
        c.ok("DATA", 354)
        c.send(dot_stuff(msg) + b".\r\n")
        c.expect(250, "2.0.0")
        c.assert_nothing_pending()
    f = wait_for_files(server.new("alice@example.test"), 1)
    assert split_delivered(f[0].read_bytes())[3] == msg
    f = wait_for_files(server.new("postmaster@users.test"), 1)
    assert split_delivered(f[0].read_bytes())[3] == msg


def test_postmaster_bare_and_case_insensitive(server):
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        c.ok("RCPT TO:<PostMaster@users.test>", 250, "2.1.5")
        c.ok("RSET", 250, "2.0.0")
        c.assert_nothing_pending()


def test_unknown_user(server):
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        c.ok("RCPT TO:<carol@example.test>", 550, "5.1.1")
        c.ok("RCPT TO:<alice@users.test>", 550, "5.1.1")   # alice exists only in example.test
        c.ok("RCPT TO:<bob@example.test>", 250, "2.1.5")
        c.ok("DATA", 354)
        msg = make_message("after unknown")
        c.send(dot_stuff(msg) + b".\r\n")
        c.expect(250, "2.0.0")
        c.assert_nothing_pending()
    wait_for_files(server.new("bob@example.test"), 1)
    server.wait_queue_empty()
    assert not server.maildir("carol@example.test").exists()
    assert not server.maildir("alice@users.test").exists()
    assert len(server.all_delivered()) == 1


def test_unknown_user_smtplib(server):
    s = server.smtplib()
    try:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as ei:
            s.sendmail("x@remote.test", ["nobody@example.test"], make_message("x"))
        code, text = ei.value.recipients["nobody@example.test"]
        assert code == 550 and text.startswith(b"5.1.1")
    finally:
        s.quit()


def test_catch_all_domain(server):
    msg = make_message("catch-all")
    rcpts = ["anything@catchall.test", "Some.Body+tag@CatchAll.test"]
    s = server.smtplib()
    try:
        assert s.sendmail("x@remote.test", rcpts, msg) == {}
    finally:
        s.quit()
    f1 = wait_for_files(server.mail_root / "catchall.test" / "anything" / "new", 1)
    f2 = wait_for_files(server.mail_root / "catchall.test" / "some.body+tag" / "new", 1)
    for f in (f1[0], f2[0]):
        assert split_delivered(f.read_bytes())[3] == msg


def test_vrfy_help_noop_rset(server):
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("VRFY alice@example.test", 252, "2.5.0")
        c.ok("VRFY nobody", 252, "2.5.0")
        c.ok("HELP", 214)
        c.ok("NOOP", 250, "2.0.0")
        c.ok("noop", 250, "2.0.0")          # commands are case-insensitive
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        c.ok("RCPT TO:<alice@example.test>", 250, "2.1.5")
        c.ok("RSET", 250, "2.0.0")
        # RSET dropped the transaction: RCPT now is out of sequence
        c.ok("RCPT TO:<alice@example.test>", 503, "5.5.1")
        c.ok("DATA", 503, "5.5.1")
        # and a new transaction can start
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        c.assert_nothing_pending()
    server.wait_queue_empty()
    assert server.all_delivered() == []


def test_unknown_command(server):
    with server.connect() as c:
        c.greeting()
        c.ok("FOO bar", 500, "5.5.1")
        c.ok("EHLO client.test", 250)
        c.ok("XYZZY", 500, "5.5.1")
        c.ok("NOOP", 250, "2.0.0")
        c.assert_nothing_pending()


@pytest.mark.parametrize("setup,cmd", [
    ([], "MAIL FROM:<x@remote.test>"),                       # MAIL before EHLO/HELO
    (["EHLO c.test"], "RCPT TO:<alice@example.test>"),        # RCPT before MAIL
    (["EHLO c.test"], "DATA"),                                # DATA before MAIL
    (["EHLO c.test", "MAIL FROM:<x@remote.test>"], "DATA"),   # DATA before RCPT
    (["EHLO c.test", "MAIL FROM:<x@remote.test>"], "MAIL FROM:<y@remote.test>"),  # nested
    (["EHLO c.test", "MAIL FROM:<x@remote.test>", "RCPT TO:<alice@example.test>"],
     "MAIL FROM:<y@remote.test>"),                            # nested after RCPT
])
def test_bad_sequence(server, setup, cmd):
    with server.connect() as c:
        c.greeting()
        for s in setup:
            c.send(s + "\r\n")
            code, texts = c.reply()
            assert code == 250, (s, code, texts)
        c.ok(cmd, 503, "5.5.1")
        c.ok("NOOP", 250, "2.0.0")
        c.assert_nothing_pending()
    assert server.all_delivered() == []


@pytest.mark.parametrize("cmd,code,enh", [
    ("MAIL FROM alice@example.test", 501, "5.5.4"),        # no colon
    ("MAIL TO:<alice@example.test>", 501, "5.5.4"),
    ("EHLO", 501, "5.5.4"),                                # missing domain
    ("HELO", 501, "5.5.4"),
    ("MAIL FROM:<alice@@example.test>", 501, "5.1.7"),     # bad sender address
    ("MAIL FROM:<alice@>", 501, "5.1.7"),
    ("MAIL FROM:<alice@example..test>", 501, "5.1.7"),
])
def test_bad_syntax_mail(server, cmd, code, enh):
    with server.connect() as c:
        c.greeting()
        if not cmd.startswith(("EHLO", "HELO")):
            c.ehlo()
        c.ok(cmd, code, enh)
        # the session continues
        c.ok("EHLO client.test", 250)
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        c.assert_nothing_pending()


@pytest.mark.parametrize("cmd,code,enh", [
    ("RCPT TO alice@example.test", 501, "5.5.4"),          # no colon
    ("RCPT FROM:<alice@example.test>", 501, "5.5.4"),
    ("RCPT TO:<alice@>", 501, "5.1.3"),                    # bad recipient address
    ("RCPT TO:<alice@@example.test>", 501, "5.1.3"),
    ("RCPT TO:<alice@example..test>", 501, "5.1.3"),
])
def test_bad_syntax_rcpt(server, cmd, code, enh):
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        c.ok(cmd, code, enh)
        c.ok("RCPT TO:<alice@example.test>", 250, "2.1.5")
        c.assert_nothing_pending()


def test_non_ascii_sender_without_smtputf8(server):
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<jörg@example.test>".encode(), 553, "5.6.7")
        c.ok("MAIL FROM:<jörg@example.test> SMTPUTF8".encode(), 250, "2.1.0")
        c.assert_nothing_pending()


def test_smtputf8_smtplib(server):
    msg = ("From: Jörg <jörg@example.test>\r\nTo: jürgen@catchall.test\r\n"
           "Subject: Grüße\r\nMessage-ID: <utf8-1@client.test>\r\n\r\nSchöne Grüße\r\n").encode()
    s = server.smtplib()
    try:
        s.ehlo()
        assert s.has_extn("smtputf8")
        refused = s.sendmail("jörg@example.test", ["jürgen@catchall.test"], msg,
                             mail_options=["SMTPUTF8"])
        assert refused == {}
    finally:
        s.quit()
    f = wait_for_files(server.mail_root / "catchall.test" / "jürgen" / "new", 1)
    data = f[0].read_bytes()
    rp, dt, received, rest = split_delivered(data)
    assert rp == "<jörg@example.test>".encode()
    assert dt in ("jürgen@catchall.test".encode(), "<jürgen@catchall.test>".encode())
    assert parse_received(received)["proto"] == "UTF8SMTP"
    assert rest == msg


def test_smtputf8_raw(server):
    msg = "Subject: ü\r\n\r\nÄÖÜ\r\n".encode()
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        qid = c.transaction("jörg@example.test", ["ünïcode@catchall.test"], msg,
                            mail_params=" SMTPUTF8")
        c.assert_nothing_pending()
    f = wait_for_files(server.mail_root / "catchall.test" / "ünïcode" / "new", 1)
    check_delivered(f[0].read_bytes(), sender="jörg@example.test",
                    recipient="ünïcode@catchall.test", body=msg, queue_id=qid,
                    proto="UTF8SMTP")


def test_8bitmime_body(server):
    msg = "Subject: 8bit\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGrüße, ça va\r\n".encode()
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        qid = c.transaction("x@remote.test", ["bob@example.test"], msg,
                            mail_params=" BODY=8BITMIME")
        c.assert_nothing_pending()
    f = wait_for_files(server.new("bob@example.test"), 1)
    check_delivered(f[0].read_bytes(), sender="x@remote.test", recipient="bob@example.test",
                    body=msg, queue_id=qid, proto="ESMTP")


def test_queue_id_unique_and_logged(server):
    ids = []
    with server.connect() as c:
        c.greeting()
        c.ehlo()
        for i in range(3):
            ids.append(c.transaction("x@remote.test", ["alice@example.test"],
                                     make_message(f"n{i}")))
        c.assert_nothing_pending()
    assert len(set(ids)) == 3
    wait_for_files(server.new("alice@example.test"), 3)
    server.wait_queue_empty()
    logged = {e.get("id") for e in server.log_events("message")}
    sent = {e.get("id") for e in server.log_events("delivery") if e.get("status") == "sent"}
    for qid in ids:
        assert qid in logged, f"no event=message line for {qid}"
        assert qid in sent, f"no event=delivery status=sent line for {qid}"
    assert server.log_events("connect") and server.log_events("disconnect")


@pytest.mark.skipif(shutil.which("swaks") is None, reason="swaks not installed")
@pytest.mark.parametrize("extra", [[], ["--pipeline"], ["--protocol", "SMTP"]])
def test_swaks_delivery(server, extra):
    marker = f"swaks-body-{'-'.join(extra) or 'plain'}"
    p = subprocess.run(
        ["swaks", "--server", f"127.0.0.1:{server.port}", "--to", "bob@example.test",
         "--from", "alice@example.test", "--helo", "swaks.test",
         "--header", "Subject: from swaks", "--body", marker, *extra],
        capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "queued as" in p.stdout
    f = wait_for_files(server.new("bob@example.test"), 1)
    rp, dt, received, rest = split_delivered(f[0].read_bytes())
    assert rp == b"<alice@example.test>"
    assert marker.encode() in rest
    assert b"Subject: from swaks\r\n" in rest
    assert parse_received(received)["proto"] == ("SMTP" if "SMTP" in extra else "ESMTP")
    server.wait_queue_empty()
    assert len(server.all_delivered()) == 1
