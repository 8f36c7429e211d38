"""STARTTLS, implicit TLS, SMTP AUTH and the submission service (issue:
STARTTLS, implicit TLS, SMTP AUTH, submission), driven by real clients:
Python's smtplib, swaks, curl and openssl s_client, plus raw sockets where the
exact bytes matter (STARTTLS command injection, ClientHello on a plain port).

Every test starts its own postern on loopback; the first listener is always a
plain-greeting "smtp" listener on srv.port (conftest's readiness probe speaks
plain text), the others are added on free ports."""

import base64
import email.utils
import json
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess

import pytest

from conftest import (HOSTNAME, POSTERN_BIN, RawSMTP, check_delivered, free_port, make_message,
                      parse_received, split_delivered, wait_for_files, wait_until)

PASSWORD = "secret"
ALICE, BOB, CARL = "alice@example.test", "bob@example.test", "carl@users.test"
ALICE_ALIAS = "Alias@Other.test"   # one of alice's "addresses"
TIMEOUT = 20                        # bound for every client subprocess

needs = {tool: pytest.mark.skipif(shutil.which(tool) is None, reason=f"{tool} not installed")
         for tool in ("swaks", "curl", "openssl")}


# --------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(scope="module")
def pw_hash():
    """The hash of PASSWORD made by `postern hash-password` (password on stdin)."""
    p = subprocess.run([POSTERN_BIN, "hash-password"], input=PASSWORD.encode() + b"\n",
                       capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    h = p.stdout.decode().strip()
    assert h.startswith("$pbkdf2-sha256$210000$"), h
    assert PASSWORD not in h
    return h


def start(make_server, pw_hash, listeners=(), overrides=None, passwords=True, name=None):
    """Start postern with an smtp/starttls listener on srv.port plus `listeners`
    (a sequence of (mode, tls)); returns (srv, [ports of the extra listeners])."""
    users = [
        {"address": ALICE, "addresses": [ALICE_ALIAS, "other@x.test"]},
        {"address": BOB},
        {"address": CARL},          # never has a password
    ]
    if passwords:
        users[0]["password"] = pw_hash
        users[1]["password"] = pw_hash
    over = {"users": users, "auth": {"failure_delay_ms": 10}}
    over.update(overrides or {})
    if "auth" in (overrides or {}):
        over["auth"] = {"failure_delay_ms": 10, **overrides["auth"]}
    srv = make_server(over, start=False, name=name)
    ports = [free_port() for _ in listeners]
    srv.config["listeners"] = [{"address": f"127.0.0.1:{srv.port}", "mode": "smtp"}] + [
        {"address": f"127.0.0.1:{p}", "mode": mode, "tls": tls}
        for p, (mode, tls) in zip(ports, listeners)]
    srv.config_path.write_text(json.dumps(srv.config, indent=2))
    srv.start()
    return srv, ports


def client_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def starttls(c):
    """On a RawSMTP after EHLO: STARTTLS, wrap the socket, return the SSL socket."""
    c.ok("STARTTLS", 220, "2.0.0")
    assert c.buf == b"", f"bytes after the 220 to STARTTLS: {c.buf!r}"
    c.sock = client_ctx().wrap_socket(c.sock, server_hostname=HOSTNAME)
    return c.sock


def implicit(port, timeout=10):
    """A RawSMTP whose socket is TLS from the first byte (no greeting read yet)."""
    c = RawSMTP(port, timeout=timeout)
    c.sock = client_ctx().wrap_socket(c.sock, server_hostname=HOSTNAME)
    return c


def exact(c, line, code, text):
    """Send line; the reply must be exactly `code text` (last line)."""
    texts = c.ok(line, code)
    assert texts[-1] == text, f"after {line!r}: expected {code} {text!r}, got {code} {texts}"
    return texts


def ehlo_keywords(texts):
    assert texts[0].split()[0] == HOSTNAME, texts
    return [t.strip() for t in texts[1:]]


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def plain(user, password):
    return b64(f"\0{user}\0{password}")


def served_cert_der(port, mode="starttls"):
    """The DER certificate the server presents (STARTTLS or implicit TLS)."""
    if mode == "implicit":
        c = implicit(port)
    else:
        c = RawSMTP(port)
        c.greeting()
        c.ehlo()
        starttls(c)
    with c:
        der = c.sock.getpeercert(binary_form=True)
        if mode == "implicit":
            c.greeting()
        c.ehlo()
        c.assert_nothing_pending()
    return der


def pem_der(path):
    return ssl.PEM_cert_to_DER_cert(path.read_text())


def s_client(port, *args, data=b"EHLO client.test\r\nQUIT\r\n"):
    """openssl s_client -starttls smtp; -ign_eof keeps it reading until the
    server closes after QUIT (and stops 'Q' at line start meaning quit)."""
    return subprocess.run(
        ["openssl", "s_client", "-starttls", "smtp", "-connect", f"127.0.0.1:{port}",
         "-servername", HOSTNAME, "-ign_eof", *args],
        input=data, capture_output=True, timeout=TIMEOUT)


def s_client_out(p):
    """s_client's stdout as text; the server's lines keep their CRLF there."""
    return p.stdout.decode(errors="replace").replace("\r\n", "\n")


def delivered_one(srv, rcpt):
    f = wait_for_files(srv.new(rcpt), 1)
    assert len(f) == 1, f
    return f[0].read_bytes()


def header_lines(rest):
    head = rest.split(b"\r\n\r\n", 1)[0]
    return head.split(b"\r\n")


def check_added_date_and_message_id(rest, original, queue_id):
    """rest (delivered text after Received:) must be the original message plus
    exactly one added Date: and one Message-ID: <queueid@hostname>."""
    lines = header_lines(rest)
    dates = [h for h in lines if h.lower().startswith(b"date:")]
    mids = [h for h in lines if h.lower().startswith(b"message-id:")]
    assert len(dates) == 1 and len(mids) == 1, lines
    assert mids[0].split(b":", 1)[1].strip() == f"<{queue_id}@{HOSTNAME}>".encode(), mids
    d = email.utils.parsedate_to_datetime(dates[0].split(b":", 1)[1].strip().decode())
    assert d.tzinfo is not None, dates
    without = rest.replace(dates[0] + b"\r\n", b"", 1).replace(mids[0] + b"\r\n", b"", 1)
    assert without == original, (without, original)


def received_tls(received, proto):
    r = parse_received(received)
    assert r["proto"] == proto, received
    norm = re.sub(rb"\s+", b" ", received)
    m = re.search(rb"\(version=(TLSv1\.[23]) cipher=([A-Za-z0-9_-]+)\)", norm)
    assert m, received
    return r, m.group(1).decode()


MSG_NO_IDS = (b"From: Alice <alice@example.test>\r\nTo: Bob <bob@example.test>\r\n"
              b"Subject: no date, no id\r\n\r\nbody line\r\n")


# --------------------------------------------------------------------------
# 1. smtplib


def test_smtplib_starttls_login_send_adds_date_and_message_id(make_server, pw_hash):
    srv, (sub,) = start(make_server, pw_hash, [("submission", "starttls")])
    s = smtplib.SMTP("127.0.0.1", sub, local_hostname="client.test", timeout=TIMEOUT)
    try:
        code, resp = s.ehlo()
        assert code == 250
        assert s.has_extn("starttls") and not s.has_extn("auth"), resp
        assert s.starttls(context=client_ctx()) == (220, b"2.0.0 Ready to start TLS")
        code, resp = s.ehlo()
        assert code == 250 and not s.has_extn("starttls"), resp
        assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        # keyword order as specified
        assert resp.decode().split("\n")[1:] == ["PIPELINING", "SIZE 36700160", "8BITMIME", "BINARYMIME", "CHUNKING",
                                                 "AUTH PLAIN LOGIN", "DSN", "ENHANCEDSTATUSCODES",
                                                 "SMTPUTF8"]
        assert s.login(ALICE, PASSWORD) == (235, b"2.7.0 Authentication successful")
        code, resp = s.ehlo()
        assert code == 250 and b"AUTH" not in resp, "AUTH must not be offered after AUTH"
        assert s.sendmail(ALICE, [BOB], MSG_NO_IDS) == {}
    finally:
        s.quit()
    data = delivered_one(srv, BOB)
    rp, dt, received, rest = split_delivered(data)
    assert rp == b"<alice@example.test>"
    r, version = received_tls(received, "ESMTPSA")
    assert version == "TLSv1.3"
    check_added_date_and_message_id(rest, MSG_NO_IDS, r["id"])
    auth = srv.log_events("auth")
    assert [(a["mechanism"], a["user"], a["result"]) for a in auth] == [("PLAIN", ALICE, "ok")]
    tls = [t for t in srv.log_events("tls") if t["result"] == "ok"]
    assert len(tls) == 1 and tls[0]["tls"].strip('"').startswith("TLSv1.3 "), tls
    assert PASSWORD not in srv.log()


def test_smtplib_submission_keeps_existing_date_and_message_id(make_server, pw_hash):
    srv, (sub,) = start(make_server, pw_hash, [("submission", "starttls")])
    msg = make_message("has ids", msgid="fixed-id-1@client.test")
    s = smtplib.SMTP("127.0.0.1", sub, local_hostname="client.test", timeout=TIMEOUT)
    try:
        s.starttls(context=client_ctx())
        s.login(BOB, PASSWORD)
        assert s.sendmail(BOB, [ALICE], msg) == {}
    finally:
        s.quit()
    # byte-exact: nothing added, nothing replaced
    check_delivered(delivered_one(srv, ALICE), sender=BOB, recipient=ALICE, body=msg,
                    proto="ESMTPSA")


@pytest.mark.parametrize("case", ["ids-only-in-body", "date-present", "folded-message-id"])
def test_submission_adds_only_the_missing_header_fields(make_server, pw_hash, case):
    """Only the header section counts, field names are case-insensitive and a
    folded field is still present."""
    srv, (sub,) = start(make_server, pw_hash, [("submission", "starttls")])
    head = b"From: alice@example.test\r\nTo: bob@example.test\r\nSubject: s\r\n"
    if case == "ids-only-in-body":
        msg = head + b"\r\nDate: Thu, 26 Nov 2026 07:00:00 +0000\r\nMessage-ID: <in@body>\r\n"
        want_date, want_mid = True, True
    elif case == "date-present":
        msg = head + b"DATE: Thu, 26 Nov 2026 07:00:00 +0000\r\n\r\nbody\r\n"
        want_date, want_mid = False, True
    else:
        msg = head + b"message-id:\r\n <folded@client.test>\r\n\r\nbody\r\n"
        want_date, want_mid = True, False
    s = smtplib.SMTP("127.0.0.1", sub, local_hostname="client.test", timeout=TIMEOUT)
    try:
        s.starttls(context=client_ctx())
        s.login(ALICE, PASSWORD)
        assert s.sendmail(ALICE, [BOB], msg) == {}
    finally:
        s.quit()
    rp, dt, received, rest = split_delivered(delivered_one(srv, BOB))
    r = parse_received(received)
    added = rest[:len(rest) - len(msg)]
    assert rest[len(added):] == msg, rest
    fields = [ln.split(b":", 1)[0].lower() for ln in added.split(b"\r\n") if ln]
    assert fields == [f for f, want in ((b"date", want_date), (b"message-id", want_mid)) if want], \
        added
    if want_mid:
        assert f"Message-ID: <{r['id']}@{HOSTNAME}>\r\n".encode() in added, added


def test_received_names_tls12_when_negotiated(make_server, pw_hash):
    srv, (sub,) = start(make_server, pw_hash, [("submission", "starttls")])
    ctx = client_ctx()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    s = smtplib.SMTP("127.0.0.1", sub, local_hostname="client.test", timeout=TIMEOUT)
    try:
        s.starttls(context=ctx)
        assert s.sock.version() == "TLSv1.2"
        s.login(ALICE, PASSWORD)
        assert s.sendmail(ALICE, [BOB], MSG_NO_IDS) == {}
    finally:
        s.quit()
    rp, dt, received, rest = split_delivered(delivered_one(srv, BOB))
    r, version = received_tls(received, "ESMTPSA")
    assert version == "TLSv1.2"
    tls = [t for t in srv.log_events("tls") if t["result"] == "ok"]
    assert len(tls) == 1 and tls[0]["tls"].strip('"').startswith("TLSv1.2 "), tls


def test_smtplib_smtp_ssl_on_implicit_listener(make_server, pw_hash):
    srv, (imp,) = start(make_server, pw_hash, [("submission", "implicit")])
    s = smtplib.SMTP_SSL("127.0.0.1", imp, local_hostname="client.test", timeout=TIMEOUT,
                         context=client_ctx())
    try:
        assert s.sock.version() == "TLSv1.3"
        code, resp = s.ehlo()
        assert code == 250
        assert not s.has_extn("starttls"), "no STARTTLS inside TLS"
        assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        assert s.login(ALICE, PASSWORD) == (235, b"2.7.0 Authentication successful")
        assert s.sendmail(ALICE, [BOB, CARL], MSG_NO_IDS) == {}
    finally:
        s.quit()
    for rcpt in (BOB, CARL):
        rp, dt, received, rest = split_delivered(delivered_one(srv, rcpt))
        assert rp == b"<alice@example.test>"
        r, version = received_tls(received, "ESMTPSA")
        assert version == "TLSv1.3"
        check_added_date_and_message_id(rest, MSG_NO_IDS, r["id"])


def test_starttls_without_auth_is_esmtps(make_server, pw_hash):
    """Plain MX reception upgraded with STARTTLS: Received: says ESMTPS and the
    message is not touched (no Date/Message-ID added without AUTH)."""
    srv, _ = start(make_server, pw_hash)
    msg = MSG_NO_IDS
    s = srv.smtplib(timeout=TIMEOUT)
    try:
        s.starttls(context=client_ctx())
        assert s.sendmail("someone@remote.test", [BOB], msg) == {}
    finally:
        s.quit()
    rp, dt, received, rest = split_delivered(delivered_one(srv, BOB))
    assert rp == b"<someone@remote.test>"
    r, version = received_tls(received, "ESMTPS")
    assert version == "TLSv1.3"
    assert rest == msg


# --------------------------------------------------------------------------
# 2. swaks


@needs["swaks"]
@pytest.mark.parametrize("tls,mech", [("--tls", "PLAIN"), ("--tls", "LOGIN"), ("--tlsc", "PLAIN"),
                                      ("--tlsc", "LOGIN")])
def test_swaks_auth_submission(make_server, pw_hash, tls, mech):
    srv, (sub, imp) = start(make_server, pw_hash,
                            [("submission", "starttls"), ("submission", "implicit")])
    port = sub if tls == "--tls" else imp
    marker = f"swaks-{tls.strip('-')}-{mech}"
    p = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(port), tls, "--auth", mech,
         "--auth-user", ALICE, "--auth-password", PASSWORD, "--to", BOB, "--from", ALICE,
         "--helo", "swaks.test", "--header", "Subject: via swaks", "--body", marker],
        capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "235 2.7.0 Authentication successful" in p.stdout, p.stdout
    assert re.search(r"250 2\.0\.0 Ok: queued as [0-9a-f]{16}", p.stdout), p.stdout
    rp, dt, received, rest = split_delivered(delivered_one(srv, BOB))
    assert rp == b"<alice@example.test>"
    received_tls(received, "ESMTPSA")
    assert marker.encode() in rest and b"Subject: via swaks\r\n" in rest
    # swaks sends its own Date: and Message-Id:, they must not be duplicated
    lines = header_lines(rest)
    assert len([h for h in lines if h.lower().startswith(b"date:")]) == 1, lines
    assert len([h for h in lines if h.lower().startswith(b"message-id:")]) == 1, lines
    auth = srv.log_events("auth")
    assert [(a["mechanism"], a["user"], a["result"]) for a in auth] == [(mech, ALICE, "ok")]


