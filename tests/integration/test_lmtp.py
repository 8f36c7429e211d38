"""LMTP delivery (RFC 2033) against Dovecot's LMTP server from Debian
(dovecot-lmtpd): local domains in "delivery": {"lmtp": ..., "domains": [...]}
go to Dovecot instead of postern's Maildirs, each recipient with Dovecot's own
reply (RFC 2033 4.2): delivered, bounced with a DSN (5.1.1 from Dovecot), or
deferred while Dovecot is down and delivered once it is up.

Each test runs a private Dovecot (its own base_dir, a unix LMTP socket and a
TCP LMTP listener on loopback, passwd-file users, Maildirs in a temp dir) and
stops it in teardown whatever happens."""

import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import free_port, list_files, make_message, wait_until
from relay_helpers import log_events_with, wait_dsns, wait_log

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
SENDER = "alice@example.test"  # a Maildir user of postern: DSNs land there
LMTP_DOMAIN = "lmtp.test"
DOVECOT_USERS = ("alice", "bob", "carol")
# dave's mailbox holds at most 1 KiB: Dovecot answers 452 4.2.2 after the
# data for him alone (quota_full_tempfail), the per-recipient case of RFC 2033 4.2.
SMALL_QUOTA_USER = "dave"

DOVECOT_CONF = """\
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
protocols = lmtp
ssl = no
default_internal_user = root
default_internal_group = root
default_login_user = root
mail_location = maildir:{d}/mail/%d/%n
mail_uid = {uid}
mail_gid = {gid}
first_valid_uid = {uid}
first_valid_gid = {gid}
mail_plugins = $mail_plugins quota
quota_full_tempfail = yes
plugin {{
  quota = maildir:User quota
}}
passdb {{
  driver = passwd-file
  args = {d}/users
}}
userdb {{
  driver = passwd-file
  args = {d}/users
}}
service lmtp {{
  unix_listener {d}/lmtp {{
    mode = 0666
  }}
  inet_listener lmtp {{
    address = 127.0.0.1
    port = {port}
  }}
}}
service anvil {{
  chroot =
}}
"""


