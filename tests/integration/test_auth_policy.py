"""SMTP AUTH (RFC 4954) and the sending policy that depends on it.

- `postern hash-password` / `check-config`: hashes only, plain text refused
  without being echoed.
- EHLO advertises AUTH only where it may be used; the AUTH exchange (PLAIN,
  LOGIN, 334 prompts, cancel, bad base64, malformed responses, sequencing,
  over-long lines) with its exact replies.
- Failed logins: the per-connection limit (421 and close), the per-address
  lockout, and nothing secret in the log.
- Submission listeners (RFC 6409): AUTH before MAIL, sender ownership,
  Date:/Message-ID: completion.
- smtp listeners: relaying for authenticated clients only, the address tricks
  refused with or without AUTH, ESMTPA / ESMTPSA in Received:.

Everything runs on loopback: AUTH without TLS needs auth.plaintext_loopback;
mail for remote domains either stops at RCPT (a 250 there is the relay
decision) or goes to an aiosmtpd sink configured as relay.smarthost (no DNS).
"""

import base64
import email.utils
import json
import re
import smtplib
import ssl
import subprocess

import pytest

from conftest import (BASE_CONFIG, HOSTNAME, POSTERN_BIN, RawSMTP, check_delivered, deep_merge,
                      dot_stuff, free_port, make_message, port_is_bound, queue_id_of,
                      split_delivered, parse_received, wait_for_files, wait_until)
from relay_helpers import pick_remote_port

ALICE, BOB, CARL = "alice@example.test", "bob@example.test", "carl@users.test"
# Distinctive strings, so a leak into the log cannot be a coincidence.
ALICE_PW = "Alice-Pw.7f3e9 space"  # ASCII: smtplib encodes AUTH as ASCII
BOB_PW = "b0b-S3cret-91c2"
WRONG_PW = "Wr0ng-Guess-5d8a"
ALICE_EXTRA = ["al@other.test", "Alice.Smith@Users.Test"]

LOGIN_USER_PROMPT = "VXNlcm5hbWU6"      # base64("Username:")
LOGIN_PASS_PROMPT = "UGFzc3dvcmQ6"      # base64("Password:")

AUTH_OK = "2.7.0 Authentication successful"
AUTH_FAILED = "5.7.8 Error: authentication failed"
TOO_MANY = f"4.7.0 {HOSTNAME} Error: too many failed authentications"
LOCKED = (f"4.7.0 {HOSTNAME} Error: too many failed authentications from your address, "
          "try again later")


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def plain(user, password, authzid=""):
    return b64(f"{authzid}\0{user}\0{password}".encode())


def not_owned(addr):
    return f"5.7.1 <{addr}>: Sender address rejected: not owned by the authenticated user"


def relay_denied(addr):
    return f"5.7.1 <{addr}>: Relay access denied"


