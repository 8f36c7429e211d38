"""Shared fixtures and helpers for postern's integration suite.

Every test runs the real `postern` binary (env POSTERN_BIN, default
<repo>/build/postern) on a free 127.0.0.1 port with a config written into a
fresh temporary directory, and drives it with clients other people wrote
(Python's smtplib, swaks) or with raw sockets where exact bytes matter.

No sleeps where a wait-for works: every wait polls with a deadline.
"""

import atexit
import copy
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
POSTERN_BIN = os.environ.get("POSTERN_BIN", str(REPO / "build" / "postern"))

HOSTNAME = "mx.example.test"
POLL = 0.02  # seconds between polls in wait-for loops

QUEUED_RE = re.compile(r"^Ok: queued as ([0-9a-f]{16})$")


# --------------------------------------------------------------------------
# generic helpers


def wait_until(pred, timeout, what, interval=POLL):
    """Poll pred() until it returns a truthy value; fail after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# Ports for servers the tests start come from a range below the kernel's
# ephemeral range (32768-60999 on Linux), so a port picked here is never
# taken meanwhile by some client's connect() (the 10,000-connection probe
# uses up a third of the ephemeral range). Under pytest-xdist each worker
# owns its own slice of the range, so two workers never pick the same port.
_PORT_RANGE = (20000, 32000)
_port_next = None


def _port_slice():
    lo, hi = _PORT_RANGE
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    size = (hi - lo) // max(count, 1)
    return lo + index * size, lo + (index + 1) * size


def _port_is_free(port, hosts, udp):
    kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if udp else [])
    socks = []
    try:
        for host in hosts:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            for kind in kinds:
                s = socket.socket(family, kind)
                socks.append(s)
                s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_port(hosts=("127.0.0.1",), udp=False):
    """A port of this worker's slice that TCP (and UDP when asked) can bind
    on every address in hosts right now."""
    global _port_next
    lo, hi = _port_slice()
    if _port_next is None or not lo <= _port_next < hi:
        _port_next = lo
    for _ in range(hi - lo):
        port = _port_next
        _port_next = lo + (_port_next + 1 - lo) % (hi - lo)
        if _port_is_free(port, hosts, udp):
            return port
    raise RuntimeError(f"no free port in {lo}-{hi} on {hosts}")


def port_is_bound(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", port))
            return True
        except OSError:
            return False


def list_files(d):
    d = Path(d)
    if not d.is_dir():
        return []
    return sorted(p for p in d.iterdir() if p.is_file())


def wait_for_files(maildir_new, count, timeout=20):
    """Wait until directory maildir_new holds at least `count` files; return them."""
    def enough():
        files = list_files(maildir_new)
        return files if len(files) >= count else None
    try:
        return wait_until(enough, timeout, f"{count} file(s) in {maildir_new}")
    except AssertionError:
        raise AssertionError(
            f"timed out after {timeout}s waiting for {count} file(s) in "
            f"{maildir_new}; have {len(list_files(maildir_new))}") from None


def files_under(d):
    d = Path(d)
    if not d.exists():
        return []
    return sorted(p for p in d.rglob("*") if p.is_file())


def deep_merge(base, over):
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k != "aliases":
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# --------------------------------------------------------------------------
# delivered-file parsing

def split_delivered(data):
    """Split a delivered Maildir file into (return_path, delivered_to,
    received_unfolded, rest).  Asserts the three prefix headers are present,
    in order, CRLF-terminated."""
    assert data.startswith(b"Return-Path: "), data[:200]
    i = data.index(b"\r\n")
    rp_line = data[:i]
    assert b"\n" not in rp_line and b"\r" not in rp_line, data[:200]
    pos = i + 2
    assert data[pos:].startswith(b"Delivered-To: "), data[:300]
    j = data.index(b"\r\n", pos)
    dt_line = data[pos:j]
    assert b"\n" not in dt_line and b"\r" not in dt_line, data[:300]
    pos = j + 2
    assert data[pos:].startswith(b"Received: "), data[:500]
    # Received: may be folded: continuation lines start with SP or TAB
    rcv_lines = []
    while True:
        k = data.index(b"\r\n", pos)
        line = data[pos:k]
        assert b"\n" not in line and b"\r" not in line, data[:500]
        rcv_lines.append(line)
        pos = k + 2
        if not data[pos:pos + 1] in (b" ", b"\t"):
            break
    received = b"".join(rcv_lines)  # unfolding: drop the CRLFs, keep the WSP
    return (rp_line[len(b"Return-Path: "):], dt_line[len(b"Delivered-To: "):],
            received, data[pos:])


RECEIVED_RE = re.compile(
    rb"^Received: from .+ by ([^ ]+) \(postern\) with (SMTP|ESMTPS?A?|UTF8SMTPS?A?) "
    rb"id ([0-9a-f]{16})(?: .*)?; (.+)$", re.S)


def parse_received(received):
    norm = re.sub(rb"[ \t]+", b" ", received).strip()
    m = RECEIVED_RE.match(norm)
    assert m, f"Received header does not match the spec: {received!r}"
    return {"by": m.group(1).decode(), "proto": m.group(2).decode(),
            "id": m.group(3).decode(), "date": m.group(4).decode()}


def check_delivered(data, *, sender, recipient, body, queue_id=None, proto=None,
                    delivered_to_any=False):
    """Assert a delivered file is the exact prefix + the exact sent bytes."""
    import email.utils
    rp, dt, received, rest = split_delivered(data)
    assert rp == b"<" + sender.encode() + b">", rp
    if not delivered_to_any:
        # "Delivered-To: <recipient address>" — accept with or without <>
        assert dt in (recipient.encode(), b"<" + recipient.encode() + b">"), dt
    r = parse_received(received)
    assert r["by"] == HOSTNAME
    if queue_id is not None:
        assert r["id"] == queue_id
    if proto is not None:
        assert r["proto"] == proto, received
    assert email.utils.parsedate_to_datetime(r["date"]) is not None, r["date"]
    assert rest == body, (
        f"delivered body differs from the sent bytes\n sent {len(body)} bytes: "
        f"{body[:300]!r}\n got {len(rest)} bytes: {rest[:300]!r}")
    return r


MSGID_RE = re.compile(rb"^Message-ID: <([^>]+)>\r$", re.M | re.I)


def message_ids_in(path):
    data = Path(path).read_bytes()
    return [m.decode() for m in MSGID_RE.findall(data)]


# --------------------------------------------------------------------------
# raw SMTP client


class SMTPError(AssertionError):
    pass


class RawSMTP:
    """A minimal line-exact SMTP client over a plain socket."""

    def __init__(self, port, host="127.0.0.1", source=None, timeout=10):
        self.timeout = timeout
        self.sock = socket.create_connection(
            (host, port), timeout=timeout,
            source_address=(source, 0) if source else None)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _readline(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SMTPError(f"no reply line within {timeout}s; buffered {self.buf!r}")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise SMTPError(f"no reply line within {timeout}s; buffered {self.buf!r}")
            if not chunk:
                raise SMTPError(f"connection closed; buffered {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def reply(self, timeout=None):
        """Read one (possibly multi-line) reply: (code, [text lines])."""
        timeout = self.timeout if timeout is None else timeout
        texts = []
        code = None
        while True:
            line = self._readline(timeout).decode("utf-8", "replace")
            if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3] not in " -"):
                raise SMTPError(f"malformed reply line {line!r}")
            c = int(line[:3])
            if code is not None and c != code:
                raise SMTPError(f"multi-line reply changes code: {line!r}")
            code = c
            texts.append(line[4:])
            if len(line) == 3 or line[3] == " ":
                return code, texts

    def cmd(self, line, timeout=None):
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        return self.reply(timeout)

    def expect(self, code, prefix=None, timeout=None):
        """Read a reply; assert its code and (optionally) the start of its last line."""
        c, texts = self.reply(timeout)
        assert c == code, f"expected {code} {prefix or ''}, got {c} {texts}"
        if prefix is not None:
            assert texts[-1].startswith(prefix), f"expected {code} {prefix}, got {c} {texts}"
        return texts

    def ok(self, line, code, prefix=None, timeout=None):
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        try:
            return self.expect(code, prefix, timeout)
        except SMTPError as e:
            raise SMTPError(f"after {line[:120]!r}: {e}") from None
        except AssertionError as e:
            raise AssertionError(f"after {line[:120]!r}: {e}") from None

    def greeting(self):
        return self.expect(220)

    def ehlo(self, name="client.test"):
        return self.ok(f"EHLO {name}", 250)

    def expect_eof(self, timeout=10):
        """Assert the server closes the connection with no further bytes."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise SMTPError(f"connection not closed within {timeout}s")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise SMTPError(f"connection not closed within {timeout}s")
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                assert self.buf == b"", f"unexpected extra bytes before close: {self.buf!r}"
                return
            self.buf += chunk

    def assert_nothing_pending(self):
        """Sync check: QUIT must be answered by 221 and then a close with nothing else."""
        self.ok("QUIT", 221, "2.0.0")
        self.expect_eof()

    def transaction(self, sender, rcpts, body, mail_params=""):
        """Run MAIL/RCPT/DATA expecting success; body must already be dot-stuffed
        and end with CRLF. Returns the queue id."""
        self.ok(f"MAIL FROM:<{sender}>{mail_params}", 250, "2.1.0")
        for r in rcpts:
            self.ok(f"RCPT TO:<{r}>", 250, "2.1.5")
        self.ok("DATA", 354)
        self.send(body + b".\r\n")
        texts = self.expect(250, "2.0.0")
        return queue_id_of(texts[-1])


