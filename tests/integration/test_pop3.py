"""POP3 (issue 8): postern serves the users' Maildirs over POP3 (RFC 1939)
with CAPA (RFC 2449), STLS (RFC 2595), AUTH PLAIN (RFC 5034) and implicit
TLS (RFC 8314), driven by clients other people wrote: Python's poplib (plain,
STLS, POP3_SSL), curl (pop3://, pop3s://) and fetchmail, plus raw sockets
where the exact bytes matter.

Mail is delivered over SMTP first (smtplib into the real server), then
fetched; what comes back is compared byte for byte with the Maildir files,
UIDs with the Maildir unique names."""

import base64
import os
import shutil
import smtplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import (HOSTNAME, POSTERN_BIN, free_port, make_message, wait_for_files, wait_until)

PASSWORD = "secret"
ALICE, BOB = "alice@example.test", "bob@example.test"
TIMEOUT = 20  # bound for every client and subprocess

needs = {tool: pytest.mark.skipif(shutil.which(tool) is None, reason=f"{tool} not installed")
         for tool in ("curl", "fetchmail")}


# --------------------------------------------------------------------------
# fixtures and helpers


@pytest.fixture(scope="module")
def pw_hash():
    p = subprocess.run([POSTERN_BIN, "hash-password"], input=PASSWORD.encode() + b"\n",
                       capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode().strip()


class Pop3Server:
    """A postern with an SMTP listener (srv.port), a POP3 listener with STLS
    (self.pop3) and one with implicit TLS (self.pop3s)."""

    def __init__(self, make_server, pw_hash, plaintext_loopback=True, auth=None):
        over = {"users": [{"address": ALICE, "password": pw_hash}, {"address": BOB, "password": pw_hash}],
                "auth": {"plaintext_loopback": plaintext_loopback, "failure_delay_ms": 10, **(auth or {})}}
        srv = make_server(over, start=False)
        self.pop3, self.pop3s = free_port(), free_port()
        srv.config["listeners"] = [
            {"address": f"127.0.0.1:{srv.port}", "mode": "smtp"},
            {"address": f"127.0.0.1:{self.pop3}", "mode": "pop3"},
            {"address": f"127.0.0.1:{self.pop3s}", "mode": "pop3", "tls": "implicit"},
        ]
        import json
        srv.config_path.write_text(json.dumps(srv.config, indent=2))
        srv.start()
        self.srv = srv

    def deliver(self, rcpt, messages):
        """Sends each message to rcpt over SMTP; returns the Maildir files
        (new/), once all are there."""
        before = len(self.files(rcpt))
        with smtplib.SMTP("127.0.0.1", self.srv.port, local_hostname="client.test", timeout=TIMEOUT) as s:
            for m in messages:
                s.sendmail("sender@remote.test", [rcpt], m)
        wait_until(lambda: len(self.files(rcpt)) == before + len(messages), TIMEOUT, "delivery into the Maildir")
        return self.files(rcpt)

    def files(self, rcpt):
        """{unique name: (path, bytes)} of the Maildir's messages (new/ and cur/)."""
        out = {}
        base = self.srv.maildir(rcpt)
        for sub in ("new", "cur"):
            d = base / sub
            if d.is_dir():
                for p in d.iterdir():
                    out[p.name.split(":2,")[0]] = (p, p.read_bytes())
        return out

    def poplib(self, timeout=TIMEOUT):
        import poplib
        return poplib.POP3("127.0.0.1", self.pop3, timeout=timeout)

    def poplib_ssl(self, timeout=TIMEOUT):
        import poplib
        return poplib.POP3_SSL("127.0.0.1", self.pop3s, context=client_ctx(), timeout=timeout)


@pytest.fixture
def pop(make_server, pw_hash):
    return Pop3Server(make_server, pw_hash)


def client_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def login(p, user=ALICE, password=PASSWORD):
    assert p.user(user).startswith(b"+OK")
    assert p.pass_(password).startswith(b"+OK")


def retr_bytes(p, n):
    """RETR n through poplib: the message as sent (poplib removes the byte-
    stuffing and splits lines; a stored message ends with CRLF)."""
    resp, lines, octets = p.retr(n)
    assert resp.startswith(b"+OK"), resp
    return b"\r\n".join(lines) + b"\r\n"


def uidl_map(p):
    resp, lines, _ = p.uidl()
    assert resp.startswith(b"+OK")
    return {int(n): uid.decode() for n, uid in (l.split() for l in lines)}


# Messages with what POP3 must get right: a line beginning with "." (byte-
# stuffed on the wire, RFC 1939 3), one with ".." and a lone ".", 8-bit text.
MESSAGES = [
    make_message("first", ["Hello.", ".hidden line", "..two dots", ".", "end"]),
    make_message("second", ["plain body"]),
    make_message("third", ["caf\u00e9 \u2014 8-bit".encode().decode("latin-1"), "x" * 900]),
]


# --------------------------------------------------------------------------
# poplib


def test_poplib_fetches_exact_bytes_and_uids_deletes_at_quit_and_reconnects(pop):
    stored = pop.deliver(ALICE, MESSAGES)
    p = pop.poplib()
    login(p)
    count, octets = p.stat()
    assert count == 3
    assert octets == sum(len(b) for _, b in stored.values())
    uids = uidl_map(p)
    assert sorted(uids.values()) == sorted(stored), (uids, list(stored))
    resp, listing, _ = p.list()
    sizes = {int(n): int(s) for n, s in (l.split() for l in listing)}
    for n, uid in uids.items():
        assert sizes[n] == len(stored[uid][1])
        assert retr_bytes(p, n) == stored[uid][1], f"message {n} differs from its Maildir file"
    # RETR marked them seen: moved to cur/ with the S flag, same unique names.
    after = pop.files(ALICE)
    assert all(path.parent.name == "cur" and path.name.endswith(":2,S") for path, _ in after.values()), after
    # DELE marks only; QUIT removes.
    doomed = uids[2]
    assert p.dele(2).startswith(b"+OK")
    assert doomed in pop.files(ALICE), "DELE removed the file before QUIT"
    assert p.quit().startswith(b"+OK")
    left = pop.files(ALICE)
    assert doomed not in left and len(left) == 2
    # A new session sees the rest, with the same UIDs.
    p = pop.poplib()
    login(p)
    assert p.stat()[0] == 2
    assert sorted(uidl_map(p).values()) == sorted(u for u in uids.values() if u != doomed)
    p.quit()


def test_connection_cut_before_quit_deletes_nothing(pop):
    stored = pop.deliver(ALICE, MESSAGES[:2])
    p = pop.poplib()
    login(p)
    assert p.dele(1).startswith(b"+OK") and p.dele(2).startswith(b"+OK")
    p.close()  # no QUIT: poplib just closes the socket
    wait_until(lambda: any(e.get("proto") == "pop3" for e in pop.srv.log_events("disconnect")), TIMEOUT,
               "the session's end")
    assert sorted(pop.files(ALICE)) == sorted(stored)
    p = pop.poplib()
    login(p)  # and the lock went with the cut connection
    assert p.stat()[0] == 2
    p.quit()


def test_rset_undeletes_and_top_does_not_mark_seen(pop):
    pop.deliver(ALICE, MESSAGES[:1])
    p = pop.poplib()
    login(p)
    resp, lines, _ = p.top(1, 1)
    assert resp.startswith(b"+OK")
    body = lines[lines.index(b"") + 1:]
    assert body == [b"Hello."], lines
    p.dele(1)
    assert p.rset().startswith(b"+OK")
    p.quit()
    (path, _), = pop.files(ALICE).values()
    assert path.parent.name == "new", "TOP must not mark a message seen"


def test_a_message_with_lf_line_ends_from_another_tool_is_served_as_crlf(pop):
    """procmail and maildrop write LF line ends; RFC 1939 11: "the message
    is transmitted with CRLF line ends", and LIST/STAT count exactly the
    octets RETR sends (RFC 1939 5: "the exact size of the message")."""
    stored = pop.deliver(ALICE, MESSAGES[1:2])  # the Maildir exists
    lf = make_message("written with LF", ["one", ".dot", "", "four"]).replace(b"\r\n", b"\n")
    base = pop.srv.maildir(ALICE)
    tmp = base / "tmp" / "1800000001.M2P2.procmail"
    tmp.write_bytes(lf)
    tmp.rename(base / "new" / tmp.name)
    crlf = lf.replace(b"\n", b"\r\n")
    p = pop.poplib()
    login(p)
    n = {uid: k for k, uid in uidl_map(p).items()}["1800000001.M2P2.procmail"]
    resp, listing, _ = p.list()
    sizes = {int(k): int(v) for k, v in (l.split() for l in listing)}
    assert sizes[n] == len(crlf), (sizes, len(crlf), len(lf))
    assert p.stat() == (2, len(crlf) + sum(len(b) for _, b in stored.values()))
    assert p.list(n).split()[2] == str(len(crlf)).encode()
    resp, lines, octets = p.retr(n)
    assert octets == len(crlf), (octets, len(crlf))  # poplib counts each line with its line end
    assert b"\r\n".join(lines) + b"\r\n" == crlf
    resp, lines, octets = p.top(n, 1)
    assert b"\r\n".join(lines) + b"\r\n" == crlf[:crlf.index(b"\r\n\r\n") + 4] + b"one\r\n"
    assert octets == len(b"\r\n".join(lines) + b"\r\n")
    p.quit()
    # The wire itself: CRLF throughout, the "." line stuffed (RFC 1939 3).
    with socket.create_connection(("127.0.0.1", pop.pop3), timeout=TIMEOUT) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK")
        s.sendall(f"USER {ALICE}\r\nPASS {PASSWORD}\r\nRETR {n}\r\nQUIT\r\n".encode())
        for _ in range(3):
            assert f.readline().startswith(b"+OK")
        wire = b""
        while not wire.endswith(b"\r\n.\r\n"):
            chunk = f.readline()
            assert chunk, wire
            wire += chunk
    assert wire == crlf.replace(b"\r\n.dot", b"\r\n..dot") + b".\r\n"


def test_a_maildrop_is_locked_for_one_session(pop):
    pop.deliver(ALICE, MESSAGES[:1])
    first = pop.poplib()
    login(first)
    second = pop.poplib()
    second.user(ALICE)
    import poplib
    with pytest.raises(poplib.error_proto) as e:
        second.pass_(PASSWORD)
    assert e.value.args[0].startswith(b"-ERR [IN-USE]"), e.value.args
    # Another user is not affected.
    third = pop.poplib()
    login(third, BOB)
    assert third.stat() == (0, 0)  # no Maildir yet: an empty maildrop
    third.quit()
    first.quit()
    second.close()
    again = pop.poplib()
    login(again)
    assert again.stat()[0] == 1
    again.quit()


def test_stls_then_login_and_capa_before_and_after(make_server, pw_hash):
    pop = Pop3Server(make_server, pw_hash, plaintext_loopback=False)
    stored = pop.deliver(ALICE, MESSAGES[1:2])
    p = pop.poplib()
    capa = p.capa()
    assert "STLS" in capa and "USER" not in capa and "SASL" not in capa, capa
    import poplib
    with pytest.raises(poplib.error_proto) as e:  # RFC 2595 2.3: no password in clear
        p.user(ALICE)
        p.pass_(PASSWORD)
    assert e.value.args[0].startswith(b"-ERR"), e.value.args
    assert p.stls(client_ctx()).startswith(b"+OK")
    capa = p.capa()
    assert "STLS" not in capa and "USER" in capa and capa.get("SASL") == ["PLAIN"], capa
    login(p)
    (uid, (_, data)), = stored.items()
    assert uidl_map(p) == {1: uid}
    assert retr_bytes(p, 1) == data
    p.quit()


def test_pop3_ssl_on_the_implicit_listener_with_auth_plain(make_server, pw_hash):
    pop = Pop3Server(make_server, pw_hash, plaintext_loopback=False)
    stored = pop.deliver(ALICE, MESSAGES[:1])
    p = pop.poplib_ssl()
    assert p.getwelcome().startswith(b"+OK")
    assert "STLS" not in p.capa()
    # RFC 5034 AUTH PLAIN with an initial response.
    ir = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
    assert p._shortcmd(f"AUTH PLAIN {ir}").startswith(b"+OK")
    (_, data), = stored.values()
    assert retr_bytes(p, 1) == data
    p.quit()


def test_failed_logins_get_auth_code_delay_and_lockout(make_server, pw_hash):
    pop = Pop3Server(make_server, pw_hash, auth={"max_failures": 2, "ip_max_failures": 3, "ip_window_s": 60})
    import poplib
    p = pop.poplib()
    for i in range(2):
        p.user(ALICE)
        with pytest.raises(poplib.error_proto) as e:
            p.pass_("wrong password %d" % i)
        assert e.value.args[0].startswith(b"-ERR [AUTH]"), e.value.args
    # max_failures on one connection: closed.
    with pytest.raises((poplib.error_proto, OSError, EOFError)):
        p.noop()
        p.noop()
    # A third failure from this address locks it out, even with the right password.
    q = pop.poplib()
    q.user(ALICE)
    with pytest.raises(poplib.error_proto):
        q.pass_("wrong again")
    q.user(ALICE)
    with pytest.raises(poplib.error_proto) as e:
        q.pass_(PASSWORD)
    assert e.value.args[0].startswith(b"-ERR [AUTH]"), e.value.args
    log = pop.srv.log()
    assert "wrong password" not in log and PASSWORD not in log.replace("password", "")
    assert any(e.get("result") == "locked" for e in pop.srv.log_events("auth"))


# --------------------------------------------------------------------------
# raw bytes: byte-stuffing on the wire, CRLF exactly as stored


def test_wire_bytes_are_stuffed_and_crlf_terminated(pop):
    stored = pop.deliver(ALICE, MESSAGES[:1])
    (_, data), = stored.values()
    with socket.create_connection(("127.0.0.1", pop.pop3), timeout=TIMEOUT) as s:
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK")
        s.sendall(f"USER {ALICE}\r\nPASS {PASSWORD}\r\nRETR 1\r\nQUIT\r\n".encode())
        assert f.readline().startswith(b"+OK")
        assert f.readline().startswith(b"+OK")
        assert f.readline().startswith(b"+OK")
        wire = b""
        while not wire.endswith(b"\r\n.\r\n"):
            chunk = f.readline()
            assert chunk, wire
            wire += chunk
        assert f.readline().startswith(b"+OK")
    expected = b"".join((b"." + l if l.startswith(b".") else l) for l in data.splitlines(keepends=True))
    assert wire == expected + b".\r\n"
    assert b"\r\n..hidden line\r\n...two dots\r\n..\r\nend\r\n" in wire


# --------------------------------------------------------------------------
# curl


@needs["curl"]
@pytest.mark.parametrize("scheme", ["pop3", "pop3s"])
def test_curl_lists_and_retrieves(make_server, pw_hash, scheme):
    pop = Pop3Server(make_server, pw_hash, plaintext_loopback=False)
    stored = pop.deliver(ALICE, MESSAGES[:2])
    port = pop.pop3 if scheme == "pop3" else pop.pop3s
    base = ["curl", "-sS", "--max-time", str(TIMEOUT), "-k", "--user", f"{ALICE}:{PASSWORD}"]
    if scheme == "pop3":
        base.append("--ssl-reqd")  # STLS before the login
    listing = subprocess.run(base + [f"{scheme}://127.0.0.1:{port}/"], capture_output=True, timeout=TIMEOUT)
    assert listing.returncode == 0, listing.stderr
    sizes = sorted(int(l.split()[1]) for l in listing.stdout.decode().splitlines())
    assert sizes == sorted(len(b) for _, b in stored.values())
    got = set()
    for n in (1, 2):
        r = subprocess.run(base + [f"{scheme}://127.0.0.1:{port}/{n}"], capture_output=True, timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        got.add(r.stdout)
    assert got == {b for _, b in stored.values()}


# --------------------------------------------------------------------------
# fetchmail


def run_fetchmail(pop, tmp_path, *, keep, ssl_mode, extra=()):
    """One fetchmail poll of alice's maildrop; each message goes through an
    MDA script into its own file. Returns the fetched messages (bytes)."""
    out = tmp_path / "fetched"
    out.mkdir(exist_ok=True)
    mda = tmp_path / "mda.sh"
    mda.write_text(f"#!/bin/sh\nexec cat > \"$(mktemp {out}/msg.XXXXXX)\"\n")
    mda.chmod(0o755)
    port = pop.pop3s if ssl_mode == "implicit" else pop.pop3
    opts = "ssl" if ssl_mode == "implicit" else "sslproto tls1.2+"  # STLS required
    rc = tmp_path / "fetchmailrc"
    rc.write_text(
        "set no bouncemail\n"
        f"poll 127.0.0.1 with proto POP3 service {port} uidl\n"
        f"  user \"{ALICE}\" there with password \"{PASSWORD}\" is \"root\" here\n"
        f"  options {'keep' if keep else 'nokeep'} {opts}\n"
        f"  mda \"{mda}\"\n")
    rc.chmod(0o600)
    before = set(out.iterdir())
    r = subprocess.run(["fetchmail", "-N", "-d0", "-f", str(rc), "--idfile", str(tmp_path / "fetchids"),
                        "--pidfile", str(tmp_path / "fetchmail.pid"),  # as root it would share /var/run
                        "--invisible", "--nosyslog", "--nosslcertck", "-v", *extra],
                       env={**os.environ, "HOME": str(tmp_path)}, capture_output=True, timeout=60)
    # 0: mail fetched, 1: no new mail (fetchmail(1) EXIT CODES)
    assert r.returncode in (0, 1), r.stdout.decode(errors="replace")[-3000:] + r.stderr.decode(errors="replace")
    return [p.read_bytes() for p in sorted(set(out.iterdir()) - before)], r


@needs["fetchmail"]
@pytest.mark.parametrize("ssl_mode", ["stls", "implicit"])
def test_fetchmail_fetches_new_mail_by_uidl_then_deletes(make_server, pw_hash, tmp_path, ssl_mode):
    pop = Pop3Server(make_server, pw_hash, plaintext_loopback=False)
    stored = pop.deliver(ALICE, MESSAGES[:2])
    lf = lambda b: b.replace(b"\r\n", b"\n")  # fetchmail hands the MDA LF lines
    fetched, r = run_fetchmail(pop, tmp_path, keep=True, ssl_mode=ssl_mode)
    assert sorted(fetched) == sorted(lf(b) for _, b in stored.values()), r.stdout.decode(errors="replace")
    if ssl_mode == "stls":
        assert b"STLS" in r.stdout + r.stderr
    # One more message: with kept mail and UIDL, only the new one comes.
    newer = pop.deliver(ALICE, MESSAGES[2:])
    fresh = {u: b for u, (_, b) in newer.items() if u not in stored}
    fetched, r = run_fetchmail(pop, tmp_path, keep=True, ssl_mode=ssl_mode)
    assert fetched == [lf(b) for b in fresh.values()], r.stdout.decode(errors="replace")
    # --all without keep: every message again, then deleted from the server.
    fetched, r = run_fetchmail(pop, tmp_path, keep=False, ssl_mode=ssl_mode, extra=["--all"])
    everything = {**{u: b for u, (_, b) in stored.items()}, **fresh}
    assert sorted(fetched) == sorted(lf(b) for b in everything.values()), r.stdout.decode(errors="replace")
    assert pop.files(ALICE) == {}


def test_sigterm_ends_pop3_sessions_without_deleting(pop):
    import poplib
    import signal
    stored = pop.deliver(ALICE, MESSAGES[:2])
    p = pop.poplib()
    login(p)
    assert p.dele(1).startswith(b"+OK")
    pop.srv.proc.send_signal(signal.SIGTERM)
    line = p.file.readline()  # unsolicited: the server's last words
    assert line.startswith(b"-ERR [SYS/TEMP]"), line
    pop.srv.proc.wait(timeout=TIMEOUT)
    pop.srv.expect_dead = True
    assert pop.srv.proc.returncode == 0
    assert sorted(pop.files(ALICE)) == sorted(stored)  # DELE without QUIT removes nothing