def hash_password(password_line):
    r = subprocess.run([POSTERN_BIN, "hash-password"], input=password_line.encode(),
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def make_cert(d, cn):
    crt, key = d / f"{cn}.crt", d / f"{cn}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
                    "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True, timeout=60)
    return crt, key


@pytest.fixture(scope="module")
def hashes(tmp_path_factory):
    """The users' password hashes from `postern hash-password`, and (key
    "tls") one server certificate for every config of this module: a server
    then starts without making its own self-signed certificate."""
    crt, key = make_cert(tmp_path_factory.mktemp("postern-cert"), HOSTNAME)
    return {ALICE: hash_password(ALICE_PW + "\n").strip(),
            BOB: hash_password(BOB_PW + "\n").strip(),
            "tls": {"certificate": str(crt), "private_key": str(key)}}


def auth_config(hashes, **extra):
    """Overrides: alice and bob can log in (alice owns two more addresses),
    carl cannot; AUTH without TLS from loopback; no relay_networks."""
    base = {
        "users": [
            {"address": ALICE, "password": hashes[ALICE], "addresses": ALICE_EXTRA},
            {"address": BOB, "password": hashes[BOB]},
            {"address": CARL},
        ],
        "relay_networks": [],
        "auth": {"plaintext_loopback": True, "failure_delay_ms": 10},
        "tls": hashes["tls"],
    }
    return deep_merge(base, extra)


def start_listeners(make_server, overrides, *listeners):
    """A server whose listeners are given: the first one gets server.port,
    the others fresh ports. Returns (server, [port of each listener])."""
    srv = make_server(overrides, start=False)
    ports = [srv.port] + [free_port() for _ in listeners[1:]]
    srv.config["listeners"] = [{"address": f"127.0.0.1:{p}", **l}
                               for p, l in zip(ports, listeners)]
    srv.config_path.write_text(json.dumps(srv.config, indent=2, ensure_ascii=False))
    srv.start()
    return srv, ports


def submission_server(make_server, overrides, tls=None):
    lst = {"mode": "submission"}
    if tls is not None:
        lst["tls"] = tls
    return start_listeners(make_server, overrides, lst)[0]


def connect(port, **kw):
    c = RawSMTP(port, **kw)
    c.greeting()
    return c


def login(port, user=ALICE, password=ALICE_PW, **kw):
    """A RawSMTP session after EHLO and a successful AUTH PLAIN."""
    c = connect(port, **kw)
    try:
        c.ehlo()
        c.ok(f"AUTH PLAIN {plain(user, password)}", 235, AUTH_OK)
    except BaseException:
        c.close()
        raise
    return c


def exact(c, line, code, text):
    """Send line; the reply must be exactly one line `code text`."""
    if isinstance(line, str):
        line = line.encode()
    c.send(line + b"\r\n")
    got = c.reply()
    assert got == (code, [text]), f"after {line[:80]!r}: expected {code} {text!r}, got {got}"


def ehlo_keywords(c):
    texts = c.ehlo()
    assert texts[0] == HOSTNAME, texts
    return texts[1:]


@pytest.fixture(scope="module")
def sink_cert(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("sinkcert"), "smarthost.test")


class SmarthostSink:
    """aiosmtpd offering STARTTLS (postern insists on TLS to a smarthost) on
    127.0.0.4, recording every message."""

    def __init__(self, cert):
        from aiosmtpd.controller import Controller
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        self.host = "127.0.0.4"
        self.port = pick_remote_port([self.host])
        self.messages = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append({
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "tls": session.ssl is not None,
                    "data": bytes(envelope.original_content or envelope.content)})
                return "250 2.0.0 Ok"

        self.controller = Controller(Handler(), hostname=self.host, port=self.port,
                                     server_hostname="smarthost.test", ready_timeout=10,
                                     decode_data=False, tls_context=ctx, require_starttls=False)
        self.controller.start()

    @property
    def address(self):
        return f"{self.host}:{self.port}"

    def stop(self):
        try:
            self.controller.stop()
        except Exception:
            pass

    def wait_messages(self, n, timeout=20):
        wait_until(lambda: len(self.messages) >= n, timeout, f"{n} message(s) at the smarthost")
        return list(self.messages)


def unverified_tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def auth_events(server, **match):
    return [e for e in server.log_events("auth")
            if all(e.get(k, "").strip('"') == v for k, v in match.items())]


def assert_no_secrets(server, *passwords):
    text = server.log() + server.out_path.read_text(errors="replace")
    for pw in passwords:
        assert pw not in text, f"password {pw!r} appears in the log"
        for user in (ALICE, BOB, ALICE.upper(), "nobody@example.test"):
            for authz in ("", user):
                assert plain(user, pw, authz) not in text
        assert b64(pw) not in text, f"base64 of password {pw!r} appears in the log"


# ==========================================================================
# hash-password and check-config


def test_hash_password_prints_a_salted_pbkdf2_hash():
    h1 = hash_password("same password\n")
    h2 = hash_password("same password\n")
    pat = re.compile(r"^\$pbkdf2-sha256\$210000\$[A-Za-z0-9+/]+=*\$[A-Za-z0-9+/]+=*\n$")
    assert pat.match(h1), h1
    assert pat.match(h2), h2
    assert h1 != h2, "two hashes of one password must differ (random salt)"
    assert "same password" not in h1


def _cli_config(tmp_path, password):
    port = free_port()
    cfg = deep_merge(BASE_CONFIG, {
        "spool_dir": str(tmp_path / "spool"), "mail_root": str(tmp_path / "mail"),
        "listeners": [{"address": f"127.0.0.1:{port}", "mode": "submission"}],
        "users": [{"address": ALICE, "password": password}, {"address": BOB}],
    })
    p = tmp_path / "postern.json"
    p.write_text(json.dumps(cfg, indent=2, ensure_ascii=False))
    return p, port


def test_check_config_refuses_a_plain_text_password_without_echoing_it(tmp_path):
    secret = "hunter2-Plain-Text-4b7"
    p, port = _cli_config(tmp_path, secret)
    r = subprocess.run([POSTERN_BIN, "check-config", "--config", str(p)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "users[0].password" in r.stderr, r.stderr
    assert str(p) in r.stderr, r.stderr
    assert secret not in r.stdout + r.stderr
    # serve refuses it the same way and binds nothing
    r = subprocess.run([POSTERN_BIN, "serve", "--config", str(p)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "users[0].password" in r.stderr and secret not in r.stdout + r.stderr
    assert not port_is_bound(port)


def test_check_config_accepts_a_hash(tmp_path, hashes):
    p, _ = _cli_config(tmp_path, hashes[ALICE])
    r = subprocess.run([POSTERN_BIN, "check-config", "--config", str(p)],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["listeners"][0]["mode"] == "submission"
    assert ALICE_PW not in r.stdout + r.stderr


def test_hash_password_output_verifies(make_server):
    """A hash made by the CLI (password line with a trailing newline, as
    `echo pw | postern hash-password` gives) admits that password only; a
    non-ASCII password is compared as its UTF-8 octets."""
    pw = "Fresh \u2713 p\u00e4ss-e21"
    h = hash_password(pw + "\n").strip()
    srv = make_server({"users": [{"address": ALICE, "password": h}],
                       "relay_networks": [], "auth": {"plaintext_loopback": True,
                                                      "failure_delay_ms": 10}})
    with connect(srv.port) as c:
        c.ehlo()
        exact(c, f"AUTH PLAIN {plain(ALICE, pw + 'x')}", 535, AUTH_FAILED)
        exact(c, f"AUTH PLAIN {plain(ALICE, pw + chr(10))}", 535, AUTH_FAILED)
        exact(c, f"AUTH PLAIN {plain(ALICE, pw)}", 235, AUTH_OK)
        c.assert_nothing_pending()
    with connect(srv.port) as c:
        c.ehlo()
        exact(c, "AUTH LOGIN", 334, LOGIN_USER_PROMPT)
        exact(c, b64(ALICE), 334, LOGIN_PASS_PROMPT)
        exact(c, b64(pw), 235, AUTH_OK)
        c.assert_nothing_pending()
    # an ASCII password through smtplib
    h2 = hash_password("plain-ascii-77\n").strip()
    srv2 = make_server({"users": [{"address": BOB, "password": h2}],
                        "relay_networks": [], "auth": {"plaintext_loopback": True,
                                                       "failure_delay_ms": 10}})
    s = srv2.smtplib()
    try:
        s.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError) as ei:
            s.login(BOB, "plain-ascii-78")
        assert ei.value.smtp_code == 535
        assert ei.value.smtp_error == AUTH_FAILED.encode()
        assert s.login(BOB, "plain-ascii-77") == (235, AUTH_OK.encode())
    finally:
        s.quit()
    assert_no_secrets(srv, pw, pw + "x")
    assert_no_secrets(srv2, "plain-ascii-77", "plain-ascii-78")


# ==========================================================================
# EHLO advertisement and when AUTH is available


def test_ehlo_advertises_auth_and_hides_it_after_login(make_server, hashes):
    srv = make_server(auth_config(hashes))
    with connect(srv.port) as c:
        assert ehlo_keywords(c) == ["PIPELINING", "SIZE 36700160", "8BITMIME", "BINARYMIME", "CHUNKING", "STARTTLS",
                                    "AUTH PLAIN LOGIN", "DSN", "ENHANCEDSTATUSCODES", "SMTPUTF8"]
        c.ok(f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 235, AUTH_OK)
        assert ehlo_keywords(c) == ["PIPELINING", "SIZE 36700160", "8BITMIME", "BINARYMIME", "CHUNKING", "STARTTLS",
                                    "DSN", "ENHANCEDSTATUSCODES", "SMTPUTF8"]
        # a new EHLO does not forget the login
        exact(c, f"AUTH PLAIN {plain(BOB, BOB_PW)}", 503, "5.5.1 Error: already authenticated")
        c.assert_nothing_pending()
    # smtplib sees the same
    s = srv.smtplib()
    try:
        s.ehlo()
        assert s.has_extn("auth") and s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
    finally:
        s.quit()


def test_no_auth_when_no_user_has_a_password(make_server):
    srv = make_server({"relay_networks": [], "auth": {"plaintext_loopback": True}})
    with connect(srv.port) as c:
        kws = ehlo_keywords(c)
        assert not any(k.upper().startswith("AUTH") for k in kws), kws
        exact(c, f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 500, "5.5.1 Error: command not recognized")
        exact(c, "AUTH LOGIN", 500, "5.5.1 Error: command not recognized")
        c.ok("NOOP", 250, "2.0.0")
        c.assert_nothing_pending()
    assert srv.log_events("auth") == []


def test_auth_needs_tls_without_plaintext_loopback(make_server, hashes):
    """Without auth.plaintext_loopback AUTH is neither offered nor accepted in
    plain text (538); inside STARTTLS it is, and mail says ESMTPSA."""
    srv = make_server(auth_config(hashes, auth={"plaintext_loopback": False}))
    with connect(srv.port) as c:
        kws = ehlo_keywords(c)
        assert "STARTTLS" in kws and "AUTH PLAIN LOGIN" not in kws, kws
        for line in (f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", "AUTH LOGIN", "AUTH PLAIN"):
            exact(c, line, 538, "5.7.11 Encryption required for requested authentication mechanism")
        c.ok("NOOP", 250, "2.0.0")
        c.assert_nothing_pending()
    assert srv.log_events("auth") == [], "nothing may be checked outside TLS"

    msg = make_message("over tls with auth")
    s = srv.smtplib()
    try:
        s.ehlo()
        assert not s.has_extn("auth")
        s.starttls(context=unverified_tls())
        s.ehlo()
        assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        assert not s.has_extn("starttls")
        assert s.login(ALICE, ALICE_PW) == (235, AUTH_OK.encode())
        assert s.sendmail(ALICE, [BOB], msg) == {}
    finally:
        s.quit()
    f = wait_for_files(srv.new(BOB), 1)
    check_delivered(f[0].read_bytes(), sender=ALICE, recipient=BOB, body=msg, proto="ESMTPSA")
    assert auth_events(srv, user=ALICE, result="ok")


# ==========================================================================
# the AUTH exchange


def test_auth_plain_initial_response(make_server, hashes):
    srv = make_server(auth_config(hashes))
    with connect(srv.port) as c:
        c.ehlo()
        exact(c, f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 235, AUTH_OK)
        c.assert_nothing_pending()
    ev = auth_events(srv, user=ALICE)
    assert len(ev) == 1 and ev[0]["result"] == "ok" and ev[0]["mechanism"] == "PLAIN", ev


def test_auth_plain_without_initial_response(make_server, hashes):
    srv = make_server(auth_config(hashes))
    with connect(srv.port) as c:
        c.ehlo()
        c.send("AUTH PLAIN\r\n")
        # RFC 4954 4: "334" SP and an empty challenge
        assert c._readline(10) == b"334 "
        exact(c, plain(BOB, BOB_PW), 235, AUTH_OK)
        c.assert_nothing_pending()
    assert auth_events(srv, user=BOB, result="ok", mechanism="PLAIN")


def test_auth_login_two_prompts(make_server, hashes):
    srv = make_server(auth_config(hashes))
    with connect(srv.port) as c:
        c.ehlo()
        exact(c, "AUTH LOGIN", 334, LOGIN_USER_PROMPT)
        exact(c, b64(ALICE), 334, LOGIN_PASS_PROMPT)
        exact(c, b64(ALICE_PW), 235, AUTH_OK)
        c.assert_nothing_pending()
    assert auth_events(srv, user=ALICE, result="ok", mechanism="LOGIN")


def test_auth_login_with_initial_user_name(make_server, hashes):
    srv = make_server(auth_config(hashes))
    with connect(srv.port) as c:
        c.ehlo()
        exact(c, f"AUTH LOGIN {b64(BOB)}", 334, LOGIN_PASS_PROMPT)
        exact(c, b64(BOB_PW), 235, AUTH_OK)
        c.assert_nothing_pending()
    # and the wrong password the same way
    with connect(srv.port) as c:
        c.ehlo()
        exact(c, f"auth login {b64(BOB)}", 334, LOGIN_PASS_PROMPT)
        exact(c, b64(WRONG_PW), 535, AUTH_FAILED)
        c.assert_nothing_pending()
    assert auth_events(srv, user=BOB, result="ok", mechanism="LOGIN")
    assert auth_events(srv, user=BOB, result="failed", mechanism="LOGIN")


def test_login_name_is_case_insensitive(make_server, hashes):
    srv = make_server(auth_config(hashes))
    s = srv.smtplib()
    try:
        s.ehlo()
        assert s.login("ALICE@Example.Test", ALICE_PW) == (235, AUTH_OK.encode())
        # the session belongs to alice: her own address is hers, bob's is not
        assert s.mail(ALICE) == (250, b"2.1.0 Ok")
        s.rset()
        assert s.mail(BOB) == (553, not_owned(BOB).encode())
    finally:
        s.quit()
    with connect(srv.port) as c:
        c.ehlo()
        exact(c, "AUTH LOGIN", 334, LOGIN_USER_PROMPT)
        exact(c, b64("bOb@EXAMPLE.test"), 334, LOGIN_PASS_PROMPT)
        exact(c, b64(BOB_PW), 235, AUTH_OK)
        c.assert_nothing_pending()
    # the password is not case-insensitive
    with connect(srv.port) as c:
        c.ehlo()
        exact(c, f"AUTH PLAIN {plain(ALICE, ALICE_PW.upper())}", 535, AUTH_FAILED)
        c.assert_nothing_pending()
    assert auth_events(srv, user=ALICE, result="ok")  # logged lower-cased
    assert auth_events(srv, user=BOB, result="ok")


def test_wrong_password_and_unknown_user_smtplib(make_server, hashes):
    srv = make_server(auth_config(hashes, auth={"max_failures": 10}))
    s = srv.smtplib()
    try:
        s.ehlo()
        for user, pw in ((ALICE, WRONG_PW), ("nobody@example.test", ALICE_PW),
                         (CARL, WRONG_PW), (ALICE, BOB_PW)):
            with pytest.raises(smtplib.SMTPAuthenticationError) as ei:
                s.login(user, pw)
            assert ei.value.smtp_code == 535, (user, ei.value)
            assert ei.value.smtp_error == AUTH_FAILED.encode()
        # still not authenticated: relaying is refused
        assert s.mail(ALICE) == (250, b"2.1.0 Ok")
        assert s.rcpt("x@other.test") == (554, relay_denied("x@other.test").encode())
        s.rset()
        assert s.login(ALICE, ALICE_PW) == (235, AUTH_OK.encode())
    finally:
        s.quit()
    failed = auth_events(srv, result="failed")
    assert {e["user"] for e in failed} == {ALICE, "nobody@example.test", CARL}
    assert_no_secrets(srv, ALICE_PW, BOB_PW, WRONG_PW)


@pytest.mark.parametrize("start", ["AUTH LOGIN", f"AUTH LOGIN {b64(ALICE)}", "AUTH PLAIN"])
def test_auth_cancelled(make_server, hashes, start):
    srv = make_server(auth_config(hashes))
    with connect(srv.port) as c:
        c.ehlo()
        c.ok(start, 334)
        exact(c, "*", 501, "5.0.0 Authentication cancelled")
        # the session is back at the command level and can log in afterwards
        exact(c, "NOOP", 250, "2.0.0 Ok")
        exact(c, f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 235, AUTH_OK)
        c.assert_nothing_pending()
    assert auth_events(srv, result="failed") == [], "a cancel is not a failed login"


def test_auth_invalid_base64(make_server, hashes):
    srv = make_server(auth_config(hashes))
    bad = "5.5.2 Error: cannot decode response (invalid base64)"
    with connect(srv.port) as c:
        c.ehlo()
        exact(c, "AUTH PLAIN !!notbase64!!", 501, bad)
        exact(c, "AUTH LOGIN", 334, LOGIN_USER_PROMPT)
        exact(c, "YWxp%2Ug==", 501, bad)
        exact(c, "AUTH LOGIN", 334, LOGIN_USER_PROMPT)
        exact(c, b64(ALICE), 334, LOGIN_PASS_PROMPT)
        exact(c, "Zm9v=YmFy", 501, bad)
        exact(c, "NOOP", 250, "2.0.0 Ok")
        exact(c, f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 235, AUTH_OK)
        c.assert_nothing_pending()
    assert auth_events(srv, result="failed") == []


def test_auth_plain_malformed_response(make_server, hashes):
    srv = make_server(auth_config(hashes))
    malformed = "5.5.2 Error: malformed authentication response"
    with connect(srv.port) as c:
        c.ehlo()
        # decodes, but has no NULs
        exact(c, f"AUTH PLAIN {b64(ALICE + ALICE_PW)}", 501, malformed)
        # only one NUL
        exact(c, f"AUTH PLAIN {b64(ALICE + chr(0) + ALICE_PW)}", 501, malformed)
        exact(c, "AUTH PLAIN", 334, "")
        exact(c, b64("just-some-text"), 501, malformed)
        exact(c, "NOOP", 250, "2.0.0 Ok")
        exact(c, f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 235, AUTH_OK)
        c.assert_nothing_pending()
    assert auth_events(srv, result="failed") == []
    assert_no_secrets(srv, ALICE_PW)


def test_auth_unknown_mechanism(make_server, hashes):
    srv = make_server(auth_config(hashes))
    with connect(srv.port) as c:
        c.ehlo()
        for mech in ("CRAM-MD5", "XOAUTH2 dG9rZW4=", "GSSAPI", "SCRAM-SHA-256"):
            exact(c, f"AUTH {mech}", 504, "5.5.4 Error: unsupported authentication mechanism")
        exact(c, f"auth plain {plain(ALICE, ALICE_PW)}", 235, AUTH_OK)
        c.assert_nothing_pending()


def test_auth_before_ehlo_and_after_helo(make_server, hashes):
    srv = make_server(auth_config(hashes))
    with connect(srv.port) as c:
        exact(c, f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 503, "5.5.1 Error: send EHLO first")
        c.ok("HELO client.test", 250)
        exact(c, f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 503, "5.5.1 Error: send EHLO first")
        exact(c, "AUTH LOGIN", 503, "5.5.1 Error: send EHLO first")
        c.ehlo()
        exact(c, f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 235, AUTH_OK)
        c.assert_nothing_pending()
    assert len(auth_events(srv)) == 1


def test_second_auth_after_success(make_server, hashes):
    srv = make_server(auth_config(hashes))
    with login(srv.port) as c:
        for line in (f"AUTH PLAIN {plain(BOB, BOB_PW)}", f"AUTH PLAIN {plain(ALICE, ALICE_PW)}",
                     "AUTH LOGIN", f"AUTH PLAIN {plain(BOB, WRONG_PW)}"):
            exact(c, line, 503, "5.5.1 Error: already authenticated")
        # still alice
        exact(c, f"MAIL FROM:<{BOB}>", 553, not_owned(BOB))
        exact(c, f"MAIL FROM:<{ALICE}>", 250, "2.1.0 Ok")
        c.assert_nothing_pending()
    assert len(auth_events(srv)) == 1


def test_auth_during_mail_transaction(make_server, hashes):
    srv = make_server(auth_config(hashes))
    with connect(srv.port) as c:
        c.ehlo()
        c.ok("MAIL FROM:<someone@remote.test>", 250, "2.1.0")
        c.ok(f"RCPT TO:<{BOB}>", 250, "2.1.5")
        c.ok(f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 503, "5.5.1")
        # the transaction is intact and still unauthenticated
        exact(c, "RCPT TO:<x@other.test>", 554, relay_denied("x@other.test"))
        c.ok("RSET", 250, "2.0.0")
        exact(c, f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 235, AUTH_OK)
        c.assert_nothing_pending()
    assert len(auth_events(srv)) == 1


def test_plain_authzid(make_server, hashes):
    srv = make_server(auth_config(hashes))
    with connect(srv.port) as c:
        c.ehlo()
        # alice's credentials, asking to act as bob
        exact(c, f"AUTH PLAIN {plain(ALICE, ALICE_PW, authzid=BOB)}", 535, AUTH_FAILED)
        # acting as herself is fine
        exact(c, f"AUTH PLAIN {plain(ALICE, ALICE_PW, authzid=ALICE)}", 235, AUTH_OK)
        exact(c, f"MAIL FROM:<{BOB}>", 553, not_owned(BOB))
        c.assert_nothing_pending()


def test_ten_megabyte_auth_lines(make_server, hashes):
    srv = make_server(auth_config(hashes))
    huge = "A" * (10 * 1024 * 1024)
    with connect(srv.port) as c:
        c.ehlo()
        exact(c, f"AUTH PLAIN {huge}", 500, "5.5.6 Error: line too long")
        exact(c, "NOOP", 250, "2.0.0 Ok")
        # the same as the response to a 334 prompt
        exact(c, "AUTH PLAIN", 334, "")
        exact(c, huge, 500, "5.5.6 Error: line too long")
        exact(c, "NOOP", 250, "2.0.0 Ok")
        exact(c, "AUTH LOGIN", 334, LOGIN_USER_PROMPT)
        exact(c, b64(ALICE), 334, LOGIN_PASS_PROMPT)
        exact(c, huge, 500, "5.5.6 Error: line too long")
        exact(c, "NOOP", 250, "2.0.0 Ok")
        exact(c, f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 235, AUTH_OK)
        c.assert_nothing_pending()
    assert auth_events(srv, result="failed") == []
    assert srv.alive()


def test_login_is_forgotten_after_starttls(make_server, hashes):
    srv = make_server(auth_config(hashes))
    s = srv.smtplib()
    try:
        s.ehlo()
        assert s.login(ALICE, ALICE_PW) == (235, AUTH_OK.encode())
        s.starttls(context=unverified_tls())
        s.ehlo()
        assert s.has_extn("auth"), "AUTH must be offered again inside TLS"
        assert s.mail("ceo@example.test") == (250, b"2.1.0 Ok")
        assert s.rcpt("x@other.test") == (554, relay_denied("x@other.test").encode())
    finally:
        s.quit()


def test_hostile_user_names_cannot_forge_log_lines(make_server, hashes):
    srv = make_server(auth_config(hashes, auth={"max_failures": 10}))
    forged = f"evil\r\n2026-01-01T00:00:00.000Z postern[1]: severity=info event=auth user={ALICE} result=ok"
    with connect(srv.port) as c:
        c.ehlo()
        exact(c, f"AUTH PLAIN {plain(forged, ALICE_PW)}", 535, AUTH_FAILED)
        exact(c, f"AUTH PLAIN {plain('a b=c result=ok', ALICE_PW)}", 535, AUTH_FAILED)
        exact(c, "AUTH LOGIN", 334, LOGIN_USER_PROMPT)
        exact(c, b64(forged), 334, LOGIN_PASS_PROMPT)
        exact(c, b64(ALICE_PW), 535, AUTH_FAILED)
        c.assert_nothing_pending()
    lines = srv.log().splitlines()
    assert all(l.startswith("---- start") or re.match(r"^\d{4}-\d\d-\d\dT", l) for l in lines)
    assert not [l for l in lines if l.startswith("2026-01-01T00:00:00.000Z")]
    assert auth_events(srv, result="ok") == []
    failed = auth_events(srv, result="failed")
    assert len(failed) == 3, failed
    assert all(e["client"] == "127.0.0.1" and e["session"] for e in failed)


# ==========================================================================
# failed logins: per connection, per address; the log


def test_too_many_failures_on_one_connection(make_server, hashes):
    srv = make_server(auth_config(hashes, auth={"max_failures": 3}))
    with connect(srv.port) as c:
        c.ehlo()
        exact(c, f"AUTH PLAIN {plain(ALICE, WRONG_PW)}", 535, AUTH_FAILED)
        exact(c, "AUTH LOGIN", 334, LOGIN_USER_PROMPT)
        exact(c, b64(BOB), 334, LOGIN_PASS_PROMPT)
        exact(c, b64(WRONG_PW), 535, AUTH_FAILED)
        c.send(f"AUTH PLAIN {plain(ALICE, BOB_PW)}\r\n")
        assert c.reply() == (535, [AUTH_FAILED])
        assert c.reply() == (421, [TOO_MANY])
        c.expect_eof()
    failed = auth_events(srv, result="failed")
    assert [e["user"] for e in failed] == [ALICE, BOB, ALICE]
    assert [e["failures"] for e in failed] == ["1", "2", "3"]
    # a new connection may log in (3 failures are below ip_max_failures=10)
    with login(srv.port) as c:
        c.assert_nothing_pending()
    assert_no_secrets(srv, ALICE_PW, BOB_PW, WRONG_PW)


def test_smtplib_sees_the_421_after_the_last_failure(make_server, hashes):
    srv = make_server(auth_config(hashes, auth={"max_failures": 2}))
    s = srv.smtplib()
    try:
        s.ehlo()
        # smtplib tries PLAIN, then LOGIN: two failures, the second ends it
        with pytest.raises(smtplib.SMTPAuthenticationError) as ei:
            s.login(ALICE, WRONG_PW)
        assert ei.value.smtp_code == 535
        # the 421 that followed the last 535, then the close
        assert s.getreply() == (421, TOO_MANY.encode())
        with pytest.raises(smtplib.SMTPServerDisconnected):
            s.getreply()
    finally:
        s.close()
    assert len(auth_events(srv, result="failed", user=ALICE)) == 2


def test_address_lockout_across_connections(make_server, hashes):
    srv = make_server(auth_config(hashes, auth={"max_failures": 3, "ip_max_failures": 4,
                                                "ip_window_s": 900}))
    with connect(srv.port) as c:
        c.ehlo()
        for _ in range(2):
            exact(c, f"AUTH PLAIN {plain(ALICE, WRONG_PW)}", 535, AUTH_FAILED)
        c.send(f"AUTH PLAIN {plain(ALICE, WRONG_PW)}\r\n")
        assert c.reply() == (535, [AUTH_FAILED])
        assert c.reply() == (421, [TOO_MANY])
        c.expect_eof()
    with connect(srv.port) as c:
        c.ehlo()
        exact(c, f"AUTH PLAIN {plain(BOB, WRONG_PW)}", 535, AUTH_FAILED)   # the 4th
        # now even the right password is not checked
        exact(c, f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 421, LOCKED)
        c.expect_eof()
    for start in ([f"AUTH PLAIN {plain(BOB, BOB_PW)}"], ["AUTH LOGIN", b64(ALICE), b64(ALICE_PW)]):
        with connect(srv.port) as c:
            c.ehlo()
            for line in start[:-1]:
                c.ok(line, 334)
            exact(c, start[-1], 421, LOCKED)
            c.expect_eof()
    locked = auth_events(srv, result="locked")
    assert len(locked) == 3, locked
    assert all(e["client"] == "127.0.0.1" for e in locked)
    assert len(auth_events(srv, result="ok")) == 0
    # another client address (loopback too) is not locked out
    with login(srv.port, source="127.0.0.2") as c:
        c.assert_nothing_pending()
    assert [e["client"] for e in auth_events(srv, result="ok")] == ["127.0.0.2"]
    # the locked address may still use SMTP without AUTH
    msg = make_message("from a locked address")
    with connect(srv.port) as c:
        c.ehlo()
        c.transaction("someone@remote.test", [BOB], dot_stuff(msg))
        c.assert_nothing_pending()
    f = wait_for_files(srv.new(BOB), 1)
    check_delivered(f[0].read_bytes(), sender="someone@remote.test", recipient=BOB,
                    body=msg, proto="ESMTP")
    assert_no_secrets(srv, ALICE_PW, BOB_PW, WRONG_PW)


def test_address_lockout_ends_with_the_window(make_server, hashes):
    # The window must outlast the two failures and the third try even on a
    # loaded machine (ASan, parallel workers): 4 s, not 1.
    srv = make_server(auth_config(hashes, auth={"max_failures": 5, "ip_max_failures": 2,
                                                "ip_window_s": 4}))
    with connect(srv.port) as c:
        c.ehlo()
        exact(c, f"AUTH PLAIN {plain(ALICE, WRONG_PW)}", 535, AUTH_FAILED)
        exact(c, f"AUTH PLAIN {plain(ALICE, WRONG_PW)}", 535, AUTH_FAILED)
        exact(c, f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 421, LOCKED)
        c.expect_eof()

    def try_login():
        with connect(srv.port) as c:
            c.ehlo()
            code, texts = c.cmd(f"AUTH PLAIN {plain(ALICE, ALICE_PW)}")
            assert (code, texts) in ((235, [AUTH_OK]), (421, [LOCKED])), (code, texts)
            return code == 235
    wait_until(try_login, 20, "the lockout to end after ip_window_s", interval=0.2)
    assert auth_events(srv, result="ok")


def test_passwords_never_logged_user_names_are(make_server, hashes):
    srv = make_server(auth_config(hashes, auth={"max_failures": 10}))
    with connect(srv.port) as c:
        c.ehlo()
        exact(c, f"AUTH PLAIN {plain(BOB, WRONG_PW)}", 535, AUTH_FAILED)
        exact(c, "AUTH LOGIN", 334, LOGIN_USER_PROMPT)
        exact(c, b64(ALICE), 334, LOGIN_PASS_PROMPT)
        exact(c, b64(BOB_PW), 535, AUTH_FAILED)
        exact(c, f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 235, AUTH_OK)
        msg = make_message("logged")
        qid = c.transaction(ALICE, [BOB], dot_stuff(msg))
        c.assert_nothing_pending()
    wait_for_files(srv.new(BOB), 1)
    log = srv.log()
    assert re.search(r"event=auth .*user=bob@example\.test result=failed", log), log
    assert re.search(r"event=auth .*mechanism=LOGIN user=alice@example\.test result=failed", log)
    assert re.search(r"event=auth .*mechanism=PLAIN user=alice@example\.test result=ok", log)
    msgs = [e for e in srv.log_events("message") if e.get("id") == qid]
    assert len(msgs) == 1 and msgs[0]["user"] == ALICE and msgs[0]["proto"] == "ESMTPA", msgs
    assert_no_secrets(srv, ALICE_PW, BOB_PW, WRONG_PW)


# ==========================================================================
# submission listeners


def test_submission_requires_auth_before_mail(make_server, hashes):
    # even for a client in relay_networks
    srv = submission_server(make_server, auth_config(hashes, relay_networks=["127.0.0.0/8"]))
    with connect(srv.port) as c:
        kws = ehlo_keywords(c)
        assert "AUTH PLAIN LOGIN" in kws, kws
        exact(c, f"MAIL FROM:<{ALICE}>", 530, "5.7.0 Error: authentication required")
        exact(c, "MAIL FROM:<>", 530, "5.7.0 Error: authentication required")
        c.ok(f"RCPT TO:<{BOB}>", 503, "5.5.1")
        c.ok("DATA", 503, "5.5.1")
        c.ok(f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 235, AUTH_OK)
        exact(c, f"MAIL FROM:<{ALICE}>", 250, "2.1.0 Ok")
        c.assert_nothing_pending()
    s = srv.smtplib()
    try:
        with pytest.raises(smtplib.SMTPSenderRefused) as ei:
            s.sendmail(ALICE, [BOB], make_message("no auth"))
        assert ei.value.smtp_code == 530
        assert ei.value.smtp_error == b"5.7.0 Error: authentication required"
    finally:
        s.quit()
    assert srv.all_delivered() == [] and srv.queue_files() == []


def test_submission_without_tls_says_starttls_first(make_server, hashes):
    srv = submission_server(make_server, auth_config(hashes, auth={"plaintext_loopback": False}))
    with connect(srv.port) as c:
        kws = ehlo_keywords(c)
        assert "STARTTLS" in kws and "AUTH PLAIN LOGIN" not in kws, kws
        exact(c, f"MAIL FROM:<{ALICE}>", 530, "5.7.0 Must issue a STARTTLS command first")
        exact(c, f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 538,
              "5.7.11 Encryption required for requested authentication mechanism")
        c.assert_nothing_pending()
    msg = make_message("submission over tls")
    s = srv.smtplib()
    try:
        s.starttls(context=unverified_tls())
        s.ehlo()
        with pytest.raises(smtplib.SMTPSenderRefused) as ei:
            s.sendmail(ALICE, [BOB], msg)
        assert (ei.value.smtp_code, ei.value.smtp_error) == (
            530, b"5.7.0 Error: authentication required")
        s.rset()
        s.login(ALICE, ALICE_PW)
        assert s.sendmail(ALICE, [BOB], msg) == {}
    finally:
        s.quit()
    f = wait_for_files(srv.new(BOB), 1)
    check_delivered(f[0].read_bytes(), sender=ALICE, recipient=BOB, body=msg, proto="ESMTPSA")


def test_submission_implicit_tls_offers_auth(make_server, hashes):
    """Port 465 style (RFC 8314): TLS from the first byte, so AUTH is offered
    without plaintext_loopback; mail says ESMTPSA."""
    # the first listener is plain smtp: the fixture waits for a clear-text 220 there
    srv, (_, port465) = start_listeners(
        make_server, auth_config(hashes, auth={"plaintext_loopback": False}),
        {"mode": "smtp"}, {"mode": "submission", "tls": "implicit"})
    msg = make_message("implicit tls submission")
    s = smtplib.SMTP_SSL("127.0.0.1", port465, local_hostname="client.test", timeout=30,
                         context=unverified_tls())
    try:
        s.ehlo()
        assert s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        assert not s.has_extn("starttls")
        assert s.mail(ALICE) == (530, b"5.7.0 Error: authentication required")
        assert s.login(ALICE, ALICE_PW) == (235, AUTH_OK.encode())
        assert s.sendmail("al@other.test", [BOB], msg) == {}
    finally:
        s.quit()
    f = wait_for_files(srv.new(BOB), 1)
    check_delivered(f[0].read_bytes(), sender="al@other.test", recipient=BOB, body=msg,
                    proto="ESMTPSA")


def test_submission_sender_ownership(make_server, hashes):
    srv = submission_server(make_server, auth_config(hashes))
    with login(srv.port) as c:
        for sender, ok in ((ALICE, True), ("Alice@EXAMPLE.test", True), ("", True),
                           ("al@other.test", True), ("AL@Other.Test", True),
                           ("alice.smith@users.test", True), ("ALICE.SMITH@USERS.TEST", True),
                           ("ceo@example.test", False), (BOB, False), (CARL, False),
                           ("alice@other.test", False), ("al@example.test", False),
                           ("alice@example.test.evil.test", False)):
            if ok:
                exact(c, f"MAIL FROM:<{sender}>", 250, "2.1.0 Ok")
                c.ok("RSET", 250, "2.0.0")
            else:
                exact(c, f"MAIL FROM:<{sender}>", 553, not_owned(sender))
                # no transaction was started
                c.ok(f"RCPT TO:<{BOB}>", 503, "5.5.1")
        c.assert_nothing_pending()
    refused = srv.log_events("sender_refused")
    assert len(refused) == 6 and all(e["user"] == ALICE for e in refused), refused
    # bob owns only his own address
    s = srv.smtplib()
    try:
        s.ehlo()
        s.login(BOB, BOB_PW)
        with pytest.raises(smtplib.SMTPSenderRefused) as ei:
            s.sendmail("ceo@example.test", [ALICE], make_message("ceo fraud"))
        assert ei.value.smtp_code == 553
        assert ei.value.smtp_error == not_owned("ceo@example.test").encode()
        assert ei.value.sender == "ceo@example.test"
        with pytest.raises(smtplib.SMTPSenderRefused):
            s.sendmail("al@other.test", [ALICE], make_message("alice's alias"))
        assert s.sendmail(BOB, [ALICE], make_message("bob himself")) == {}
    finally:
        s.quit()
    wait_for_files(srv.new(ALICE), 1)
    srv.wait_queue_empty()
    assert len(srv.all_delivered()) == 1


def test_submission_any_sender(make_server, hashes):
    srv = submission_server(make_server, auth_config(hashes, auth={"any_sender": True}))
    msg = make_message("any sender")
    s = srv.smtplib()
    try:
        s.ehlo()
        s.login(BOB, BOB_PW)
        assert s.sendmail("ceo@example.test", [ALICE], msg) == {}
    finally:
        s.quit()
    f = wait_for_files(srv.new(ALICE), 1)
    check_delivered(f[0].read_bytes(), sender="ceo@example.test", recipient=ALICE, body=msg,
                    proto="ESMTPA")
    assert srv.log_events("sender_refused") == []


def _headers(rest):
    head = rest.split(b"\r\n\r\n", 1)[0]
    return head.split(b"\r\n")


def test_submission_adds_date_and_message_id(make_server, hashes):
    srv = submission_server(make_server, auth_config(hashes))
    bare = (b"From: Alice <alice@example.test>\r\nTo: Bob <bob@example.test>\r\n"
            b"Subject: no date, no id\r\n\r\nbody line\r\n.dot line\r\n")
    with login(srv.port) as c:
        qid = c.transaction(ALICE, [BOB], dot_stuff(bare))
        c.assert_nothing_pending()
    f = wait_for_files(srv.new(BOB), 1)
    rp, dt, received, rest = split_delivered(f[0].read_bytes())
    assert parse_received(received)["proto"] == "ESMTPA"
    lines = _headers(rest)
    dates = [l for l in lines if l.lower().startswith(b"date:")]
    ids = [l for l in lines if l.lower().startswith(b"message-id:")]
    assert ids == [f"Message-ID: <{qid}@{HOSTNAME}>".encode()], lines
    assert len(dates) == 1, lines
    assert email.utils.parsedate_to_datetime(dates[0][5:].decode().strip()) is not None
    # nothing else changed: removing the two added lines gives the sent bytes
    stripped = rest.replace(dates[0] + b"\r\n", b"", 1).replace(ids[0] + b"\r\n", b"", 1)
    assert stripped == bare, rest

    # present headers are left alone (and not doubled)
    msg = make_message("has both", msgid="kept.4711@client.test")
    with login(srv.port) as c:
        c.transaction(ALICE, [BOB], dot_stuff(msg))
        c.assert_nothing_pending()
    f = wait_for_files(srv.new(BOB), 2)
    new = [p for p in f if b"has both" in p.read_bytes()]
    assert len(new) == 1
    check_delivered(new[0].read_bytes(), sender=ALICE, recipient=BOB, body=msg, proto="ESMTPA")

    # a lower-case "message-id:" / "date:" counts as present too
    odd = (b"from: alice@example.test\r\ndate: Thu, 26 Nov 2026 07:00:00 +0000\r\n"
           b"message-id: <lower.1@client.test>\r\nsubject: lower case\r\n\r\nhi\r\n")
    with login(srv.port) as c:
        c.transaction(ALICE, [BOB], dot_stuff(odd))
        c.assert_nothing_pending()
    f = wait_for_files(srv.new(BOB), 3)
    new = [p for p in f if b"lower case" in p.read_bytes()]
    check_delivered(new[0].read_bytes(), sender=ALICE, recipient=BOB, body=odd, proto="ESMTPA")


def test_submission_relays_to_any_domain(make_server, hashes, sink_cert):
    """Through a smarthost sink (no DNS): an authenticated submission client
    reaches remote domains; the relayed copy has Message-ID and ESMTPA."""
    sink = SmarthostSink(sink_cert)
    try:
        srv = submission_server(make_server, auth_config(
            hashes, relay={"smarthost": sink.address},
            queue={"retry_initial_s": 1, "retry_max_s": 2}))
        bare = b"Subject: to far away\r\n\r\nhello far\r\n"
        with login(srv.port, user=BOB, password=BOB_PW) as c:
            c.ok(f"MAIL FROM:<{BOB}>", 250, "2.1.0")
            for r in ("carol@far.test", "dave@elsewhere.test", "x@[192.0.2.7]"):
                if r.endswith("]"):
                    exact(c, f"RCPT TO:<{r}>", 554, relay_denied(r))
                else:
                    exact(c, f"RCPT TO:<{r}>", 250, "2.1.5 Ok")
            c.ok("DATA", 354)
            c.send(dot_stuff(bare) + b".\r\n")
            qid = queue_id_of(c.expect(250)[-1])
            c.assert_nothing_pending()
        msgs = sink.wait_messages(1)
        srv.wait_queue_empty()
        rcpts = sorted(r for m in sink.messages for r in m["rcpt_tos"])
        assert all(m["tls"] for m in sink.messages)
        assert rcpts == ["carol@far.test", "dave@elsewhere.test"]
        data = msgs[0]["data"]
        assert msgs[0]["mail_from"] == BOB
        assert f"Message-ID: <{qid}@{HOSTNAME}>".encode() in data
        assert re.search(rb"^Date: ", data, re.M)
        assert re.search(rb"\(postern\) with ESMTPA id " + qid.encode(), data), data[:600]
        assert data.endswith(bare)
    finally:
        sink.stop()


# ==========================================================================
# smtp listeners: relaying and the tricks


def test_smtp_unauthenticated_reaches_local_domains_only(make_server, hashes):
    srv = make_server(auth_config(hashes))
    with connect(srv.port) as c:
        c.ehlo()
        # no ownership rule without AUTH (an MX gets mail from anyone)
        exact(c, "MAIL FROM:<ceo@example.test>", 250, "2.1.0 Ok")
        for r in ("user@other.test", "USER@Other.Test", "alice@example.test.other.test"):
            exact(c, f"RCPT TO:<{r}>", 554, relay_denied(r))
        exact(c, f"RCPT TO:<{ALICE}>", 250, "2.1.5 Ok")
        exact(c, "RCPT TO:<anyone@catchall.test>", 250, "2.1.5 Ok")
        c.ok("RSET", 250, "2.0.0")
        c.assert_nothing_pending()
    s = srv.smtplib()
    try:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as ei:
            s.sendmail("a@remote.test", ["victim@other.test"], make_message("relay?"))
        assert ei.value.recipients == {
            "victim@other.test": (554, relay_denied("victim@other.test").encode())}
    finally:
        s.quit()
    assert srv.queue_files() == [] and srv.all_delivered() == []


def test_smtp_relay_networks_relay_without_auth(make_server, hashes):
    srv = make_server(auth_config(hashes, relay_networks=["127.0.0.0/8"]))
    with connect(srv.port) as c:
        c.ehlo()
        c.ok("MAIL FROM:<ceo@example.test>", 250, "2.1.0")
        exact(c, "RCPT TO:<user@other.test>", 250, "2.1.5 Ok")
        # still no tricks and no address literals
        exact(c, "RCPT TO:<user%other.test@example.test>", 554,
              relay_denied("user%other.test@example.test"))
        exact(c, "RCPT TO:<user@[192.0.2.1]>", 554, relay_denied("user@[192.0.2.1]"))
        c.ok("RSET", 250, "2.0.0")
        c.assert_nothing_pending()
    srv2 = make_server(auth_config(hashes, relay_networks=["192.0.2.0/24"]))
    with connect(srv2.port) as c:
        c.ehlo()
        c.ok("MAIL FROM:<ceo@example.test>", 250, "2.1.0")
        exact(c, "RCPT TO:<user@other.test>", 554, relay_denied("user@other.test"))
        c.assert_nothing_pending()
    assert srv.queue_files() == [] and srv2.queue_files() == []


def test_smtp_authenticated_may_relay(make_server, hashes):
    srv = make_server(auth_config(hashes))
    with connect(srv.port) as c:
        c.ehlo()
        c.ok(f"MAIL FROM:<{ALICE}>", 250, "2.1.0")
        exact(c, "RCPT TO:<user@other.test>", 554, relay_denied("user@other.test"))
        c.ok("RSET", 250, "2.0.0")
        c.ok(f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 235, AUTH_OK)
        c.ok(f"MAIL FROM:<{ALICE}>", 250, "2.1.0")
        exact(c, "RCPT TO:<user@other.test>", 250, "2.1.5 Ok")
        exact(c, "RCPT TO:<Someone@Elsewhere.TEST>", 250, "2.1.5 Ok")
        exact(c, f"RCPT TO:<{BOB}>", 250, "2.1.5 Ok")
        c.ok("RSET", 250, "2.0.0")
        c.assert_nothing_pending()
    assert srv.queue_files() == []


def test_smtp_authenticated_relay_end_to_end(make_server, hashes, sink_cert):
    sink = SmarthostSink(sink_cert)
    try:
        srv = make_server(auth_config(hashes, relay={"smarthost": sink.address},
                                      queue={"retry_initial_s": 1, "retry_max_s": 2}))
        msg = make_message("relayed with auth")
        # unauthenticated: refused, nothing leaves
        s = srv.smtplib()
        try:
            with pytest.raises(smtplib.SMTPRecipientsRefused):
                s.sendmail(ALICE, ["carol@far.test"], msg)
            s.rset()
            s.login(ALICE, ALICE_PW)
            assert s.sendmail("AL@other.test", ["carol@far.test"], msg) == {}
        finally:
            s.quit()
        msgs = sink.wait_messages(1)
        srv.wait_queue_empty()
        assert len(sink.messages) == 1
        assert msgs[0]["rcpt_tos"] == ["carol@far.test"]
        assert msgs[0]["mail_from"] == "AL@other.test"
        data = msgs[0]["data"]
        assert data.startswith(b"Received: "), data[:200]
        assert re.search(rb"\(postern\) with ESMTPA id [0-9a-f]{16}", data), data[:600]
        assert data.endswith(msg)
    finally:
        sink.stop()


def test_smtp_authenticated_sender_ownership(make_server, hashes):
    srv = make_server(auth_config(hashes))
    with login(srv.port, user=BOB, password=BOB_PW) as c:
        exact(c, "MAIL FROM:<ceo@example.test>", 553, not_owned("ceo@example.test"))
        exact(c, f"MAIL FROM:<{ALICE}>", 553, not_owned(ALICE))
        exact(c, "MAIL FROM:<al@other.test>", 553, not_owned("al@other.test"))
        exact(c, "MAIL FROM:<>", 250, "2.1.0 Ok")
        c.ok("RSET", 250, "2.0.0")
        exact(c, "MAIL FROM:<BOB@example.TEST>", 250, "2.1.0 Ok")
        c.assert_nothing_pending()
    s = srv.smtplib()
    try:
        s.ehlo()
        s.login(ALICE, ALICE_PW)
        with pytest.raises(smtplib.SMTPSenderRefused) as ei:
            s.sendmail("ceo@example.test", [BOB], make_message("x"))
        assert (ei.value.smtp_code, ei.value.smtp_error) == (
            553, not_owned("ceo@example.test").encode())
    finally:
        s.quit()
    assert srv.queue_files() == [] and srv.all_delivered() == []


# Address tricks that would make a naive MTA relay: refused for everyone.
LOCAL_PART_TRICKS = [
    "user%other.test@example.test",
    "user%other.test@catchall.test",
    "user%other.test@users.test",
    '"user@other.test"@example.test',
    '"user@other.test"@catchall.test',
    "other.test!user@example.test",
    "other.test!user@users.test",
    "other.test!user@catchall.test",
]
ADDRESS_LITERALS = ["user@[192.0.2.1]", "user@[IPv6:2001:db8::1]", "alice@[127.0.0.1]"]
SOURCE_ROUTES = [
    "@example.test,@b.test:user@other.test",
    "@example.test:user@other.test",
    "@mx.example.test:user@other.test",
]


def _assert_refused(srv, rcpts, authenticated):
    """Every address in rcpts gets 554 5.7.1 Relay access denied (one
    session; with AUTH, a plain remote recipient is accepted in between)."""
    with connect(srv.port) as c:
        c.ehlo()
        if authenticated:
            c.ok(f"AUTH PLAIN {plain(ALICE, ALICE_PW)}", 235, AUTH_OK)
        for r in rcpts:
            c.ok(f"MAIL FROM:<{ALICE}>", 250, "2.1.0")
            code, texts = c.cmd(f"RCPT TO:<{r}>")
            assert code == 554 and len(texts) == 1, (r, code, texts)
            assert texts[0].startswith("5.7.1 <") and texts[0].endswith(">: Relay access denied"), \
                (r, texts)
            # RFC 2920 3.1: no valid recipient, so no DATA phase
            exact(c, "DATA", 554, "5.5.1 Error: no valid recipients")
            if authenticated:  # the session may relay, just not this way
                exact(c, "RCPT TO:<user@other.test>", 250, "2.1.5 Ok")
            c.ok("RSET", 250, "2.0.0")
        c.assert_nothing_pending()
    assert srv.queue_files() == [] and srv.all_delivered() == []


@pytest.mark.parametrize("authenticated", [False, True], ids=["noauth", "auth"])
def test_local_part_tricks_refused(make_server, hashes, authenticated):
    srv = make_server(auth_config(hashes, limits={"errors": 100}))
    _assert_refused(srv, LOCAL_PART_TRICKS, authenticated)


@pytest.mark.parametrize("authenticated", [False, True], ids=["noauth", "auth"])
def test_address_literals_refused(make_server, hashes, authenticated):
    srv = make_server(auth_config(hashes, limits={"errors": 100}))
    _assert_refused(srv, ADDRESS_LITERALS, authenticated)
    with connect(srv.port) as c:
        c.ehlo()
        c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
        exact(c, "RCPT TO:<user@[192.0.2.1]>", 554, relay_denied("user@[192.0.2.1]"))
        c.assert_nothing_pending()


def test_source_routes_refused_without_auth(make_server, hashes):
    srv = make_server(auth_config(hashes, limits={"errors": 100}))
    _assert_refused(srv, SOURCE_ROUTES, authenticated=False)


def test_source_routes_refused_with_auth(make_server, hashes):
    srv = make_server(auth_config(hashes, limits={"errors": 100}))
    _assert_refused(srv, SOURCE_ROUTES, authenticated=True)


def test_tricks_refused_on_submission_after_auth(make_server, hashes):
    srv = submission_server(make_server, auth_config(hashes, limits={"errors": 100}))
    _assert_refused(srv, LOCAL_PART_TRICKS[:3] + ADDRESS_LITERALS[:1], authenticated=True)


# ==========================================================================
# Received: protocol words


def test_received_protocol_words(make_server, hashes):
    srv = make_server(auth_config(hashes))
    m1, m2, m3 = (make_message(f"proto {i}") for i in (1, 2, 3))
    s = srv.smtplib()
    try:
        assert s.sendmail("x@remote.test", [BOB], m1) == {}
    finally:
        s.quit()
    s = srv.smtplib()
    try:
        s.ehlo()
        s.login(ALICE, ALICE_PW)
        assert s.sendmail(ALICE, [BOB], m2) == {}
    finally:
        s.quit()
    s = srv.smtplib()
    try:
        s.starttls(context=unverified_tls())
        s.ehlo()
        s.login(ALICE, ALICE_PW)
        assert s.sendmail(ALICE, [BOB], m3) == {}
    finally:
        s.quit()
    files = wait_for_files(srv.new(BOB), 3)
    by_subject = {}
    for p in files:
        data = p.read_bytes()
        for i, m in enumerate((m1, m2, m3), 1):
            if f"Subject: proto {i}\r\n".encode() in data:
                by_subject[i] = (data, m)
    assert sorted(by_subject) == [1, 2, 3]
    check_delivered(by_subject[1][0], sender="x@remote.test", recipient=BOB,
                    body=m1, proto="ESMTP")
    check_delivered(by_subject[2][0], sender=ALICE, recipient=BOB, body=m2, proto="ESMTPA")
    check_delivered(by_subject[3][0], sender=ALICE, recipient=BOB, body=m3, proto="ESMTPSA")
    protos = sorted(e["proto"] for e in srv.log_events("message"))
    assert protos == ["ESMTP", "ESMTPA", "ESMTPSA"]