class Dovecot:
    """A private Dovecot running only LMTP, in the foreground (dovecot -F), as
    a child of the test."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="postern-dovecot-"))
        self.dir.chmod(0o755)
        self.socket = self.dir / "lmtp"
        self.port = free_port()
        nobody = pwd.getpwnam("nobody")  # mail_uid must not be root
        for sub in ("run", "state", "mail"):
            (self.dir / sub).mkdir()
        os.chown(self.dir / "mail", nobody.pw_uid, nobody.pw_gid)
        (self.dir / "users").write_text(
            "".join(f"{u}@{LMTP_DOMAIN}:{{PLAIN}}unused::::::\n" for u in DOVECOT_USERS)
            + f"{SMALL_QUOTA_USER}@{LMTP_DOMAIN}:{{PLAIN}}unused:::::: userdb_quota_rule=*:storage=1K\n")
        self.conf = self.dir / "dovecot.conf"
        self.conf.write_text(DOVECOT_CONF.format(d=self.dir, uid=nobody.pw_uid, gid=nobody.pw_gid,
                                                 port=self.port))
        self.proc = None

    def start(self, timeout=30):
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(self.conf)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=open(self.dir / "stderr.log", "ab"))
        wait_until(self._answers, timeout, f"Dovecot LMTP on {self.socket}\n{self.log()}")
        return self

    def _answers(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"dovecot exited with {self.proc.returncode}\n{self.log()}")
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(5)
                s.connect(str(self.socket))
                return s.recv(512).startswith(b"220 ")
        except OSError:
            return False

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        out = []
        for name in ("dovecot.log", "stderr.log"):
            p = self.dir / name
            if p.exists():
                out.append(p.read_text(errors="replace")[-4000:])
        return "---- dovecot log ----\n" + "\n".join(out)

    def new(self, user):
        return self.dir / "mail" / LMTP_DOMAIN / user / "new"

    def delivered(self, user):
        return list_files(self.new(user))

    def wait_delivered(self, user, count=1, timeout=30):
        def enough():
            files = self.delivered(user)
            return files if len(files) >= count else None
        try:
            return wait_until(enough, timeout, f"{count} message(s) for {user}@{LMTP_DOMAIN}")
        except AssertionError:
            raise AssertionError(f"timed out waiting for {count} message(s) for {user}@{LMTP_DOMAIN}\n"
                                 f"{self.log()}") from None


@pytest.fixture
def dovecot():
    if not os.access(DOVECOT, os.X_OK) or not Path("/usr/lib/dovecot/lmtp").exists():
        pytest.skip("Dovecot with LMTP is not installed (apt-get install dovecot-lmtpd)")
    if os.geteuid() != 0:
        pytest.skip("Dovecot's LMTP needs root to deliver as mail_uid")
    d = Dovecot()
    yield d
    d.cleanup()


def lmtp_overrides(spec, **more):
    cfg = {
        "local_domains": ["example.test", "catchall.test", "users.test", LMTP_DOMAIN],
        # lmtp.test has no users in postern: a catch-all, so Dovecot decides
        # who exists (its 550 5.1.1 becomes the bounce).
        "aliases": {
            "postmaster@example.test": ["alice@example.test"],
            "info@lmtp.test": ["carol@lmtp.test"],
            "both@example.test": ["bob@lmtp.test", "bob@example.test"],
        },
        "delivery": {"lmtp": spec, "domains": [LMTP_DOMAIN]},
    }
    cfg.update(more)
    return cfg


def send(server, rcpts, msg):
    with server.smtplib() as c:
        refused = c.sendmail(SENDER, rcpts, msg)
    assert refused == {}, refused


def check_lmtp_delivered(path, msg, recipient_header=None):
    """Dovecot's file: its Return-Path (ours: the envelope sender, once), its
    Delivered-To (single-recipient transactions only) and Received (with
    LMTP), then postern's Received and the message exactly as sent."""
    data = Path(path).read_bytes().replace(b"\r\n", b"\n")
    assert data.count(b"\nReturn-Path:") + data.startswith(b"Return-Path:") == 1, data[:400]
    assert data.startswith(f"Return-Path: <{SENDER}>\n".encode()), data[:400]
    body = msg.replace(b"\r\n", b"\n")
    assert data.endswith(body), data[-400:]
    text = data[:-len(body)].decode(errors="replace")
    names = [line.split(":", 1)[0] for line in text.split("\n") if line and line[0] not in " \t"]
    assert names[0] == "Return-Path", names
    assert names.count("Received") == 2, names
    assert "with LMTP" in text, text            # Dovecot's trace
    assert "(postern) with ESMTP" in text, text  # ours, from the SMTP receipt
    if recipient_header is not None:
        assert f"Delivered-To: {recipient_header}" in text, text


def test_lmtp_delivers_per_recipient_and_bounces_the_unknown(make_server, dovecot):
    """Five recipients in one message: two Dovecot users, one alias to a third,
    one user Dovecot does not know (550 5.1.1 at RCPT: a DSN to the sender),
    and an alias in a Maildir domain to an LMTP user and a Maildir user."""
    dovecot.start()
    spec = f"unix:{dovecot.socket}"
    srv = make_server(lmtp_overrides(spec))
    msg = make_message("lmtp delivery", body_lines=["Hello over LMTP.", ".leading dot", "", "-- ", "x"])
    send(srv, ["alice@lmtp.test", "bob@lmtp.test", "nobody@lmtp.test", "info@lmtp.test", "both@example.test"],
         msg)

    (a,) = dovecot.wait_delivered("alice")
    (c,) = dovecot.wait_delivered("carol")
    bob = dovecot.wait_delivered("bob")
    for p in (a, c, *bob):
        check_lmtp_delivered(p, msg)
    # bob is reached twice (directly and through both@): one LMTP recipient
    # per message, so one copy.
    srv.wait_queue_empty(timeout=30)
    assert len(dovecot.delivered("bob")) == 1
    # The Maildir half of the alias is delivered by postern itself.
    (local,) = srv.delivered("bob@example.test")
    assert local.read_bytes().startswith(f"Return-Path: <{SENDER}>\r\nDelivered-To: bob@example.test\r\n".encode())
    # Nothing of lmtp.test went into postern's Maildirs.
    assert not (srv.mail_root / LMTP_DOMAIN).exists()

    (dsn,) = wait_dsns(srv, SENDER, 1)
    (r,) = dsn["recipients"]
    assert r["final-recipient"].lower() == "rfc822; nobody@lmtp.test", r
    assert r["action"].lower() == "failed", r
    assert r["status"] == "5.1.1", r
    assert "doesn't exist" in r.get("diagnostic-code", ""), r

    relay = f"lmtp:{spec}"
    for to in ("alice@lmtp.test", "bob@lmtp.test", "carol@lmtp.test"):
        (ev,) = log_events_with(srv, "delivery", to=to, status="sent")
        assert ev["relay"].strip('"') == relay, ev
    (ev,) = log_events_with(srv, "delivery", to="nobody@lmtp.test", status="bounced")
    assert ev["relay"].strip('"') == relay, ev
    assert "5.1.1" in ev["detail"], ev