def queue_id_of(text):
    """'2.0.0 Ok: queued as 0123456789abcdef' -> the id (asserting the format)."""
    assert text.startswith("2.0.0 "), text
    m = QUEUED_RE.match(text[len("2.0.0 "):])
    assert m, f"end-of-data reply is not '250 2.0.0 Ok: queued as <16 hex>': {text!r}"
    return m.group(1)


# --------------------------------------------------------------------------
# the server under test


def _test_certificate():
    """One EC certificate for HOSTNAME, made once per test run: a server
    started without "tls" would make its own RSA key (about half a second
    each under load); the tests of that default (test_submission_tls.py)
    ask for it explicitly with "tls": {"certificate": None, ...}."""
    d = tempfile.mkdtemp(prefix="postern-test-cert-")
    atexit.register(shutil.rmtree, d, True)
    crt, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-subj", f"/CN={HOSTNAME}", "-addext", f"subjectAltName=DNS:{HOSTNAME}",
                    "-days", "30", "-keyout", key, "-out", crt],
                   check=True, capture_output=True)
    return {"certificate": crt, "private_key": key}


BASE_CONFIG = {
    "tls": _test_certificate(),
    "hostname": HOSTNAME,
    "local_domains": ["example.test", "catchall.test", "users.test"],
    "users": [
        {"address": "alice@example.test"},
        {"address": "bob@example.test"},
        {"address": "carl@users.test"},
    ],
    "aliases": {
        "postmaster@example.test": ["alice@example.test"],
        "team@example.test": ["alice@example.test", "bob@example.test"],
        # recursive: staff -> team -> alice, bob ; all -> staff + alice (dedupe)
        "staff@example.test": ["team@example.test"],
        "all@example.test": ["staff@example.test", "alice@example.test"],
    },
    "limits": {
        "message_size": 36700160,
        "recipients": 100,
        "connections": 1000,
        "connections_per_ip": 50,
        "command_timeout_s": 300,
        "data_timeout_s": 600,
        "errors": 20,
        # Sessions a test leaves open mid-transaction must not hold up
        # Server.stop() (SIGTERM, then SIGKILL after 5 s).
        "shutdown_timeout_s": 2,
    },
    "log_level": "info",
}