@needs["swaks"]
def test_swaks_wrong_password_gets_535(make_server, pw_hash):
    srv, (sub,) = start(make_server, pw_hash, [("submission", "starttls")])
    p = subprocess.run(
        ["swaks", "--server", "127.0.0.1", "--port", str(sub), "--tls", "--auth", "PLAIN",
         "--auth-user", ALICE, "--auth-password", "not-the-password", "--to", BOB,
         "--from", ALICE],
        capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode != 0, p.stdout
    assert "535 5.7.8" in p.stdout, p.stdout
    assert "queued as" not in p.stdout
    auth = srv.log_events("auth")
    assert [(a["mechanism"], a["user"], a["result"]) for a in auth] == [("PLAIN", ALICE, "failed")]
    assert "not-the-password" not in srv.log()
    assert srv.all_delivered() == [] and srv.queue_files() == []


# --------------------------------------------------------------------------
# 3. curl


@needs["curl"]
@pytest.mark.parametrize("scheme", ["smtp", "smtps"])
def test_curl_submission(make_server, pw_hash, tmp_path, scheme):
    srv, (sub, imp) = start(make_server, pw_hash,
                            [("submission", "starttls"), ("submission", "implicit")])
    msgfile = tmp_path / "msg.eml"
    msgfile.write_bytes(MSG_NO_IDS)
    args = ["--ssl-reqd", f"smtp://127.0.0.1:{sub}"] if scheme == "smtp" else \
        [f"smtps://127.0.0.1:{imp}"]
    p = subprocess.run(
        ["curl", "--silent", "--show-error", "--insecure", "--max-time", str(TIMEOUT), *args,
         "--mail-from", ALICE, "--mail-rcpt", BOB, "--user", f"{ALICE}:{PASSWORD}",
         "--upload-file", str(msgfile)],
        capture_output=True, text=True, timeout=TIMEOUT + 5)
    assert p.returncode == 0, p.stdout + p.stderr
    rp, dt, received, rest = split_delivered(delivered_one(srv, BOB))
    assert rp == b"<alice@example.test>"
    r, version = received_tls(received, "ESMTPSA")
    assert version == "TLSv1.3"
    check_added_date_and_message_id(rest, MSG_NO_IDS, r["id"])
    assert [a["result"] for a in srv.log_events("auth")] == ["ok"]


# --------------------------------------------------------------------------
# 4. openssl s_client


# The tests of the self-signed default ask for it: the others share the
# suite's EC test certificate (conftest), which spares an RSA key per server.
SELF_SIGNED = {"tls": {"certificate": None, "private_key": None}}


@needs["openssl"]
def test_s_client_default_is_tls13_with_the_self_signed_hostname_cert(make_server, pw_hash):
    srv, _ = start(make_server, pw_hash, overrides=SELF_SIGNED)
    p = s_client(srv.port)
    out = s_client_out(p)
    assert p.returncode == 0, out + p.stderr.decode(errors="replace")
    assert re.search(r"^subject=CN ?= ?mx\.example\.test$", out, re.M), out
    assert re.search(r"^issuer=CN ?= ?mx\.example\.test$", out, re.M), out  # self-signed
    assert "New, TLSv1.3, Cipher is " in out, out
    assert re.search(r"^\s+Protocol\s*: TLSv1\.3$", out, re.M), out
    # the session inside TLS: EHLO with AUTH and without STARTTLS, then QUIT
    assert "250-AUTH PLAIN LOGIN\n" in out and "STARTTLS" not in out.split("250-" + HOSTNAME)[-1]
    assert "221 2.0.0" in out, out


@needs["openssl"]
@pytest.mark.parametrize("version,ok", [("-tls1_2", True), ("-tls1_3", True), ("-tls1_1", False)])
def test_s_client_protocol_versions(make_server, pw_hash, version, ok):
    srv, _ = start(make_server, pw_hash)
    # SECLEVEL=0 so that the client really offers TLS 1.1 and the refusal is
    # the server's
    extra = ["-cipher", "DEFAULT@SECLEVEL=0"] if version == "-tls1_1" else []
    p = s_client(srv.port, version, *extra)
    out = s_client_out(p)
    err = p.stderr.decode(errors="replace")
    name = {"-tls1_2": "TLSv1.2", "-tls1_3": "TLSv1.3", "-tls1_1": "TLSv1.1"}
    events = srv.log_events("tls")
    if ok:
        assert p.returncode == 0, out + err
        assert f"New, {name[version]}, Cipher is " in out, out
        assert "221 2.0.0" in out
        assert [e["result"] for e in events] == ["ok"]
        assert events[0]["tls"].strip('"').startswith(name[version] + " ")
    else:
        assert p.returncode != 0, out
        assert "New, (NONE), Cipher is (NONE)" in out, out
        assert "alert protocol version" in err, err   # the server's alert 70
        assert "250 " not in out
        wait_until(lambda: [e["result"] for e in srv.log_events("tls")] == ["failed"], 10,
                   "the failed handshake in the log")
        # and the server goes on serving
        with srv.connect() as c:
            c.greeting()
            c.ehlo()
            starttls(c)
            assert c.sock.version() == "TLSv1.3"
            c.ehlo()
            c.assert_nothing_pending()


# --------------------------------------------------------------------------
# 5. STARTTLS state: injection, repeated, inside a transaction, unavailable


def test_starttls_discards_pipelined_plaintext_commands(make_server, pw_hash):
    srv, _ = start(make_server, pw_hash)
    with srv.connect() as c:
        c.greeting()
        assert "STARTTLS" in ehlo_keywords(c.ehlo())
        c.send(b"STARTTLS\r\nNOOP\r\nMAIL FROM:<evil@x.test>\r\n")   # one write
        c.expect(220, "2.0.0")
        assert c.buf == b"", f"bytes after the 220: {c.buf!r}"
        c.sock = client_ctx().wrap_socket(c.sock, server_hostname=HOSTNAME)
        # nothing may arrive inside TLS before we say something
        c.sock.settimeout(1.0)
        with pytest.raises(socket.timeout):
            got = c.sock.recv(4096)
            pytest.fail(f"the server answered injected commands inside TLS: {got!r}")
        # the session is back before EHLO
        exact(c, "MAIL FROM:<a@x.test>", 503, "5.5.1 Error: send HELO/EHLO first")
        kws = ehlo_keywords(c.ehlo())
        assert "STARTTLS" not in kws and "AUTH PLAIN LOGIN" in kws
        c.ok("NOOP", 250)
        c.assert_nothing_pending()
    assert srv.all_delivered() == []


def test_starttls_twice_and_inside_a_transaction(make_server, pw_hash):
    srv, _ = start(make_server, pw_hash)
    with srv.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<a@remote.test>", 250, "2.1.0")
        exact(c, "STARTTLS", 503, "5.5.1 Error: MAIL transaction in progress")
        c.ok("RSET", 250)
        c.ok("STARTTLS now", 501, "5.5.4 ")   # RFC 3207: no parameters allowed
        starttls(c)
        c.ehlo()
        exact(c, "STARTTLS", 503, "5.5.1 Error: TLS already active")
        # the TLS session still works
        c.ok("MAIL FROM:<a@remote.test>", 250, "2.1.0")
        c.ok(f"RCPT TO:<{BOB}>", 250, "2.1.5")
        c.ok("DATA", 354)
        c.send(MSG_NO_IDS + b".\r\n")
        c.expect(250, "2.0.0 Ok: queued as ")
        c.assert_nothing_pending()
    rp, dt, received, rest = split_delivered(delivered_one(srv, BOB))
    received_tls(received, "ESMTPS")


def test_tls_none_listener_has_no_starttls_and_no_auth(make_server, pw_hash):
    srv, (none,) = start(make_server, pw_hash, [("smtp", "none")])
    with RawSMTP(none) as c:
        c.greeting()
        kws = ehlo_keywords(c.ehlo())
        assert kws == ["PIPELINING", "SIZE 36700160", "8BITMIME", "BINARYMIME", "CHUNKING", "DSN", "ENHANCEDSTATUSCODES",
                       "SMTPUTF8"]
        exact(c, "STARTTLS", 500, "5.5.1 Error: command not recognized")
        exact(c, f"AUTH PLAIN {plain(ALICE, PASSWORD)}", 538,
              "5.7.11 Encryption required for requested authentication mechanism")
        c.assert_nothing_pending()
    assert srv.log_events("auth") == []


# --------------------------------------------------------------------------
# AUTH rules


def test_auth_needs_tls_on_plain_text(make_server, pw_hash):
    srv, _ = start(make_server, pw_hash)
    with srv.connect() as c:
        c.greeting()
        kws = ehlo_keywords(c.ehlo())
        assert kws == ["PIPELINING", "SIZE 36700160", "8BITMIME", "BINARYMIME", "CHUNKING", "STARTTLS",
                       "DSN", "ENHANCEDSTATUSCODES", "SMTPUTF8"]
        for line in (f"AUTH PLAIN {plain(ALICE, PASSWORD)}", "AUTH LOGIN", "AUTH PLAIN"):
            exact(c, line, 538, "5.7.11 Encryption required for requested authentication mechanism")
        c.assert_nothing_pending()
    assert srv.log_events("auth") == []


def test_auth_plaintext_loopback_allows_plain_text_auth(make_server, pw_hash):
    srv, _ = start(make_server, pw_hash, overrides={"auth": {"plaintext_loopback": True}})
    with srv.connect() as c:
        c.greeting()
        kws = ehlo_keywords(c.ehlo())
        assert kws == ["PIPELINING", "SIZE 36700160", "8BITMIME", "BINARYMIME", "CHUNKING", "STARTTLS", "AUTH PLAIN LOGIN",
                       "DSN", "ENHANCEDSTATUSCODES", "SMTPUTF8"]
        exact(c, f"AUTH PLAIN {plain(ALICE, PASSWORD)}", 235, "2.7.0 Authentication successful")
        assert "AUTH PLAIN LOGIN" not in ehlo_keywords(c.ehlo())
        qid = c.transaction(ALICE, [BOB], MSG_NO_IDS)
        c.assert_nothing_pending()
    rp, dt, received, rest = split_delivered(delivered_one(srv, BOB))
    r = parse_received(received)
    assert r["proto"] == "ESMTPA" and r["id"] == qid
    assert b"version=TLS" not in received
    check_added_date_and_message_id(rest, MSG_NO_IDS, qid)


def test_starttls_forgets_a_plain_text_authentication(make_server, pw_hash):
    """RFC 3207 4.2: after STARTTLS the server discards what it learnt from the
    client in plain text -- that includes who authenticated.  (Refusing
    STARTTLS after AUTH with 503 would be compliant as well.)"""
    srv, (sub,) = start(make_server, pw_hash, [("submission", "starttls")],
                        overrides={"auth": {"plaintext_loopback": True}})
    with RawSMTP(sub) as c:
        c.greeting()
        c.ehlo()
        exact(c, f"AUTH PLAIN {plain(ALICE, PASSWORD)}", 235, "2.7.0 Authentication successful")
        c.send("STARTTLS\r\n")
        code, texts = c.reply()
        if code == 503:         # refusing is fine: we stay authenticated in plain text
            c.ok(f"MAIL FROM:<{ALICE}>", 250, "2.1.0")
            c.assert_nothing_pending()
            return
        assert (code, texts) == (220, ["2.0.0 Ready to start TLS"])
        c.sock = client_ctx().wrap_socket(c.sock, server_hostname=HOSTNAME)
        assert "AUTH PLAIN LOGIN" in ehlo_keywords(c.ehlo())
        exact(c, f"MAIL FROM:<{ALICE}>", 530, "5.7.0 Error: authentication required")
        exact(c, f"AUTH PLAIN {plain(BOB, PASSWORD)}", 235, "2.7.0 Authentication successful")
        exact(c, f"MAIL FROM:<{ALICE}>", 553,
              f"5.7.1 <{ALICE}>: Sender address rejected: not owned by the authenticated user")
        c.ok(f"MAIL FROM:<{BOB}>", 250, "2.1.0")
        c.assert_nothing_pending()


def test_no_auth_advertised_without_passwords(make_server, pw_hash):
    srv, _ = start(make_server, pw_hash, passwords=False)
    with srv.connect() as c:
        c.greeting()
        c.ehlo()
        starttls(c)
        kws = ehlo_keywords(c.ehlo())
        assert kws == ["PIPELINING", "SIZE 36700160", "8BITMIME", "BINARYMIME", "CHUNKING", "DSN", "ENHANCEDSTATUSCODES",
                       "SMTPUTF8"]
        c.assert_nothing_pending()


def test_auth_protocol_replies(make_server, pw_hash):
    srv, (sub,) = start(make_server, pw_hash, [("submission", "starttls")])
    with RawSMTP(sub) as c:
        c.greeting()
        c.ehlo()
        starttls(c)
        c.ehlo()
        c.ok("AUTH CRAM-MD5", 504, "5.5.4 ")
        # PLAIN without initial response: empty challenge, then "*" cancels
        assert c.ok("AUTH PLAIN", 334) == [""]
        c.ok("*", 501, "5.0.0 ")
        # LOGIN cancelled at the password prompt
        c.ok("AUTH LOGIN", 334)
        c.ok(b64(ALICE), 334)
        c.ok("*", 501, "5.0.0 ")
        c.ok("AUTH PLAIN !!!not-base64!!!", 501, "5.5.2 ")
        c.ok("AUTH PLAIN", 334)
        c.ok("%%%", 501, "5.5.2 ")
        # LOGIN: the two base64 prompts, then success
        assert c.ok("AUTH LOGIN", 334) == [b64("Username:")]
        assert c.ok(b64(ALICE), 334) == [b64("Password:")]
        exact(c, b64(PASSWORD), 235, "2.7.0 Authentication successful")
        # RFC 4954 4: any further AUTH is refused with 503
        c.send(f"AUTH PLAIN {plain(ALICE, PASSWORD)}\r\n")
        assert c.reply()[0] == 503
        c.assert_nothing_pending()
    assert [(a["mechanism"], a["result"]) for a in srv.log_events("auth")] == [("LOGIN", "ok")]


def test_auth_wrong_password_and_unknown_user_get_535(make_server, pw_hash):
    srv, (sub,) = start(make_server, pw_hash, [("submission", "starttls")],
                        overrides={"auth": {"max_failures": 5}})
    with RawSMTP(sub) as c:
        c.greeting()
        c.ehlo()
        starttls(c)
        c.ehlo()
        for user, pw in ((ALICE, "wrong"), ("nobody@example.test", PASSWORD),
                         (CARL, PASSWORD), (ALICE, PASSWORD.upper())):
            c.send(f"AUTH PLAIN {plain(user, pw)}\r\n")
            code, texts = c.reply()
            assert code == 535 and texts[-1].startswith("5.7.8 "), (user, code, texts)
        # still usable: the right password works after failures
        exact(c, f"AUTH PLAIN {plain(ALICE, PASSWORD)}", 235, "2.7.0 Authentication successful")
        c.assert_nothing_pending()
    assert [a["result"] for a in srv.log_events("auth")] == ["failed"] * 4 + ["ok"]


def test_auth_plain_authorization_identity(make_server, pw_hash):
    """PLAIN's authzid must not let bob's password log in as somebody else;
    an authzid equal to the user is fine."""
    srv, (sub,) = start(make_server, pw_hash, [("submission", "starttls")])
    with RawSMTP(sub) as c:
        c.greeting()
        c.ehlo()
        starttls(c)
        c.ehlo()
        c.ok(f"AUTH PLAIN {b64(f'{ALICE}{chr(0)}{BOB}{chr(0)}{PASSWORD}')}", 535, "5.7.8 ")
        c.ok(f"AUTH PLAIN {b64(f'{BOB}{chr(0)}{ALICE}{chr(0)}wrong')}", 535, "5.7.8 ")
        exact(c, f"MAIL FROM:<{ALICE}>", 530, "5.7.0 Error: authentication required")
        exact(c, f"AUTH PLAIN {b64(f'{BOB}{chr(0)}{BOB}{chr(0)}{PASSWORD}')}", 235,
              "2.7.0 Authentication successful")
        exact(c, f"MAIL FROM:<{ALICE}>", 553,
              f"5.7.1 <{ALICE}>: Sender address rejected: not owned by the authenticated user")
        c.ok(f"MAIL FROM:<{BOB}>", 250, "2.1.0")
        c.assert_nothing_pending()
    assert [(a["user"], a["result"]) for a in srv.log_events("auth")][-1] == (BOB, "ok")


def test_auth_too_many_failures_on_one_connection(make_server, pw_hash):
    srv, (sub,) = start(make_server, pw_hash, [("submission", "starttls")],
                        overrides={"auth": {"max_failures": 3}})
    with RawSMTP(sub) as c:
        c.greeting()
        c.ehlo()
        starttls(c)
        c.ehlo()
        for i in range(2):
            c.send(f"AUTH PLAIN {plain(ALICE, f'wrong{i}')}\r\n")
            c.expect(535, "5.7.8 ")
        c.ok("NOOP", 250)   # still open after two failures
        c.send(f"AUTH PLAIN {plain(ALICE, 'wrong2')}\r\n")
        c.expect(535, "5.7.8 ")
        texts = c.expect(421)
        assert texts[-1] == f"4.7.0 {HOSTNAME} Error: too many failed authentications", texts
        c.expect_eof()
    assert [a["result"] for a in srv.log_events("auth")] == ["failed"] * 3
    # the per-address limit (default 10) is not reached: a new connection may log in
    with RawSMTP(sub) as c:
        c.greeting()
        c.ehlo()
        starttls(c)
        c.ehlo()
        exact(c, f"AUTH PLAIN {plain(ALICE, PASSWORD)}", 235, "2.7.0 Authentication successful")
        c.assert_nothing_pending()


def test_auth_lockout_per_client_address(make_server, pw_hash):
    srv, (sub,) = start(make_server, pw_hash, [("submission", "starttls")],
                        overrides={"auth": {"max_failures": 5, "ip_max_failures": 2,
                                            "ip_window_s": 900}})

    def session(source):
        c = RawSMTP(sub, source=source)
        c.greeting()
        c.ehlo()
        starttls(c)
        c.ehlo()
        return c

    for i in range(2):   # two failures, on two connections
        with session("127.0.0.1") as c:
            c.send(f"AUTH PLAIN {plain(ALICE, f'wrong{i}')}\r\n")
            c.expect(535, "5.7.8 ")
            c.assert_nothing_pending()
    with session("127.0.0.1") as c:   # now even the right password is refused
        c.send(f"AUTH PLAIN {plain(ALICE, PASSWORD)}\r\n")
        texts = c.expect(421, "4.7.0 ")
        assert texts[-1].endswith(
            "too many failed authentications from your address, try again later"), texts
        c.expect_eof()
    with session("127.0.0.2") as c:   # another address is not affected
        exact(c, f"AUTH PLAIN {plain(ALICE, PASSWORD)}", 235, "2.7.0 Authentication successful")
        c.assert_nothing_pending()
    results = [(a["client"], a["result"]) for a in srv.log_events("auth")]
    assert results == [("127.0.0.1", "failed"), ("127.0.0.1", "failed"),
                       ("127.0.0.1", "locked"), ("127.0.0.2", "ok")], results


# --------------------------------------------------------------------------
# submission rules


def test_submission_requires_tls_then_auth_then_owned_sender(make_server, pw_hash):
    srv, (sub,) = start(make_server, pw_hash, [("submission", "starttls")])
    with RawSMTP(sub) as c:
        c.greeting()
        c.ehlo()
        exact(c, f"MAIL FROM:<{ALICE}>", 530, "5.7.0 Must issue a STARTTLS command first")
        starttls(c)
        c.ehlo()
        exact(c, f"MAIL FROM:<{ALICE}>", 530, "5.7.0 Error: authentication required")
        exact(c, f"AUTH PLAIN {plain(ALICE, PASSWORD)}", 235, "2.7.0 Authentication successful")
        exact(c, "MAIL FROM:<bob@example.test>", 553,
              "5.7.1 <bob@example.test>: Sender address rejected: not owned by the "
              "authenticated user")
        exact(c, "MAIL FROM:<mallory@far.test>", 553,
              "5.7.1 <mallory@far.test>: Sender address rejected: not owned by the "
              "authenticated user")
        for sender in ("Alice@EXAMPLE.test", "alias@other.TEST", "other@x.test", ""):
            c.ok(f"MAIL FROM:<{sender}>", 250, "2.1.0")
            c.ok("RSET", 250)
        # an authenticated user may relay to any domain
        c.ok(f"MAIL FROM:<{ALICE_ALIAS}>", 250, "2.1.0")
        c.ok("RCPT TO:<someone@far-away.test>", 250, "2.1.5")
        c.ok(f"RCPT TO:<{BOB}>", 250, "2.1.5")
        c.ok("RSET", 250)
        c.transaction(ALICE_ALIAS, [BOB], MSG_NO_IDS)
        c.assert_nothing_pending()
    rp, dt, received, rest = split_delivered(delivered_one(srv, BOB))
    assert rp == f"<{ALICE_ALIAS}>".encode()
    received_tls(received, "ESMTPSA")
    srv.wait_queue_empty()
    assert len(srv.all_delivered()) == 1


def test_submission_any_sender(make_server, pw_hash):
    srv, (sub,) = start(make_server, pw_hash, [("submission", "starttls")],
                        overrides={"auth": {"any_sender": True}})
    with RawSMTP(sub) as c:
        c.greeting()
        c.ehlo()
        starttls(c)
        c.ehlo()
        exact(c, f"AUTH PLAIN {plain(BOB, PASSWORD)}", 235, "2.7.0 Authentication successful")
        qid = c.transaction("someone-else@far.test", [ALICE], MSG_NO_IDS)
        c.assert_nothing_pending()
    rp, dt, received, rest = split_delivered(delivered_one(srv, ALICE))
    assert rp == b"<someone-else@far.test>"
    r, _ = received_tls(received, "ESMTPSA")
    assert r["id"] == qid


# --------------------------------------------------------------------------
# 6. a ClientHello on a plain-text port; 9. plain text on an implicit port


def test_tls_client_hello_on_starttls_port_fails_but_server_serves(make_server, pw_hash):
    srv, _ = start(make_server, pw_hash)
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
    with pytest.raises((ssl.SSLError, OSError)):
        s = client_ctx().wrap_socket(raw, server_hostname=HOSTNAME)
        s.close()
    raw.close()
    with srv.connect() as c:
        assert c.reply() == (220, [f"{HOSTNAME} ESMTP postern"])
        c.ehlo()
        starttls(c)
        c.ehlo()
        c.transaction("x@remote.test", [BOB], MSG_NO_IDS)
        c.assert_nothing_pending()
    delivered_one(srv, BOB)
    assert srv.alive()


def test_implicit_listener_sends_no_plaintext_greeting(make_server, pw_hash):
    srv, (imp,) = start(make_server, pw_hash, [("submission", "implicit")])
    with socket.create_connection(("127.0.0.1", imp), timeout=10) as s:
        s.settimeout(1.0)
        got = b""
        try:
            got = s.recv(4096)
        except socket.timeout:
            pass
        assert got == b"", f"plain-text bytes on an implicit-TLS port: {got!r}"
        # a plain-text command is not a ClientHello: the server must not answer
        # it as SMTP, and must end the connection
        s.settimeout(10)
        try:
            s.sendall(b"EHLO plain.test\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        assert b"220" not in data and b"250" not in data, data
    wait_until(lambda: any(e["result"] == "failed" for e in srv.log_events("tls")), 10,
               "the failed handshake in the log")
    # others are served: TLS from the first byte
    with implicit(imp) as c:
        assert c.reply() == (220, [f"{HOSTNAME} ESMTP postern"])
        assert c.sock.version() == "TLSv1.3"
        assert "STARTTLS" not in ehlo_keywords(c.ehlo())
        exact(c, "STARTTLS", 503, "5.5.1 Error: TLS already active")
        c.assert_nothing_pending()


# --------------------------------------------------------------------------
# 7. the self-signed default certificate; 8. a configured one and SIGHUP


def test_self_signed_certificate_is_created_once_and_reused(make_server, pw_hash):
    srv, (imp,) = start(make_server, pw_hash, [("submission", "implicit")], overrides=SELF_SIGNED)
    crt, key = srv.spool / "tls" / "tls-selfsigned.crt", srv.spool / "tls" / "tls-selfsigned.key"
    assert crt.is_file() and key.is_file()
    ev = srv.log_events("tls_certificate")
    assert [(e.get("self_signed"), e.get("created")) for e in ev if "created" in e] == \
        [("yes", "yes")], ev
    file_der = pem_der(crt)
    assert served_cert_der(srv.port) == file_der
    assert served_cert_der(imp, "implicit") == file_der
    srv.restart()
    ev = [e for e in srv.log_events("tls_certificate") if "created" in e]
    assert [(e["self_signed"], e["created"]) for e in ev] == [("yes", "yes"), ("yes", "no")], ev
    assert pem_der(crt) == file_der
    assert served_cert_der(srv.port) == file_der
    assert served_cert_der(imp, "implicit") == file_der


def make_cert(d, cn):
    d.mkdir(parents=True, exist_ok=True)
    key, crt = d / "k.pem", d / "c.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj",
                    f"/CN={cn}", "-days", "2", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True, timeout=60)
    return crt, key


def reload_events(srv):
    return srv.log_events("reload")


@needs["openssl"]
def test_configured_certificate_and_sighup_reload(make_server, pw_hash, tmp_path):
    crt, key = make_cert(tmp_path / "live", "configured.test")
    first = pem_der(crt)
    srv, (imp,) = start(make_server, pw_hash, [("submission", "implicit")],
                        overrides={"tls": {"certificate": str(crt), "private_key": str(key)}})
    assert not (srv.spool / "tls" / "tls-selfsigned.crt").exists()
    out = s_client_out(s_client(srv.port))
    assert re.search(r"^subject=CN ?= ?configured\.test$", out, re.M), out
    assert served_cert_der(srv.port) == first
    assert served_cert_der(imp, "implicit") == first

    # renew: overwrite both files, SIGHUP
    new_crt, new_key = make_cert(tmp_path / "new", "renewed.test")
    key.write_bytes(new_key.read_bytes())
    crt.write_bytes(new_crt.read_bytes())
    renewed = pem_der(crt)
    srv.proc.send_signal(signal.SIGHUP)
    ev = wait_until(lambda: reload_events(srv), 10, "event=reload after SIGHUP")
    assert [e["result"] for e in ev] == ["ok"], ev
    out = s_client_out(s_client(srv.port))
    assert re.search(r"^subject=CN ?= ?renewed\.test$", out, re.M), out
    assert served_cert_der(srv.port) == renewed
    assert served_cert_der(imp, "implicit") == renewed

    # a broken certificate file: logged, the renewed one stays in use
    crt.write_bytes(b"this is not a certificate\n")
    srv.proc.send_signal(signal.SIGHUP)
    ev = wait_until(lambda: len(reload_events(srv)) >= 2 and reload_events(srv), 10,
                    "a second event=reload")
    assert [e["result"] for e in ev] == ["ok", "failed"], ev
    assert srv.alive()
    assert served_cert_der(srv.port) == renewed
    assert served_cert_der(imp, "implicit") == renewed

    # a valid certificate that does not match the key: refused the same way
    other_crt, _ = make_cert(tmp_path / "other", "mismatch.test")
    crt.write_bytes(other_crt.read_bytes())
    srv.proc.send_signal(signal.SIGHUP)
    ev = wait_until(lambda: len(reload_events(srv)) >= 3 and reload_events(srv), 10,
                    "a third event=reload")
    assert [e["result"] for e in ev] == ["ok", "failed", "failed"], ev
    assert served_cert_der(srv.port) == renewed
    assert served_cert_der(imp, "implicit") == renewed
    # and mail still flows over TLS with AUTH
    s = smtplib.SMTP_SSL("127.0.0.1", imp, local_hostname="client.test", timeout=TIMEOUT,
                         context=client_ctx())
    try:
        s.login(ALICE, PASSWORD)
        assert s.sendmail(ALICE, [BOB], MSG_NO_IDS) == {}
    finally:
        s.quit()
    delivered_one(srv, BOB)


# --------------------------------------------------------------------------
# check-config refuses plain-text passwords


def test_check_config_refuses_plaintext_password(make_server, tmp_path):
    srv = make_server({"users": [{"address": ALICE, "password": "Plain-Text-Pa55"}]}, start=False)
    p = subprocess.run([POSTERN_BIN, "check-config", "--config", str(srv.config_path)],
                       capture_output=True, text=True, timeout=TIMEOUT)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "users[0].password" in p.stderr, p.stderr
    assert "Plain-Text-Pa55" not in p.stdout + p.stderr