def test_lmtp_over_tcp_and_a_binary_clean_body(make_server, dovecot):
    """host:port instead of a socket; a one-recipient transaction (Dovecot
    then writes Delivered-To itself); 8-bit text and long lines arrive as
    sent."""
    dovecot.start()
    srv = make_server(lmtp_overrides(f"127.0.0.1:{dovecot.port}"))
    lines = ["Gr\u00fc\u00dfe aus K\u00f6ln.", "x" * 900, "..two dots", "."]
    msg = make_message("tcp lmtp", body_lines=lines)
    with srv.smtplib() as c:
        c.ehlo()
        assert c.sendmail(SENDER, ["Alice@LMTP.test"], msg, mail_options=["BODY=8BITMIME"]) == {}
    (p,) = dovecot.wait_delivered("alice")
    check_lmtp_delivered(p, msg, recipient_header="alice@lmtp.test")
    srv.wait_queue_empty(timeout=30)
    (ev,) = log_events_with(srv, "delivery", to="alice@lmtp.test", status="sent")
    assert ev["relay"].strip('"') == f"lmtp:127.0.0.1:{dovecot.port}", ev


def test_lmtp_server_down_defers_then_delivers_when_up(make_server, dovecot):
    """No socket yet: the recipients are deferred (4.4.1), never lost nor
    bounced; once Dovecot listens, the next retry delivers."""
    spec = f"unix:{dovecot.socket}"
    srv = make_server(lmtp_overrides(spec, queue={"retry_initial_s": 1, "retry_max_s": 2}))
    msg = make_message("deferred lmtp")
    send(srv, ["alice@lmtp.test", "bob@lmtp.test"], msg)
    for to in ("alice@lmtp.test", "bob@lmtp.test"):
        ev = wait_log(srv, "delivery", to=to, status="deferred")[0]
        assert "4.4.1" in ev["detail"], ev
        assert ev["relay"].strip('"') == f"lmtp:{spec}", ev
    assert srv.queue_files(), "the message must stay queued"

    dovecot.start()
    (a,) = dovecot.wait_delivered("alice")
    (b,) = dovecot.wait_delivered("bob")
    check_lmtp_delivered(a, msg)
    check_lmtp_delivered(b, msg)
    srv.wait_queue_empty(timeout=30)
    assert not srv.delivered(SENDER), "no DSN: nothing failed"
    assert not log_events_with(srv, "delivery", status="bounced")


def test_lmtp_replies_after_the_data_are_per_recipient(make_server, dovecot):
    """Dovecot takes the message for alice and answers 452 4.2.2 (quota) for
    dave after the data, in one transaction: alice is done, dave deferred
    and still queued, no DSN."""
    dovecot.start()
    spec = f"unix:{dovecot.socket}"
    srv = make_server(lmtp_overrides(spec))
    msg = make_message("over quota", body_lines=["y" * 70] * 40)  # about 3 KiB
    send(srv, ["alice@lmtp.test", f"{SMALL_QUOTA_USER}@lmtp.test"], msg)
    (a,) = dovecot.wait_delivered("alice")
    check_lmtp_delivered(a, msg)
    ev = wait_log(srv, "delivery", to=f"{SMALL_QUOTA_USER}@lmtp.test", status="deferred")[0]
    assert "452 4.2.2" in ev["detail"], ev
    assert ev["relay"].strip('"') == f"lmtp:{spec}", ev
    (sent,) = log_events_with(srv, "delivery", to="alice@lmtp.test", status="sent")
    assert sent["id"] == ev["id"], (sent, ev)  # one message, one LMTP transaction
    assert srv.queue_files(), "dave's copy stays queued"
    assert dovecot.delivered(SMALL_QUOTA_USER) == []
    assert not srv.delivered(SENDER), "a deferral sends no DSN"