class Server:
    def __init__(self, root, overrides=None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.spool = self.root / "spool"
        self.mail_root = self.root / "mail"
        cfg = deep_merge(BASE_CONFIG, overrides or {})
        cfg.setdefault("spool_dir", str(self.spool))
        cfg.setdefault("mail_root", str(self.mail_root))
        cfg.setdefault("listeners", [{"address": f"127.0.0.1:{self.port}", "mode": "smtp"}])
        self.config = cfg
        self.config_path = self.root / "postern.json"
        self.config_path.write_text(json.dumps(cfg, indent=2, ensure_ascii=False))
        self.proc = None
        self.log_path = self.root / "postern.stderr.log"
        self.out_path = self.root / "postern.stdout.log"
        self.generation = 0
        self.expect_dead = False

    # ---- process control
    def start(self, timeout=10):
        assert self.proc is None or self.proc.poll() is not None
        self.generation += 1
        self._log = open(self.log_path, "ab")
        self._out = open(self.out_path, "ab")
        self._log.write(f"---- start #{self.generation}\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            [POSTERN_BIN, "serve", "--config", str(self.config_path)],
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._log,
            cwd=str(self.root))
        self.expect_dead = False
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=10):
        """Wait until the port answers with the 220 greeting."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                self.expect_dead = True   # reported here, not again at teardown
                raise AssertionError(
                    f"postern exited with status {rc} before answering\n{self.log_tail()}")
            try:
                with RawSMTP(self.port, timeout=max(0.5, deadline - time.monotonic())) as c:
                    code, texts = c.reply()
                    if code == 220:
                        c.ok("QUIT", 221)
                        c.expect_eof()
                        return
                    last = (code, texts)
            except (OSError, AssertionError) as e:
                last = e
            time.sleep(0.05)
        raise AssertionError(f"no 220 greeting within {timeout}s (last: {last})\n{self.log_tail()}")

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def kill9(self):
        self.expect_dead = True
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def restart(self, timeout=10):
        self.stop()
        return self.start(timeout)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    # ---- observation
    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=60):
        lines = self.log().splitlines()
        return "---- postern stderr (tail) ----\n" + "\n".join(lines[-n:])

    def log_events(self, event):
        out = []
        for line in self.log().splitlines():
            if f" event={event} " in f" {line} ":
                kv = dict(re.findall(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line))
                out.append(kv)
        return out

    def maildir(self, address):
        local, domain = address.rsplit("@", 1)
        return self.mail_root / domain.lower() / local.lower()

    def new(self, address):
        return self.maildir(address) / "new"

    def delivered(self, address):
        return list_files(self.new(address))

    def all_delivered(self):
        return sorted(p for p in self.mail_root.rglob("*")
                      if p.is_file() and p.parent.name == "new") if self.mail_root.exists() else []

    def queue_files(self):
        return files_under(self.spool / "queue")

    def incoming_files(self):
        return files_under(self.spool / "incoming")

    def wait_queue_empty(self, timeout=30):
        wait_until(lambda: not self.queue_files() and not self.incoming_files(),
                   timeout, "the spool queue and incoming/ to be empty")

    def connect(self, **kw):
        c = RawSMTP(self.port, **kw)
        return c

    def smtplib(self, timeout=30):
        import smtplib
        return smtplib.SMTP("127.0.0.1", self.port, local_hostname="client.test",
                            timeout=timeout)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def make_server(tmp_path, request):
    """Factory: make_server(overrides=None, start=True) -> Server."""
    if not os.access(POSTERN_BIN, os.X_OK):
        pytest.fail(f"postern binary not found at {POSTERN_BIN} (set POSTERN_BIN)")
    servers = []

    def factory(overrides=None, start=True, name=None):
        s = Server(tmp_path / (name or f"srv{len(servers)}"), overrides)
        servers.append(s)
        if start:
            s.start()
        return s

    yield factory
    crashed = []
    for s in servers:
        if s.proc is not None and s.proc.poll() is not None and not s.expect_dead:
            crashed.append(f"{s.root.name}: exited with status {s.proc.returncode}")
        s.stop()
    failed = getattr(request.node, "rep_call", None)
    if crashed or (failed is not None and failed.failed):
        for s in servers:
            print(f"==== {s.root.name}: {s.config_path}")
            print(s.log_tail(80))
    if crashed:
        pytest.fail("postern died during the test (it must survive bad input): "
                    + "; ".join(crashed))


@pytest.fixture
def server(make_server):
    return make_server()


def make_message(subject="test", body_lines=None, msgid=None, extra_headers=()):
    """A CRLF message (not dot-stuffed) as bytes, ending with CRLF."""
    import uuid
    msgid = msgid or f"{uuid.uuid4().hex}@client.test"
    hdrs = [
        "From: Alice <alice@example.test>",
        "To: Bob <bob@example.test>",
        f"Subject: {subject}",
        f"Message-ID: <{msgid}>",
        "Date: Thu, 26 Nov 2026 07:00:00 +0000",
        *extra_headers,
    ]
    body_lines = body_lines if body_lines is not None else ["Hello.", "", "-- ", "a"]
    return ("\r\n".join(hdrs) + "\r\n\r\n" + "\r\n".join(body_lines) + "\r\n").encode()


def dot_stuff(msg):
    """Dot-stuff a CRLF message (RFC 5321 4.5.2)."""
    out = []
    for line in msg.split(b"\r\n"):
        out.append(b"." + line if line.startswith(b".") else line)
    return b"\r\n".join(out)
