"""IMAP (issue 10): postern serves the users' Maildirs over IMAP (RFC 9051,
IMAP4rev1 compatible) with STARTTLS and implicit TLS (RFC 8314), folders as
Maildir++ subdirectories, flags in the file names, UIDPLUS, MOVE, IDLE,
SPECIAL-USE, ESEARCH; driven by clients other people wrote: Python's imaplib
(plain with plaintext_loopback, STARTTLS, IMAP4_SSL), curl (imap:// with
--ssl-reqd, imaps://) and mbsync (isync) syncing both ways with a local
Maildir, plus raw sockets where the exact bytes matter (literals, LITERAL+,
IDLE, STARTTLS injection, an over-long line).

Mail is delivered over SMTP into the real server, then read over IMAP; what
comes back is compared byte for byte with the Maildir files, flags with the
letters after ":2," in the file names, folders with the directories on disk.
Messages are told apart by their Message-ID, never by the order in which the
queue delivered them."""

import base64
import datetime
import imaplib
import json
import os
import re
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from conftest import HOSTNAME, POSTERN_BIN, free_port, make_message, wait_until

PASSWORD = "secret"
ALICE, BOB = "alice@example.test", "bob@example.test"
TIMEOUT = 20  # bound for every client, read and subprocess

needs = {tool: pytest.mark.skipif(shutil.which(tool) is None, reason=f"{tool} not installed")
         for tool in ("curl", "mbsync")}

SYSTEM_FLAGS = {"\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft"}
LETTER = {"\\Draft": "D", "\\Flagged": "F", "\\Answered": "R", "\\Seen": "S", "\\Deleted": "T"}
SPECIAL_USE = {"Sent": "\\Sent", "Drafts": "\\Drafts", "Trash": "\\Trash", "Junk": "\\Junk"}


# --------------------------------------------------------------------------
# names on disk


def mutf7(name):
    """RFC 3501 5.1.3 modified UTF-7 (what postern puts on disk and on the
    wire without UTF8=ACCEPT)."""
    out, run = [], []

    def flush():
        if run:
            b64 = base64.b64encode("".join(run).encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + b64.replace("/", ",") + "-")
            run.clear()
    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            run.append(ch)
    flush()
    return "".join(out)


def test_mutf7_helper_matches_rfc_examples():
    # the helper itself, against RFC 3501 5.1.3's example and the issue's name
    assert mutf7("~peter/mail/\u65e5\u672c\u8a9e/\u53f0\u5317") == "~peter/mail/&ZeVnLIqe-/&U,BTFw-"
    assert mutf7("Entw\u00fcrfe") == "Entw&APw-rfe"
    assert mutf7("A&B") == "A&-B"


def letters(path):
    """The Maildir flag letters of a message file ('' when it has no info)."""
    name = Path(path).name
    return name.split(":2,", 1)[1] if ":2," in name else ""


def unique(path):
    return Path(path).name.split(":2,", 1)[0]


MSGID_RE = re.compile(rb"^Message-ID:\s*<([^>]+)>", re.M | re.I)


def msgid_of(data):
    m = MSGID_RE.search(data)
    return m.group(1).decode() if m else None


# --------------------------------------------------------------------------
# IMAP response parsing (RFC 9051 9: atoms, quoted strings, literals, NIL, lists)


class _Parser:
    def __init__(self, data):
        self.b = data
        self.i = 0

    def items(self, closing=False):
        out = []
        while True:
            while self.i < len(self.b) and self.b[self.i:self.i + 1] == b" ":
                self.i += 1
            if self.i >= len(self.b):
                assert not closing, f"unbalanced parentheses in {self.b[:300]!r}"
                return out
            c = self.b[self.i:self.i + 1]
            if c == b")":
                assert closing, f"unexpected ')' at {self.i} in {self.b[:300]!r}"
                self.i += 1
                return out
            if c == b"(":
                self.i += 1
                out.append(self.items(True))
            elif c == b'"':
                out.append(self.quoted())
            elif c == b"{" or (c == b"~" and self.b[self.i + 1:self.i + 2] == b"{"):
                out.append(self.literal())
            else:
                out.append(self.atom())

    def quoted(self):
        self.i += 1
        out = bytearray()
        while True:
            c = self.b[self.i:self.i + 1]
            assert c, f"unterminated quoted string in {self.b[:300]!r}"
            self.i += 1
            if c == b"\\":
                out += self.b[self.i:self.i + 1]
                self.i += 1
            elif c == b'"':
                return bytes(out)
            else:
                out += c

    def literal(self):
        m = re.compile(rb"~?\{(\d+)\+?\}\r\n").match(self.b, self.i)
        assert m, f"bad literal at {self.i}: {self.b[self.i:self.i + 40]!r}"
        n = int(m.group(1))
        start = m.end()
        assert start + n <= len(self.b), "short literal"
        self.i = start + n
        return self.b[start:start + n]

    def atom(self):
        start, depth = self.i, 0
        while self.i < len(self.b):
            c = self.b[self.i:self.i + 1]
            if c == b"[":
                depth += 1
            elif c == b"]":
                depth -= 1
            elif depth == 0 and c in (b" ", b"(", b")"):
                break
            self.i += 1
        word = self.b[start:self.i].decode("utf-8", "surrogateescape")
        return None if word.upper() == "NIL" else word


def parse(data):
    """Parse IMAP data into nested lists: atoms -> str, strings and literals ->
    bytes, NIL -> None."""
    return _Parser(data).items()


def norm(x):
    """bytes -> str (UTF-8) throughout, for comparing structures."""
    if isinstance(x, list):
        return [norm(v) for v in x]
    if isinstance(x, bytes):
        return x.decode("utf-8", "surrogateescape")
    return x


def pairs(lst):
    """An IMAP item list (NAME value NAME value ...) -> {NAME (upper): value}."""
    assert len(lst) % 2 == 0, lst
    return {str(lst[k]).upper().replace('"', ""): lst[k + 1] for k in range(0, len(lst), 2)}


def flagset(flags):
    """FLAGS value -> set, without \\Recent (an IMAP4rev1 session flag)."""
    return {f for f in flags if f.lower() != "\\recent"}


def fetches(untagged):
    """[b'* 3 FETCH (...)', ...] -> {3: {ITEM: value}} (items of several
    FETCH responses for one message merged)."""
    out = {}
    for line in untagged:
        if re.match(rb"^\* \d+ FETCH ", line, re.I):
            toks = parse(line)
            out.setdefault(int(toks[1]), {}).update(pairs(toks[3]))
    return out


def numbered(untagged, word):
    """[b'* 3 EXPUNGE', ...] -> [3, ...] for word EXPUNGE / EXISTS / RECENT."""
    out = []
    for line in untagged:
        m = re.match(rb"\* (\d+) " + word.encode() + rb"\s*$", line, re.I)
        if m:
            out.append(int(m.group(1)))
    return out


def after_expunges(order, reported):
    """order: the messages by sequence number; reported: the numbers of the
    EXPUNGE responses as sent (each renumbers those after it, RFC 9051
    7.5.1) -> the messages left, in order."""
    left = list(order)
    for n in reported:
        assert 1 <= n <= len(left), f"EXPUNGE {n} of {len(left)} messages ({reported})"
        del left[n - 1]
    return left


def code_of(line):
    """'* OK [UIDNEXT 4] x' / 'a1 OK [APPENDUID 1 2] x' -> 'UIDNEXT 4'."""
    m = re.match(rb"^\S+ (?:OK|NO|BAD|BYE|PREAUTH) \[([^\]]*)\]", line, re.I)
    return m.group(1).decode() if m else None


def codes(lines):
    return [c for c in (code_of(l) for l in lines) if c is not None]


def imaplib_fetch(m, msgset, items, uid=False):
    """Runs (UID) FETCH through imaplib and parses its data:
    {seq: {ITEM: value}}."""
    typ, data = m.uid("FETCH", msgset, items) if uid else m.fetch(msgset, items)
    assert typ == "OK", data
    stream = b""
    for d in data:
        if d is None:
            continue
        if isinstance(d, tuple):
            stream += b" " + d[0] + b"\r\n" + d[1]
        else:
            stream += (b"" if d.startswith(b")") else b" ") + d
    toks = parse(stream)
    out = {}
    for k in range(0, len(toks), 2):
        out.setdefault(int(toks[k]), {}).update(pairs(toks[k + 1]))
    return out


# --------------------------------------------------------------------------
# a raw IMAP client: exact bytes, literals, untagged responses as they come


class Lit:
    """A synchronizing literal argument: {n}, wait for '+', then the bytes."""

    def __init__(self, data):
        self.data = data.encode() if isinstance(data, str) else data


class Result:
    def __init__(self, tag, untagged, tagged):
        self.tag, self.untagged, self.tagged = tag, untagged, tagged
        self.status = tagged.split(b" ", 2)[1].decode().upper() if b" " in tagged else ""
        self.code = code_of(tagged)

    def __repr__(self):
        return f"Result({self.untagged!r}, {self.tagged!r})"


class RawImap:
    def __init__(self, port, tls=False, timeout=TIMEOUT):
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            self.sock = client_ctx().wrap_socket(self.sock, server_hostname=HOSTNAME)
        self.buf = b""
        self.n = 0
        self.greeting = self.read()

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
        self.sock.sendall(data.encode() if isinstance(data, str) else data)

    def _fill(self, deadline, what):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {what} within the deadline; buffered {self.buf[:500]!r}")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"no {what} within the deadline; buffered {self.buf[:500]!r}") from None
        if not chunk:
            raise EOFError(f"connection closed; buffered {self.buf[:500]!r}")
        self.buf += chunk

    def _line(self, deadline):
        while b"\r\n" not in self.buf:
            self._fill(deadline, "response line")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def read(self, timeout=None):
        """One response (untagged, tagged or continuation), literals included
        inline as '{n}\\r\\n<n bytes>'; without the final CRLF."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        line = self._line(deadline)
        if line.startswith(b"+"):
            return line
        while True:
            m = re.search(rb"\{(\d+)\}$", line)
            if not m:
                return line
            n = int(m.group(1))
            while len(self.buf) < n:
                self._fill(deadline, f"literal of {n} octets")
            line += b"\r\n" + self.buf[:n]
            self.buf = self.buf[n:]
            line += self._line(deadline)

    def tag(self):
        self.n += 1
        return f"A{self.n:03d}"

    def command(self, *parts, timeout=None):
        """Send 'tag parts...' (Lit parts as synchronizing literals) and read
        to the tagged response."""
        tag = self.tag()
        tb = tag.encode()
        untagged = []
        out = tb
        for p in parts:
            out += b" "
            if isinstance(p, Lit):
                self.send(out + b"{%d}\r\n" % len(p.data))
                while True:
                    r = self.read(timeout)
                    if r.startswith(b"+"):
                        break
                    if r.startswith(tb + b" "):
                        return Result(tag, untagged, r)   # refused before the literal
                    untagged.append(r)
                out = p.data
            else:
                out += p.encode() if isinstance(p, str) else p
        self.send(out + b"\r\n")
        return self.finish(tag, untagged, timeout)

    def finish(self, tag, untagged=None, timeout=None):
        untagged = [] if untagged is None else untagged
        tb = tag.encode() + b" "
        while True:
            r = self.read(timeout)
            if r.startswith(tb):
                return Result(tag, untagged, r)
            assert r.startswith(b"* "), f"unexpected response {r[:300]!r}"
            untagged.append(r)

    def ok(self, *parts, timeout=None):
        r = self.command(*parts, timeout=timeout)
        assert r.status == "OK", f"{' '.join(p if isinstance(p, str) else '<lit>' for p in parts)[:200]} -> {r}"
        return r

    def login(self, user=ALICE, password=PASSWORD):
        return self.ok(f'LOGIN "{user}" "{password}"')

    def starttls(self):
        r = self.ok("STARTTLS")
        assert self.buf == b"", f"bytes after the STARTTLS OK: {self.buf!r}"
        self.sock = client_ctx().wrap_socket(self.sock, server_hostname=HOSTNAME)
        return r

    def capabilities(self):
        r = self.ok("CAPABILITY")
        caps = [l for l in r.untagged if l.upper().startswith(b"* CAPABILITY ")]
        assert len(caps) == 1, r
        return caps[0].decode().split()[2:]

    def msgmap(self):
        """{Message-ID: (seq, uid)} of the selected folder."""
        r = self.ok("FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        out = {}
        for seq, items in fetches(r.untagged).items():
            body = next(v for k, v in items.items() if k.startswith("BODY[HEADER.FIELDS"))
            out[msgid_of(body)] = (seq, int(items["UID"]))
        return out

    def flags(self, seq_or_uid, uid=False):
        r = self.ok(f"{'UID ' if uid else ''}FETCH {seq_or_uid} (FLAGS)")
        f = fetches(r.untagged)
        assert len(f) == 1, r
        return flagset(next(iter(f.values()))["FLAGS"])

    def expect_eof(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._fill(deadline, "close")
            except EOFError:
                return
            except ConnectionResetError:
                return


def select_info(r):
    """The facts of a SELECT/EXAMINE result."""
    info = {"exists": numbered(r.untagged, "EXISTS"), "codes": codes(r.untagged), "tagged": r.code}
    for l in r.untagged:
        if l.upper().startswith(b"* FLAGS "):
            info["flags"] = set(parse(l)[2])
    for c in info["codes"]:
        word, _, rest = c.partition(" ")
        if word.upper() in ("UIDVALIDITY", "UIDNEXT"):
            info[word.lower()] = int(rest)
        elif word.upper() == "PERMANENTFLAGS":
            info["permanentflags"] = set(parse(rest.encode())[0])
    return info


def list_entries(untagged, word="LIST"):
    """'* LIST (\\HasNoChildren \\Sent) "." Sent' -> {'Sent': {'\\hasnochildren', '\\sent'}}
    (attributes lower-cased: they are case-insensitive)."""
    out = {}
    for line in untagged:
        if line.upper().startswith(b"* " + word.encode() + b" "):
            toks = parse(line)
            name = toks[4]
            name = name.decode() if isinstance(name, bytes) else name
            out[name] = {a.lower() for a in toks[2]}
            assert norm(toks[3]) == ".", line
    return out


def status_of(untagged):
    """'* STATUS name (MESSAGES 3 ...)' -> {name: {'MESSAGES': 3, ...}}."""
    out = {}
    for line in untagged:
        if line.upper().startswith(b"* STATUS "):
            toks = parse(line)
            name = norm(toks[2])
            out[name] = {k: int(v) for k, v in pairs(toks[3]).items()}
    return out


def esearch(untagged):
    """'* ESEARCH (TAG "A005") UID COUNT 2 MIN 1' -> {'UID': True, 'COUNT': '2', ...}."""
    found = [l for l in untagged if l.upper().startswith(b"* ESEARCH")]
    assert len(found) == 1, untagged
    toks = parse(found[0])[2:]
    out = {}
    if toks and isinstance(toks[0], list):
        out["TAG"] = norm(toks[0][1])
        toks = toks[1:]
    if toks and str(toks[0]).upper() == "UID":
        out["UID"] = True
        toks = toks[1:]
    out.update(pairs(toks))
    return out


def search_result(untagged):
    found = [l for l in untagged if l.upper().startswith(b"* SEARCH")]
    assert len(found) == 1, untagged
    return {int(n) for n in found[0].split()[2:]}


def expand_list(s):
    """'1,3:5' -> [1, 3, 4, 5] (ranges ascending, the order kept)."""
    out = []
    for part in s.split(","):
        a, _, b = part.partition(":")
        lo, hi = sorted((int(a), int(b or a)))
        out.extend(range(lo, hi + 1))
    return out


def expand_set(s):
    return set(expand_list(s))


def client_ctx():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


# --------------------------------------------------------------------------
# the server


@pytest.fixture(scope="module")
def pw_hash():
    p = subprocess.run([POSTERN_BIN, "hash-password"], input=PASSWORD.encode() + b"\n",
                       capture_output=True, timeout=TIMEOUT)
    assert p.returncode == 0, p.stderr
    return p.stdout.decode().strip()


class ImapServer:
    """A postern with an SMTP listener (srv.port), an IMAP listener with
    STARTTLS (self.imap), one with implicit TLS (self.imaps) and a POP3
    listener (self.pop3)."""

    def __init__(self, make_server, pw_hash, plaintext_loopback=True, auth=None, tls=None, extra=None):
        over = {"users": [{"address": ALICE, "password": pw_hash}, {"address": BOB, "password": pw_hash}],
                "auth": {"plaintext_loopback": plaintext_loopback, "failure_delay_ms": 10, **(auth or {})},
                **(extra or {})}
        if tls is not None:
            over["tls"] = tls
        srv = make_server(over, start=False)
        self.imap, self.imaps, self.pop3 = free_port(), free_port(), free_port()
        srv.config["listeners"] = [
            {"address": f"127.0.0.1:{srv.port}", "mode": "smtp"},
            {"address": f"127.0.0.1:{self.imap}", "mode": "imap"},
            {"address": f"127.0.0.1:{self.imaps}", "mode": "imap", "tls": "implicit"},
            {"address": f"127.0.0.1:{self.pop3}", "mode": "pop3"},
        ]
        srv.config_path.write_text(json.dumps(srv.config, indent=2))
        srv.start()
        self.srv = srv

    def folder_dir(self, rcpt, folder="INBOX"):
        base = self.srv.maildir(rcpt)
        return base if folder == "INBOX" else base / ("." + folder)

    def files(self, rcpt, folder="INBOX"):
        """{unique name: (path, bytes)} of a folder's messages (new/ and cur/)."""
        out = {}
        d = self.folder_dir(rcpt, folder)
        for sub in ("new", "cur"):
            if (d / sub).is_dir():
                for p in (d / sub).iterdir():
                    out[unique(p)] = (p, p.read_bytes())
        return out

    def by_msgid(self, rcpt, folder="INBOX"):
        """{Message-ID: (path, bytes)} of a folder's messages."""
        out = {}
        for path, data in self.files(rcpt, folder).values():
            out[msgid_of(data)] = (path, data)
        return out

    def deliver(self, rcpt, messages):
        """Sends the messages to rcpt over SMTP one by one, each after the
        previous is in the Maildir; returns by_msgid()."""
        for m in messages:
            before = len(self.files(rcpt))
            with smtplib.SMTP("127.0.0.1", self.srv.port, local_hostname="client.test", timeout=TIMEOUT) as s:
                s.sendmail("sender@remote.test", [rcpt], m, mail_options=["BODY=8BITMIME"])
            wait_until(lambda: len(self.files(rcpt)) == before + 1, TIMEOUT, "delivery into the Maildir")
        return self.by_msgid(rcpt)

    def imaplib(self):
        return imaplib.IMAP4("127.0.0.1", self.imap, timeout=TIMEOUT)

    def imaplib_ssl(self):
        return imaplib.IMAP4_SSL("127.0.0.1", self.imaps, ssl_context=client_ctx(), timeout=TIMEOUT)

    def raw(self, tls=False):
        return RawImap(self.imaps if tls else self.imap, tls=tls)

    def session(self, user=ALICE, folder=None):
        """A raw session, logged in (plaintext_loopback), optionally with a
        folder selected."""
        c = self.raw()
        c.login(user)
        if folder is not None:
            c.ok(f'SELECT "{folder}"')
        return c


@pytest.fixture
def imap(make_server, pw_hash):
    return ImapServer(make_server, pw_hash)


def msg(n, subject=None, body=None, **kw):
    """Message n: Message-ID <m{n}@client.test>."""
    return make_message(subject or f"message {n}", body if body is not None else [f"body of message {n}", "end"],
                        msgid=f"m{n}@client.test", **kw)


# What a reader must give back exactly: dot lines, 8-bit text, a long line.
MESSAGES = [
    msg(1, "first", ["Hello.", ".hidden line", "..two dots", ".", "end"]),
    msg(2, "second", ["caf\u00e9 \u2014 8-bit".encode().decode("latin-1"), "x" * 900]),
    msg(3, "third", ["plain body"]),
]


# --------------------------------------------------------------------------
# login: plain (loopback), STARTTLS, IMAPS, SASL-IR, failures


def test_logindisabled_before_starttls_then_imaplib_logs_in_over_tls(make_server, pw_hash):
    imap = ImapServer(make_server, pw_hash, plaintext_loopback=False)
    stored = imap.deliver(ALICE, MESSAGES[:1])
    m = imap.imaplib()
    assert m.welcome.startswith(b"* OK"), m.welcome
    caps = m.capabilities
    assert {"IMAP4REV1", "IMAP4REV2", "STARTTLS", "LOGINDISABLED"} <= set(caps), caps
    with pytest.raises(imaplib.IMAP4.error):  # RFC 9051 6.2.3: LOGIN refused in clear
        m.login(ALICE, PASSWORD)
    try:   # AUTHENTICATE PLAIN with an initial response: refused too (NO, or BAD which imaplib raises)
        typ, data = m._simple_command("AUTHENTICATE", "PLAIN",
                                      base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode())
    except imaplib.IMAP4.error as e:
        typ, data = "BAD", [str(e)]
    assert typ != "OK", data
    assert m.state == "NONAUTH"
    m.starttls(client_ctx())
    caps = m.capabilities  # imaplib asks again after TLS (RFC 9051 6.2.1)
    assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps and "AUTH=PLAIN" in caps, caps
    typ, _ = m.login(ALICE, PASSWORD)
    assert typ == "OK"
    typ, data = m.select("INBOX")
    assert (typ, data) == ("OK", [b"1"])
    (path, data), = stored.values()
    f = imaplib_fetch(m, "1", "(BODY.PEEK[] RFC822.SIZE)")
    assert f[1]["BODY[]"] == data and int(f[1]["RFC822.SIZE"]) == len(data)
    assert m.logout()[0] == "BYE"


def test_plaintext_loopback_login_and_the_advertised_capabilities(imap):
    m = imap.imaplib()
    pre = set(m.capabilities)
    assert {"IMAP4REV1", "IMAP4REV2", "AUTH=PLAIN", "SASL-IR"} <= pre, pre
    assert "LOGINDISABLED" not in pre, pre
    m.login(ALICE, PASSWORD)
    typ, data = m.capability()
    assert typ == "OK"
    post = set(data[0].decode().upper().split())
    want = {"IMAP4REV1", "IMAP4REV2", "LITERAL+", "ID", "ENABLE", "NAMESPACE", "IDLE", "UNSELECT", "UIDPLUS",
            "MOVE", "SPECIAL-USE", "LIST-EXTENDED", "LIST-STATUS", "ESEARCH", "SEARCHRES", "CHILDREN",
            "STATUS=SIZE", "UTF8=ACCEPT"}
    assert want <= post, want - post
    limit = [c for c in post if c.startswith("APPENDLIMIT=")]
    assert len(limit) == 1 and int(limit[0].split("=")[1]) > 0, post
    # an empty mailbox (no Maildir yet) selects fine
    typ, data = m.select("INBOX")
    assert (typ, data) == ("OK", [b"0"])
    assert m.search(None, "ALL") == ("OK", [b""])
    m.logout()


def test_imaps_with_authenticate_plain_initial_response_and_continuation(make_server, pw_hash):
    imap = ImapServer(make_server, pw_hash, plaintext_loopback=False)
    stored = imap.deliver(ALICE, MESSAGES[1:2])
    ir = base64.b64encode(f"\0{ALICE}\0{PASSWORD}".encode()).decode()
    with imap.raw(tls=True) as c:
        assert c.greeting.startswith(b"* OK"), c.greeting
        caps = set(x.upper() for x in c.capabilities())
        assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps and {"AUTH=PLAIN", "SASL-IR"} <= caps, caps
        # RFC 4959: the initial response on the command line, no continuation
        r = c.command(f"AUTHENTICATE PLAIN {ir}")   # a '+' here would fail in finish()
        assert r.status == "OK", r
        r = c.ok("SELECT INBOX")
        assert numbered(r.untagged, "EXISTS") == [1]
        c.ok("LOGOUT")
    # (at most two failures per connection: the third would end it, auth.max_failures)
    with imap.raw(tls=True) as c:
        # a cancelled exchange (RFC 9051 6.2.2: "*" -> BAD)
        tag = c.tag()
        c.send(f"{tag} AUTHENTICATE PLAIN\r\n")
        assert c.read().startswith(b"+"), "no continuation for AUTHENTICATE without an initial response"
        c.send("*\r\n")
        r = c.finish(tag)
        assert r.status == "BAD", r
        # an authorization identity other than the authenticated one: refused (RFC 4616 2)
        zid = base64.b64encode(f"{BOB}\0{ALICE}\0{PASSWORD}".encode()).decode()
        r = c.command(f"AUTHENTICATE PLAIN {zid}")
        assert r.status == "NO", r
    with imap.raw(tls=True) as c:
        # an unknown user and a wrong password look the same (no user enumeration)
        r1 = c.command('LOGIN "nobody@example.test" "secret"')
        r2 = c.command('LOGIN "alice@example.test" "not the password"')
        assert (r1.status, r1.code) == (r2.status, r2.code) == ("NO", "AUTHENTICATIONFAILED"), (r1, r2)
        assert r1.tagged.split(b" ", 1)[1] == r2.tagged.split(b" ", 1)[1], (r1, r2)
    # imaplib's AUTHENTICATE waits for the empty challenge and answers it
    m = imap.imaplib_ssl()
    typ, _ = m.authenticate("PLAIN", lambda challenge: f"\0{ALICE}\0{PASSWORD}".encode())
    assert typ == "OK"
    m.select("INBOX", readonly=True)
    (path, data), = stored.values()
    assert imaplib_fetch(m, "1", "(BODY[])")[1]["BODY[]"] == data
    assert letters(path) == "" and path.parent.name in ("new", "cur"), "EXAMINE + BODY[] set \\Seen"
    m.logout()


def test_failed_logins_get_authenticationfailed_delay_and_lockout(make_server, pw_hash):
    imap = ImapServer(make_server, pw_hash, auth={"max_failures": 2, "ip_max_failures": 3, "ip_window_s": 60})
    m = imap.imaplib()
    for i in range(2):
        with pytest.raises(imaplib.IMAP4.error) as e:
            m.login(ALICE, "wrong password %d" % i)
        assert b"[AUTHENTICATIONFAILED]" in e.value.args[0], e.value.args
    # max_failures on one connection: closed
    with pytest.raises((imaplib.IMAP4.abort, imaplib.IMAP4.error, OSError, EOFError)):
        m.noop()
        m.noop()
    # a third failure from this address locks it out, even with the right password
    m = imap.imaplib()
    with pytest.raises(imaplib.IMAP4.error):
        m.login(ALICE, "wrong again")
    with pytest.raises(imaplib.IMAP4.error):
        m.login(ALICE, PASSWORD)
    log = imap.srv.log()
    assert "wrong password" not in log and "wrong again" not in log
    assert PASSWORD not in log.replace("password", ""), "a password in the log"
    assert any(e.get("result") == "locked" for e in imap.srv.log_events("auth")), log[-3000:]


def test_starttls_discards_commands_pipelined_after_it(make_server, pw_hash):
    imap = ImapServer(make_server, pw_hash, plaintext_loopback=False)
    with imap.raw() as c:
        c.send(f'A1 STARTTLS\r\nA2 LOGIN "{ALICE}" "{PASSWORD}"\r\nA3 SELECT INBOX\r\n')   # one write
        r = c.finish("A1")
        assert r.status == "OK", r
        assert c.buf == b"", f"bytes after the STARTTLS OK: {c.buf!r}"
        try:
            c.sock = client_ctx().wrap_socket(c.sock, server_hostname=HOSTNAME)
        except (ssl.SSLError, OSError) as e:
            # dropping the connection is a defence too: nothing ran
            print(f"the server ended the connection after the pipelined STARTTLS: {e!r}")
            assert not [e for e in imap.srv.log_events("auth") if e.get("result") == "ok"]
            return
        # nothing may arrive inside TLS before we say something
        c.sock.settimeout(1.0)
        with pytest.raises(socket.timeout):
            got = c.sock.recv(4096)
            pytest.fail(f"the server answered injected commands inside TLS: {got!r}")
        # still not authenticated: the pipelined LOGIN never ran
        r = c.command("SELECT INBOX")
        assert r.status in ("BAD", "NO"), r
        caps = set(x.upper() for x in c.capabilities())
        assert "STARTTLS" not in caps and "LOGINDISABLED" not in caps, caps
        assert c.command("STARTTLS").status in ("BAD", "NO")   # not twice
        c.login()
        c.ok("SELECT INBOX")
    assert [e.get("result") for e in imap.srv.log_events("auth")].count("ok") <= 1


# --------------------------------------------------------------------------
# SELECT, EXAMINE, STATUS


def test_select_examine_and_status_report_the_maildir(imap):
    stored = imap.deliver(ALICE, MESSAGES)
    size = sum(len(d) for _, d in stored.values())
    with imap.session() as c:
        r = c.ok("SELECT INBOX")
        s = select_info(r)
        assert s["exists"] == [3], r
        assert SYSTEM_FLAGS <= s["flags"], s
        assert SYSTEM_FLAGS | {"\\*"} <= s["permanentflags"], s
        assert s["uidvalidity"] > 0 and s["uidnext"] == 4, s
        assert r.code.upper() == "READ-WRITE", r
        assert {u for _, u in c.msgmap().values()} == {1, 2, 3}
        uidvalidity = s["uidvalidity"]
        r = c.ok("STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN SIZE)")
        assert status_of(r.untagged) == {"INBOX": {"MESSAGES": 3, "UIDNEXT": 4, "UIDVALIDITY": uidvalidity,
                                                   "UNSEEN": 3, "SIZE": size}}, r
        c.ok("FETCH 1 (BODY[])")   # one seen
        r = c.ok("EXAMINE INBOX")
        s = select_info(r)
        assert r.code.upper() == "READ-ONLY" and s["exists"] == [3] and s["uidvalidity"] == uidvalidity, r
        before = {u: letters(p) for u, (p, _) in imap.files(ALICE).items()}
        r = c.command("STORE 2 +FLAGS (\\Flagged)")
        assert r.status in ("NO", "OK") and not fetches(r.untagged), r   # refused or ignored (RFC 9051 6.3.3)
        c.ok("FETCH 2:3 (BODY[])")   # read-only: no implicit \Seen
        assert {u: letters(p) for u, (p, _) in imap.files(ALICE).items()} == before
        c.ok("CLOSE")
        r = c.ok("STATUS INBOX (MESSAGES UNSEEN)")
        assert status_of(r.untagged) == {"INBOX": {"MESSAGES": 3, "UNSEEN": 2}}, r
        # STATUS of the selected folder's siblings, and of a missing one
        r = c.command("STATUS Nonexistent (MESSAGES)")
        assert r.status == "NO", r
        r = c.command("SELECT Nonexistent")
        assert r.status == "NO" and r.code == "NONEXISTENT", r


# --------------------------------------------------------------------------
# FETCH


def test_fetch_gives_back_the_maildir_files_byte_for_byte(imap):
    stored = imap.deliver(ALICE, MESSAGES)
    m = imap.imaplib()
    m.login(ALICE, PASSWORD)
    assert m.select("INBOX") == ("OK", [b"3"])
    got = imaplib_fetch(m, "1:*", "(UID FLAGS INTERNALDATE RFC822.SIZE BODY.PEEK[])")
    assert sorted(got) == [1, 2, 3]
    now = datetime.datetime.now(datetime.timezone.utc)
    current = imap.by_msgid(ALICE)   # SELECT may have moved them from new/ to cur/
    for seq, items in got.items():
        path, data = stored[msgid_of(items["BODY[]"])]
        assert items["BODY[]"] == data, f"message {seq} differs from {path}"
        assert int(items["RFC822.SIZE"]) == len(data) == current[msgid_of(data)][0].stat().st_size
        assert flagset(items["FLAGS"]) == set()
        t = imaplib.Internaldate2tuple(b'INTERNALDATE "' + items["INTERNALDATE"] + b'"')
        assert t is not None, items["INTERNALDATE"]
        when = datetime.datetime.fromtimestamp(time.mktime(t), datetime.timezone.utc)
        assert abs((now - when).total_seconds()) < 86400, items["INTERNALDATE"]
    data = stored["m1@client.test"][1]
    seq = next(s for s, i in got.items() if i["BODY[]"] == data)
    head, body = data.split(b"\r\n\r\n", 1)
    head += b"\r\n\r\n"
    f = imaplib_fetch(m, str(seq), "(BODY.PEEK[HEADER] BODY.PEEK[TEXT] BODY.PEEK[]<0.20> BODY.PEEK[TEXT]<7.1000>"
                                    " BODY.PEEK[HEADER.FIELDS (SUBJECT MESSAGE-ID)] RFC822.HEADER"
                                    " BODY.PEEK[HEADER.FIELDS.NOT (RECEIVED RETURN-PATH DELIVERED-TO)])")[seq]
    assert f["BODY[HEADER]"] == head
    assert f["RFC822.HEADER"] == head
    assert f["BODY[TEXT]"] == body
    assert f["BODY[]<0>"] == data[:20]
    assert f["BODY[TEXT]<7>"] == body[7:1007]
    assert f["BODY[HEADER.FIELDS (SUBJECT MESSAGE-ID)]"] == b"Subject: first\r\nMessage-ID: <m1@client.test>\r\n\r\n"
    not_fields = f["BODY[HEADER.FIELDS.NOT (RECEIVED RETURN-PATH DELIVERED-TO)]"]
    assert not_fields == head.split(b"\r\nFrom: ", 1)[1].join([b"From: ", b""]), not_fields
    assert letters(imap.by_msgid(ALICE)["m1@client.test"][0]) == "", "BODY.PEEK / RFC822.HEADER set \\Seen"
    f = imaplib_fetch(m, str(seq), "(RFC822.TEXT)")[seq]
    assert f["RFC822.TEXT"] == body
    m.logout()


def test_fetch_and_search_edge_cases(imap):
    stored = imap.deliver(ALICE, MESSAGES)
    with imap.session() as c:
        r = c.ok("SELECT inbox")   # INBOX is case-insensitive (RFC 9051 5.1)
        assert numbered(r.untagged, "EXISTS") == [3], r
        r = c.ok('LIST "" "inbox"')
        assert list(list_entries(r.untagged)) == ["INBOX"], r
        ids = c.msgmap()
        top = max(u for _, u in ids.values())
        # "*" is the highest UID, so 999:* is top:999 and names the last message (RFC 9051 6.4.8)
        r = c.ok("UID FETCH 999:* (UID)")
        assert [int(i["UID"]) for i in fetches(r.untagged).values()] == [top], r
        r = c.ok("UID SEARCH UID 999:*")
        assert search_result(r.untagged) == {top}, r
        seq1 = ids["m3@client.test"][0]
        data = stored["m3@client.test"][1]
        body = data.split(b"\r\n\r\n", 1)[1]
        r = c.ok(f"FETCH {seq1} (BODY.PEEK[HEADER.FIELDS (X-NOT-PRESENT)] BODY.PEEK[]<100000.10> BODY.PEEK[1]"
                 f" BODY.PEEK[]<{len(data) - 5}.100>)")
        f = fetches(r.untagged)[seq1]
        assert f["BODY[HEADER.FIELDS (X-NOT-PRESENT)]"] == b"\r\n", f   # just the blank line
        assert f["BODY[]<100000>"] == b"", f                              # origin past the end: empty
        assert f["BODY[1]"] == body, f                                     # part 1 of a single-part message
        assert f[f"BODY[]<{len(data) - 5}>"] == data[-5:], f              # cut short at the end
        r = c.ok(f"FETCH {seq1} FAST")
        assert set(fetches(r.untagged)[seq1]) == {"FLAGS", "INTERNALDATE", "RFC822.SIZE"}, r
        r = c.ok(f"FETCH {seq1} ALL")
        assert set(fetches(r.untagged)[seq1]) == {"FLAGS", "INTERNALDATE", "RFC822.SIZE", "ENVELOPE"}, r
        r = c.command("FETCH 4 (FLAGS)")
        assert r.status in ("BAD", "NO") and not fetches(r.untagged), r   # no message 4
        r = c.command("FETCH 1 (NOSUCHITEM)")
        assert r.status == "BAD", r
        assert all(letters(p) == "" for p, _ in imap.files(ALICE).values())


def test_a_4mb_message_over_imaps_and_back_by_append(imap):
    big = msg(80, "big", [f"{n:08d} " + "x" * 66 for n in range(55000)])
    assert len(big) > 4_000_000
    stored = imap.deliver(ALICE, [big])
    (path, data), = stored.values()
    m = imap.imaplib_ssl()
    m.login(ALICE, PASSWORD)
    m.select("INBOX")
    f = imaplib_fetch(m, "1", "(RFC822.SIZE BODY.PEEK[])")[1]
    assert int(f["RFC822.SIZE"]) == len(data) and f["BODY[]"] == data
    pieces = b""
    for origin in range(0, len(data), 1_000_000):   # how some clients fetch big messages
        f = imaplib_fetch(m, "1", f"(BODY.PEEK[]<{origin}.1000000>)")[1]
        pieces += f[f"BODY[]<{origin}>"]
    assert pieces == data
    typ, resp = m.append("Drafts", "(\\Draft)", None, big)
    assert typ == "OK", resp
    (dpath, ddata), = imap.files(ALICE, "Drafts").values()
    assert ddata == big and letters(dpath) == "D"
    m.logout()


def test_body_peek_leaves_seen_and_body_sets_it_in_the_file_name(imap):
    imap.deliver(ALICE, MESSAGES[:1])
    (u, (path, data)), = imap.files(ALICE).items()
    with imap.session(folder="INBOX") as c:
        r = c.ok("FETCH 1 (BODY.PEEK[])")
        assert fetches(r.untagged)[1]["BODY[]"] == data, r
        assert c.flags(1) == set()
        (path, _), = imap.files(ALICE).values()
        assert letters(path) == "", path
        r = c.ok("FETCH 1 (BODY[])")
        assert fetches(r.untagged)[1]["BODY[]"] == data
        (path, _), = imap.files(ALICE).values()
        assert path.parent.name == "cur" and path.name == f"{u}:2,S", path
        assert c.flags(1) == {"\\Seen"}
        r = c.ok("STORE 1 -FLAGS (\\Seen)")
        r = c.ok("FETCH 1 (RFC822)")
        assert fetches(r.untagged)[1]["RFC822"] == data
        (path, _), = imap.files(ALICE).values()
        assert path.name == f"{u}:2,S", path


def mime(headers, body):
    return ("\r\n".join(headers) + "\r\n\r\n").encode() + body


def multipart_body(boundary, parts, preamble=b""):
    b = boundary.encode()
    return preamble + b"".join(b"--" + b + b"\r\n" + p + b"\r\n" for p in parts) + b"--" + b + b"--\r\n"


TEXT_PLAIN = "Gr\u00fc\u00dfe\r\nline two\r\n".encode()
TEXT_HTML = b"<p>hi</p>\r\n"
INNER_BODY = b"inner body\r\n"
INNER_HEAD = ["From: Bob <bob@example.test>", "To: alice@example.test", "Subject: inner",
              "Date: Wed, 25 Nov 2026 10:00:00 +0100", "Message-ID: <inner@client.test>",
              "Content-Type: text/plain; charset=us-ascii"]
INNER = mime(INNER_HEAD, INNER_BODY)
ATTACHMENT = b"AAECAwQF\r\n"
PART1 = mime(['Content-Type: multipart/alternative; boundary="inner"'], multipart_body("inner", [
    mime(["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit"], TEXT_PLAIN),
    mime(["Content-Type: text/html; charset=utf-8"], TEXT_HTML)]))
PART2 = mime(["Content-Type: message/rfc822"], INNER)
PART3_HEAD = ['Content-Type: application/octet-stream; name="data.bin"',
              'Content-Disposition: attachment; filename="data.bin"', "Content-Transfer-Encoding: base64"]
PART3 = mime(PART3_HEAD, ATTACHMENT)
MULTIPART = mime([
    "From: =?UTF-8?Q?J=C3=B6rg?= <joerg@remote.test>",
    "To: Alice <alice@example.test>, bob@example.test",
    'Cc: "Team, The" <team@example.test>',
    "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?= and a report",
    "Date: Thu, 26 Nov 2026 07:00:00 +0000",
    "Message-ID: <mp1@client.test>",
    "In-Reply-To: <orig@client.test>",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="outer"',
], multipart_body("outer", [PART1, PART2, PART3], preamble=b"This is a MIME message.\r\n"))


def canon_params(p):
    if p is None:
        return {}
    p = norm(p)
    return {p[k].upper(): (p[k + 1].lower() if p[k].upper() == "CHARSET" else p[k + 1]) for k in range(0, len(p), 2)}


def canon_body(b):
    """A BODY / BODYSTRUCTURE list -> a dict with the case-insensitive parts
    upper-cased; extension data under 'ext' keys only when present."""
    if isinstance(b[0], list):
        k = 0
        parts = []
        while isinstance(b[k], list):
            parts.append(canon_body(b[k]))
            k += 1
        d = {"type": "MULTIPART", "subtype": norm(b[k]).upper(), "parts": parts}
        ext = b[k + 1:]
        if ext:
            d["params"] = canon_params(ext[0])
        if len(ext) > 1:
            d["dsp"] = None if ext[1] is None else [norm(ext[1][0]).upper(), canon_params(ext[1][1])]
        return d
    d = {"type": norm(b[0]).upper(), "subtype": norm(b[1]).upper(), "params": canon_params(b[2]),
         "id": norm(b[3]), "desc": norm(b[4]), "enc": norm(b[5]).upper(), "size": int(b[6])}
    rest = b[7:]
    if d["type"] == "TEXT":
        d["lines"] = int(rest[0])
        rest = rest[1:]
    elif (d["type"], d["subtype"]) == ("MESSAGE", "RFC822"):
        d["envelope"] = norm(rest[0])
        d["body"] = canon_body(rest[1])
        d["lines"] = int(rest[2])
        rest = rest[3:]
    if rest:
        d["md5"] = norm(rest[0])
    if len(rest) > 1:
        d["dsp"] = None if rest[1] is None else [norm(rest[1][0]).upper(), canon_params(rest[1][1])]
    return d


def leaf(type_, subtype, params, enc, body, lines=True):
    d = {"type": type_, "subtype": subtype, "params": params, "id": None, "desc": None, "enc": enc,
         "size": len(body)}
    if lines:
        d["lines"] = body.count(b"\n")
    return d


def basic_structure():
    """The expected BODY (no extension data) of MULTIPART."""
    inner_env = ["Wed, 25 Nov 2026 10:00:00 +0100", "inner", [["Bob", None, "bob", "example.test"]],
                 [["Bob", None, "bob", "example.test"]], [["Bob", None, "bob", "example.test"]],
                 [[None, None, "alice", "example.test"]], None, None, None, "<inner@client.test>"]
    message = leaf("MESSAGE", "RFC822", {}, "7BIT", INNER, lines=False)
    message.update(envelope=inner_env, body=leaf("TEXT", "PLAIN", {"CHARSET": "us-ascii"}, "7BIT", INNER_BODY),
                   lines=INNER.count(b"\n"))
    return {"type": "MULTIPART", "subtype": "MIXED", "parts": [
        {"type": "MULTIPART", "subtype": "ALTERNATIVE", "parts": [
            leaf("TEXT", "PLAIN", {"CHARSET": "utf-8"}, "8BIT", TEXT_PLAIN),
            leaf("TEXT", "HTML", {"CHARSET": "utf-8"}, "7BIT", TEXT_HTML)]},
        message,
        leaf("APPLICATION", "OCTET-STREAM", {"NAME": "data.bin"}, "BASE64", ATTACHMENT, lines=False)]}


def strip_ext(d):
    out = {k: v for k, v in d.items() if k not in ("md5", "dsp", "lang", "loc")}
    if out["type"] == "MULTIPART":
        out.pop("params", None)
        out["parts"] = [strip_ext(p) for p in out["parts"]]
    if "body" in out:
        out["body"] = strip_ext(out["body"])
    return out


def test_bodystructure_envelope_and_parts_of_a_multipart_sent_over_smtp(imap):
    stored = imap.deliver(ALICE, [MULTIPART])
    (path, data), = stored.values()
    assert data.endswith(MULTIPART)
    m = imap.imaplib()
    m.login(ALICE, PASSWORD)
    m.select("INBOX")
    f = imaplib_fetch(m, "1", "(ENVELOPE BODY BODYSTRUCTURE)")[1]
    assert norm(f["ENVELOPE"]) == [
        "Thu, 26 Nov 2026 07:00:00 +0000",
        "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?= and a report",   # the header as it is, not decoded
        [["=?UTF-8?Q?J=C3=B6rg?=", None, "joerg", "remote.test"]],
        [["=?UTF-8?Q?J=C3=B6rg?=", None, "joerg", "remote.test"]],   # sender := from
        [["=?UTF-8?Q?J=C3=B6rg?=", None, "joerg", "remote.test"]],   # reply-to := from
        [["Alice", None, "alice", "example.test"], [None, None, "bob", "example.test"]],
        [["Team, The", None, "team", "example.test"]],
        None,
        "<orig@client.test>",
        "<mp1@client.test>"], f["ENVELOPE"]
    want = basic_structure()
    assert canon_body(f["BODY"]) == want, f["BODY"]
    full = canon_body(f["BODYSTRUCTURE"])
    assert strip_ext(full) == want, f["BODYSTRUCTURE"]
    # extension data (RFC 9051 7.5.2: BODYSTRUCTURE carries it)
    assert full["params"] == {"BOUNDARY": "outer"}, full
    assert full["parts"][0]["params"] == {"BOUNDARY": "inner"}, full
    assert full["parts"][2].get("dsp") == ["ATTACHMENT", {"FILENAME": "data.bin"}], full["parts"][2]
    # sections, nested and of the message/rfc822 part
    sections = {
        "1.1": TEXT_PLAIN, "1.2": TEXT_HTML, "2": INNER, "2.HEADER": INNER.split(b"\r\n\r\n")[0] + b"\r\n\r\n",
        "2.TEXT": INNER_BODY, "2.1": INNER_BODY, "3": ATTACHMENT,
        "3.MIME": mime(PART3_HEAD, b""), "1.MIME": b'Content-Type: multipart/alternative; boundary="inner"\r\n\r\n',
        "TEXT": MULTIPART.split(b"\r\n\r\n", 1)[1],
    }
    items = " ".join(f"BODY.PEEK[{s}]" for s in sections)
    f = imaplib_fetch(m, "1", f"({items})")[1]
    for s, want_bytes in sections.items():
        assert f[f"BODY[{s}]"] == want_bytes, (s, f[f"BODY[{s}]"])
    assert letters(imap.files(ALICE)[unique(path)][0]) == ""
    m.logout()


# --------------------------------------------------------------------------
# STORE, keywords


def test_store_sets_maildir_letters_and_keywords_survive_reconnect_and_restart(imap):
    imap.deliver(ALICE, MESSAGES[:2])
    with imap.session(folder="INBOX") as c:
        ids = c.msgmap()
        seq, uid = ids["m1@client.test"]

        def file_letters():
            return letters(imap.by_msgid(ALICE)["m1@client.test"][0])
        steps = [
            (f"STORE {seq} +FLAGS (\\Flagged \\Answered)", {"\\Flagged", "\\Answered"}, "FR"),
            (f"STORE {seq} FLAGS (\\Seen \\Deleted \\Draft)", {"\\Seen", "\\Deleted", "\\Draft"}, "DST"),
            (f"STORE {seq} -FLAGS (\\Deleted)", {"\\Seen", "\\Draft"}, "DS"),
            (f"UID STORE {uid} +FLAGS (\\Flagged)", {"\\Seen", "\\Draft", "\\Flagged"}, "DFS"),
        ]
        for cmd, want, want_letters in steps:
            r = c.ok(cmd)
            f = fetches(r.untagged)
            assert list(f) == [seq] and flagset(f[seq]["FLAGS"]) == want, (cmd, r)
            if cmd.startswith("UID"):
                assert int(f[seq]["UID"]) == uid, r   # RFC 9051 6.4.9: UID in a UID STORE's FETCH
            assert file_letters() == want_letters, cmd
        r = c.ok(f"STORE {seq} -FLAGS.SILENT (\\Draft)")
        assert fetches(r.untagged) == {}, r
        assert file_letters() == "FS"
        r = c.ok(f"STORE {seq} +FLAGS ($Forwarded Project-X)")
        assert flagset(fetches(r.untagged)[seq]["FLAGS"]) == {"\\Seen", "\\Flagged", "$Forwarded", "Project-X"}, r
        assert file_letters() == "FS"
        c.ok("LOGOUT")
    assert (imap.folder_dir(ALICE) / "postern-uidlist").is_file()
    want = {"\\Seen", "\\Flagged", "$Forwarded", "Project-X"}
    with imap.session(folder="INBOX") as c:
        assert c.flags(uid, uid=True) == want
        other = c.msgmap()["m2@client.test"][1]
        assert c.flags(other, uid=True) == set()
    imap.srv.restart()
    with imap.session(folder="INBOX") as c:
        assert c.flags(uid, uid=True) == want
        c.ok(f"UID STORE {uid} -FLAGS (Project-X)")
        assert c.flags(uid, uid=True) == want - {"Project-X"}
    with imap.session(folder="INBOX") as c:
        assert c.flags(uid, uid=True) == want - {"Project-X"}


# --------------------------------------------------------------------------
# APPEND, COPY, MOVE, EXPUNGE


def test_append_with_flags_and_date_reports_appenduid_and_writes_the_file(imap):
    m = imap.imaplib()
    m.login(ALICE, PASSWORD)
    when = datetime.datetime(2026, 3, 5, 14, 30, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    body = msg(10, "draft copy")
    typ, data = m.append("Sent", "(\\Seen \\Flagged)", imaplib.Time2Internaldate(when), body)
    assert typ == "OK", data
    code = code_of(b"A OK " + data[0])
    assert code and code.upper().startswith("APPENDUID "), data
    uidvalidity, uid = map(int, code.split()[1:])
    sent = imap.folder_dir(ALICE, "Sent")
    assert all((sent / d).is_dir() for d in ("cur", "new", "tmp")), sent
    (path, data), = imap.files(ALICE, "Sent").values()
    assert data == body and letters(path) == "FS" and path.parent.name == "cur", path
    # the keyword and INBOX
    typ, data = m.append("INBOX", "($Important)", None, msg(11))
    assert typ == "OK" and code_of(b"A OK " + data[0]).upper().startswith("APPENDUID "), data
    # a missing folder: TRYCREATE, nothing created
    typ, data = m.append("Nowhere", None, None, msg(12))
    assert typ == "NO" and data[0].startswith(b"[TRYCREATE]"), (typ, data)
    assert not imap.folder_dir(ALICE, "Nowhere").exists()
    typ, data = m.select("Sent")
    assert (typ, data) == ("OK", [b"1"])
    assert m.response("UIDVALIDITY")[1] == [str(uidvalidity).encode()]
    f = imaplib_fetch(m, str(uid), "(FLAGS INTERNALDATE RFC822.SIZE)", uid=True)
    (items,) = f.values()
    assert flagset(items["FLAGS"]) == {"\\Seen", "\\Flagged"}
    assert int(items["RFC822.SIZE"]) == len(body)
    got = imaplib.Internaldate2tuple(b'INTERNALDATE "' + items["INTERNALDATE"] + b'"')
    assert time.mktime(got) == when.timestamp(), items["INTERNALDATE"]
    m.select("INBOX")
    (items,) = imaplib_fetch(m, "1", "(FLAGS)").values()
    assert flagset(items["FLAGS"]) == {"$Important"}
    m.logout()
    # APPEND to the selected folder: EXISTS with the APPEND or at the next command
    with imap.session(folder="INBOX") as c:
        r = c.ok("APPEND INBOX", Lit(msg(13)))
        n = numbered(r.untagged, "EXISTS") + numbered(c.ok("NOOP").untagged, "EXISTS")
        assert n == [2], n
        assert set(c.msgmap()) == {"m11@client.test", "m13@client.test"}


def test_copy_and_move_report_copyuid_and_move_the_files(imap):
    stored = imap.deliver(ALICE, MESSAGES)
    with imap.session(folder="INBOX") as c:
        uidvalidity = select_info(c.ok("SELECT INBOX"))["uidvalidity"]
        ids = c.msgmap()
        (_, u1), (s2, u2), (_, u3) = ids["m1@client.test"], ids["m2@client.test"], ids["m3@client.test"]
        c.ok(f"UID STORE {u1} +FLAGS.SILENT (\\Flagged $Label1)")
        c.ok("CREATE Archive")
        r = c.ok(f"UID COPY {u1} Archive")
        word, v, src, dst = r.code.split()
        assert word.upper() == "COPYUID" and int(src) == u1, r
        archive_v, archive_uid = int(v), int(dst)
        (apath, adata), = imap.files(ALICE, "Archive").values()
        assert adata == stored["m1@client.test"][1] and letters(apath) == "F", apath
        assert "m1@client.test" in imap.by_msgid(ALICE)   # a copy: the original stays
        r = c.ok(f"UID MOVE {u2} Trash")
        cu = [x for x in codes(r.untagged) + [r.code or ""] if x.upper().startswith("COPYUID ")]
        assert len(cu) == 1 and int(cu[0].split()[2]) == u2, r
        trash_uid = int(cu[0].split()[3])
        assert numbered(r.untagged, "EXPUNGE") == [s2], r
        assert set(imap.by_msgid(ALICE)) == {"m1@client.test", "m3@client.test"}
        (tpath, tdata), = imap.files(ALICE, "Trash").values()
        assert tdata == stored["m2@client.test"][1]
        # to a missing folder: TRYCREATE, nothing moved
        for cmd in ("COPY", "MOVE"):
            r = c.command(f"UID {cmd} {u3} Nowhere")
            assert r.status == "NO" and r.code == "TRYCREATE", r
        assert not imap.folder_dir(ALICE, "Nowhere").exists()
        assert set(imap.by_msgid(ALICE)) == {"m1@client.test", "m3@client.test"}
        # sequence-number MOVE of the rest
        r = c.ok("MOVE 1:* Junk")
        assert after_expunges([1, 2], numbered(r.untagged, "EXPUNGE")) == [], r
        cu = [x for x in codes(r.untagged) + [r.code or ""] if x.upper().startswith("COPYUID ")]
        assert len(cu) == 1, r
        _, junk_v, src, dst = cu[0].split()
        moved = dict(zip(expand_list(src), expand_list(dst)))   # RFC 4315 3: in corresponding order
        assert sorted(moved) == sorted([u1, u3]) and len(set(moved.values())) == 2, r
        assert imap.files(ALICE) == {}
        assert set(imap.by_msgid(ALICE, "Junk")) == {"m1@client.test", "m3@client.test"}
        # the UIDs in COPYUID are the destination's
        r = c.ok("SELECT Archive")
        assert select_info(r)["uidvalidity"] == archive_v
        assert c.msgmap()["m1@client.test"][1] == archive_uid
        assert c.flags(archive_uid, uid=True) == {"\\Flagged", "$Label1"}   # keywords copied too
        r = c.ok("SELECT Junk")
        assert select_info(r)["uidvalidity"] == int(junk_v)
        junk = c.msgmap()
        assert {moved[u1]: "m1@client.test", moved[u3]: "m3@client.test"} == {u: k for k, (_, u) in junk.items()}
        assert c.flags(moved[u1], uid=True) == {"\\Flagged", "$Label1"}
        c.ok("SELECT Trash")
        assert c.msgmap() == {"m2@client.test": (1, trash_uid)}
    assert uidvalidity > 0


def test_expunge_uid_expunge_close_and_unselect_on_disk(imap):
    imap.deliver(ALICE, [msg(n) for n in range(1, 6)])
    with imap.session(folder="INBOX") as c:
        ids = c.msgmap()
        order = sorted(ids, key=lambda k: ids[k][0])   # Message-IDs by sequence number
        c.ok("STORE 2,3,5 +FLAGS.SILENT (\\Deleted)")
        for k in (1, 2, 4):   # 0-based: seq 2, 3, 5
            assert letters(imap.by_msgid(ALICE)[order[k]][0]) == "T"
        r = c.ok(f"UID EXPUNGE {ids[order[4]][1]}")
        assert numbered(r.untagged, "EXPUNGE") == [5], r
        assert set(imap.by_msgid(ALICE)) == set(order[:4])
        r = c.ok("EXPUNGE")
        assert after_expunges(order[:4], numbered(r.untagged, "EXPUNGE")) == [order[0], order[3]], r
        assert set(imap.by_msgid(ALICE)) == {order[0], order[3]}
        c.ok("STORE 1 +FLAGS.SILENT (\\Deleted)")
        r = c.ok("UNSELECT")
        assert not numbered(r.untagged, "EXPUNGE"), r
        assert set(imap.by_msgid(ALICE)) == {order[0], order[3]}
        c.ok("SELECT INBOX")
        c.ok("CHECK")
        r = c.ok("CLOSE")
        assert not numbered(r.untagged, "EXPUNGE"), r   # CLOSE expunges silently
        assert set(imap.by_msgid(ALICE)) == {order[3]}
        r = c.command("FETCH 1 (FLAGS)")
        assert r.status in ("BAD", "NO"), r   # no folder selected any more
        r = c.ok("STATUS INBOX (MESSAGES)")
        assert status_of(r.untagged) == {"INBOX": {"MESSAGES": 1}}


# --------------------------------------------------------------------------
# folders on disk


def test_create_rename_delete_folders_on_disk(imap):
    base = imap.srv.maildir(ALICE)
    with imap.session() as c:
        c.ok("CREATE Projects")
        c.ok("CREATE Projects.2026")
        for name in (".Projects", ".Projects.2026"):
            assert all((base / name / d).is_dir() for d in ("cur", "new", "tmp")), name
        r = c.command("CREATE Projects")
        assert r.status == "NO" and r.code == "ALREADYEXISTS", r
        r = c.command("CREATE INBOX")
        assert r.status == "NO", r
        r = c.ok('LIST "" "Projects*"')
        children = {n: a & {"\\haschildren", "\\hasnochildren"} for n, a in list_entries(r.untagged).items()}
        assert children == {"Projects": {"\\haschildren"}, "Projects.2026": {"\\hasnochildren"}}, r
        r = c.ok('LIST "" "Projects.%"')
        assert list(list_entries(r.untagged)) == ["Projects.2026"], r
        body = msg(20)
        r = c.ok("APPEND Projects.2026", Lit(body))
        assert r.code.upper().startswith("APPENDUID"), r
        c.ok("RENAME Projects Work")   # and its inferiors (RFC 9051 6.3.6)
        assert not (base / ".Projects").exists() and not (base / ".Projects.2026").exists()
        assert (base / ".Work").is_dir() and (base / ".Work.2026").is_dir()
        assert [d for _, d in imap.files(ALICE, "Work.2026").values()] == [body]
        r = c.ok('LIST "" "*"')
        names = set(list_entries(r.untagged))
        assert {"INBOX", "Work", "Work.2026"} <= names and not {"Projects", "Projects.2026"} & names, r
        c.ok("DELETE Work.2026")
        assert not (base / ".Work.2026").exists()
        for cmd in ("DELETE Nothing", "RENAME Nothing Else", "SELECT Nothing"):
            r = c.command(cmd)
            assert r.status == "NO" and r.code == "NONEXISTENT", (cmd, r)
        # the special-use folders exist for LIST before they do on disk; CREATE and RENAME agree
        assert not (base / ".Sent").exists() and not (base / ".Trash").exists()
        r = c.command("RENAME Work Sent")
        assert r.status == "NO" and r.code == "ALREADYEXISTS", r
        r = c.command("CREATE Trash")
        assert r.status == "NO" and r.code == "ALREADYEXISTS", r
        # non-ASCII: modified UTF-7 on the wire and on disk
        c.ok(f"CREATE {mutf7('Entwürfe')}")
        assert (base / ".Entw&APw-rfe" / "cur").is_dir(), sorted(p.name for p in base.iterdir())
        r = c.ok('LIST "" "Entw*"')
        assert list(list_entries(r.untagged)) == ["Entw&APw-rfe"], r
    with imap.session() as c:
        r = c.ok("ENABLE UTF8=ACCEPT")
        assert any(l.upper().startswith(b"* ENABLED") and b"UTF8=ACCEPT" in l.upper() for l in r.untagged), r
        r = c.ok('LIST "" "Entw*"')
        assert list(list_entries(r.untagged)) == ["Entwürfe"], r   # UTF-8 once enabled (RFC 6855 3)
        c.ok('CREATE "Größe"'.encode())
        assert (base / ("." + mutf7("Größe")) / "new").is_dir(), sorted(p.name for p in base.iterdir())
        c.ok('SELECT "Größe"'.encode())


def snapshot_tree(root):
    return sorted((str(p.relative_to(root)), p.is_dir()) for p in Path(root).rglob("*")
                  if "postern-uidlist" not in p.name and not p.name.endswith(".lock"))


def test_folder_names_cannot_reach_outside_the_users_maildir(imap):
    """Folder "x" is the directory ".x" beside INBOX's cur/, so a name like
    "./bob" would be ../bob, bob's INBOX, unless the server refuses it."""
    imap.deliver(BOB, [msg(90)])
    imap.deliver(ALICE, [msg(91)])
    bob_before = snapshot_tree(imap.srv.maildir(BOB))
    domain = imap.srv.maildir(ALICE).parent
    outside_before = sorted(p.name for p in domain.iterdir()), sorted(p.name for p in domain.parent.iterdir())
    hostile = ["./bob", "./../example.test/bob", "/bob", "./", ".", "..", "a/../../bob", "&AC8-bob",
               "Sent/../../bob", "./bob\u0000"]
    with imap.session() as c:
        for name in hostile:
            quoted = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
            for cmd in (f"SELECT {quoted}", f"EXAMINE {quoted}", f"STATUS {quoted} (MESSAGES)"):
                r = c.command(cmd)
                assert not numbered(r.untagged, "EXISTS") == [1] and not status_of(r.untagged), (cmd, r)
            for cmd in (f"CREATE {quoted}", f"DELETE {quoted}", f"RENAME {quoted} Stolen",
                        f"RENAME INBOX {quoted}", f"SUBSCRIBE {quoted}"):
                c.command(cmd)
            r = c.command(f"APPEND {quoted}", Lit(msg(92)))
            r = c.command("SELECT INBOX")
            c.command(f"UID COPY 1:* {quoted}")
            c.command(f"UID MOVE 1:* {quoted}")
        c.command("UNSELECT")
    assert snapshot_tree(imap.srv.maildir(BOB)) == bob_before, "alice's commands changed bob's Maildir"
    assert (sorted(p.name for p in domain.iterdir()), sorted(p.name for p in domain.parent.iterdir())) == \
        outside_before, "something was created outside alice's Maildir"
    with imap.session(BOB, folder="INBOX") as c:
        assert set(c.msgmap()) == {"m90@client.test"}


def test_rename_inbox_moves_its_messages_and_leaves_it_empty(imap):
    stored = imap.deliver(ALICE, MESSAGES[:2])
    with imap.session() as c:
        c.ok("RENAME INBOX OldMail")
        assert set(imap.by_msgid(ALICE, "OldMail")) == set(stored)
        assert imap.files(ALICE) == {}
        r = c.ok("SELECT INBOX")
        assert numbered(r.untagged, "EXISTS") == [0]
        r = c.ok('LIST "" "*"')
        assert {"INBOX", "OldMail"} <= set(list_entries(r.untagged))


def test_subscribe_lsub_and_list_subscribed(imap):
    with imap.session() as c:
        c.ok("CREATE Lists")
        c.ok("CREATE Other")
        c.ok("SUBSCRIBE Lists")
        r = c.ok('LSUB "" "*"')
        assert "Lists" in list_entries(r.untagged, "LSUB") and "Other" not in list_entries(r.untagged, "LSUB"), r
        r = c.ok('LIST (SUBSCRIBED) "" "*"')
        e = list_entries(r.untagged)
        assert "\\subscribed" in e["Lists"] and "Other" not in e, r
    with imap.session() as c:   # kept across sessions
        r = c.ok('LSUB "" "*"')
        assert "Lists" in list_entries(r.untagged, "LSUB"), r
        c.ok("UNSUBSCRIBE Lists")
        r = c.ok('LSUB "" "*"')
        assert "Lists" not in list_entries(r.untagged, "LSUB"), r


def test_special_use_folders_namespace_list_status_and_id(imap):
    imap.deliver(BOB, [msg(30)])
    base = imap.srv.maildir(BOB)
    with imap.session(BOB) as c:
        r = c.ok('LIST "" "*" RETURN (SPECIAL-USE)')
        e = list_entries(r.untagged)
        assert set(e) == {"INBOX", "Sent", "Drafts", "Trash", "Junk"}, r
        for name, use in SPECIAL_USE.items():
            assert use.lower() in e[name], (name, e[name])
        r = c.ok('LIST (SPECIAL-USE) "" "*"')
        e = list_entries(r.untagged)
        assert {n: a & {u.lower() for u in SPECIAL_USE.values()} for n, a in e.items()} == \
            {n: {u.lower()} for n, u in SPECIAL_USE.items()}, r
        r = c.ok('LIST "" ""')
        assert len(r.untagged) == 1 and norm(parse(r.untagged[0])[3]) == ".", r
        r = c.ok("NAMESPACE")
        ns = [parse(l)[2:] for l in r.untagged if l.upper().startswith(b"* NAMESPACE ")]
        assert norm(ns) == [[[["", "."]], None, None]], r
        r = c.ok('LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN))')
        st = status_of(r.untagged)
        assert st["INBOX"] == {"MESSAGES": 1, "UNSEEN": 1} and st["Sent"] == {"MESSAGES": 0, "UNSEEN": 0}, r
        r = c.ok('ID ("name" "test_imap.py" "version" "1")')
        assert any(l.upper().startswith(b"* ID ") for l in r.untagged), r
        r = c.ok("SELECT Drafts")
        assert numbered(r.untagged, "EXISTS") == [0] and select_info(r)["uidnext"] == 1
        assert all((base / ".Drafts" / d).is_dir() for d in ("cur", "new", "tmp"))
        r = c.command("DELETE INBOX")
        assert r.status == "NO", r


# --------------------------------------------------------------------------
# UIDs across sessions and restarts


def test_uids_are_stable_across_reconnect_and_restart(imap):
    imap.deliver(ALICE, MESSAGES)
    with imap.session() as c:
        s = select_info(c.ok("SELECT INBOX"))
        first = {k: u for k, (_, u) in c.msgmap().items()}
    assert sorted(first.values()) == [1, 2, 3]
    with imap.session() as c:
        assert select_info(c.ok("SELECT INBOX"))["uidvalidity"] == s["uidvalidity"]
        assert {k: u for k, (_, u) in c.msgmap().items()} == first
        c.ok(f"UID STORE {first['m2@client.test']} +FLAGS.SILENT (\\Deleted)")
        c.ok("EXPUNGE")
    imap.deliver(ALICE, [msg(4)])
    with imap.session() as c:
        s2 = select_info(c.ok("SELECT INBOX"))
        uids = {k: u for k, (_, u) in c.msgmap().items()}
    assert s2["uidvalidity"] == s["uidvalidity"]
    assert uids == {"m1@client.test": first["m1@client.test"], "m3@client.test": first["m3@client.test"],
                    "m4@client.test": 4}, uids
    assert s2["uidnext"] == 5
    imap.srv.restart()
    with imap.session() as c:
        s3 = select_info(c.ok("SELECT INBOX"))
        assert (s3["uidvalidity"], s3["uidnext"]) == (s["uidvalidity"], 5), s3
        assert {k: u for k, (_, u) in c.msgmap().items()} == uids
    imap.deliver(ALICE, [msg(5)])
    with imap.session() as c:
        c.ok("SELECT INBOX")
        assert c.msgmap()["m5@client.test"][1] == 5   # never reuses the expunged UID 2


# --------------------------------------------------------------------------
# many sessions: POP3 and IMAP, two IMAP sessions, IDLE


def test_pop3_retr_and_dele_reach_a_selected_imap_session(imap):
    import poplib
    imap.deliver(ALICE, MESSAGES[:2])
    with imap.session(folder="INBOX") as c:
        ids = c.msgmap()
        p = poplib.POP3("127.0.0.1", imap.pop3, timeout=TIMEOUT)
        assert p.user(ALICE).startswith(b"+OK") and p.pass_(PASSWORD).startswith(b"+OK")
        numbers = {}
        for n in (1, 2):
            resp, lines, _ = p.top(n, 0)
            numbers[msgid_of(b"\r\n".join(lines))] = n
        p.retr(numbers["m1@client.test"])
        p.dele(numbers["m2@client.test"])
        assert p.quit().startswith(b"+OK")
        assert set(imap.by_msgid(ALICE)) == {"m1@client.test"}
        assert letters(imap.by_msgid(ALICE)["m1@client.test"][0]) == "S"
        r = c.ok("NOOP")
        assert numbered(r.untagged, "EXPUNGE") == [ids["m2@client.test"][0]], r
        f = fetches(r.untagged)
        assert any("\\Seen" in flagset(i.get("FLAGS", [])) for i in f.values()), r
        r = c.ok("FETCH 1:* (UID FLAGS)")
        f = fetches(r.untagged)
        assert {s: (int(i["UID"]), flagset(i["FLAGS"])) for s, i in f.items()} == \
            {1: (ids["m1@client.test"][1], {"\\Seen"})}, r


def test_changes_by_other_maildir_tools_reach_a_selected_session(imap):
    """Flags live in the file names "so other Maildir tools agree": a rename
    by another tool is a flag change, an unlinked file an expunge, a file
    dropped into new/ a new message."""
    imap.deliver(ALICE, MESSAGES)
    with imap.session(folder="INBOX") as c:
        ids = c.msgmap()
        files = imap.by_msgid(ALICE)
        path = files["m1@client.test"][0]
        cur = path.parent.parent / "cur"
        path.rename(cur / (unique(path) + ":2," + "".join(sorted(letters(path) + "F"))))
        files["m2@client.test"][0].unlink()
        dropped = msg(70, "dropped by another MDA")
        tmp = imap.folder_dir(ALICE) / "tmp" / "1800000000.M1P1.othertool"
        tmp.write_bytes(dropped)
        tmp.rename(imap.folder_dir(ALICE) / "new" / tmp.name)
        r = c.ok("NOOP")
        assert numbered(r.untagged, "EXPUNGE") == [ids["m2@client.test"][0]], r
        assert numbered(r.untagged, "EXISTS"), r
        assert any("\\Flagged" in flagset(i.get("FLAGS", [])) for i in fetches(r.untagged).values()), r
        r = c.ok("FETCH 1:* (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        got = {msgid_of(next(v for k, v in i.items() if k.startswith("BODY["))): (int(i["UID"]), flagset(i["FLAGS"]))
               for i in fetches(r.untagged).values()}
        assert got == {"m1@client.test": (ids["m1@client.test"][1], {"\\Flagged"}),
                       "m3@client.test": (ids["m3@client.test"][1], set()),
                       "m70@client.test": (4, set())}, r
        r = c.ok("UID FETCH 4 (BODY.PEEK[])")
        assert next(iter(fetches(r.untagged).values()))["BODY[]"] == dropped


def test_a_message_with_lf_line_ends_from_another_tool_is_served_as_crlf(imap):
    """Not every Maildir writer uses CRLF (procmail, maildrop write LF): on
    the wire a message is CRLF (RFC 9051 2.3.1: RFC 5322 format), and
    RFC822.SIZE counts exactly the octets BODY[] sends."""
    imap.deliver(ALICE, [msg(1)])   # the Maildir exists
    lf = msg(71, "written with LF", ["one", "two", "", "four"]).replace(b"\r\n", b"\n")
    tmp = imap.folder_dir(ALICE) / "tmp" / "1800000001.M2P2.procmail"
    tmp.write_bytes(lf)
    tmp.rename(imap.folder_dir(ALICE) / "new" / tmp.name)
    crlf = lf.replace(b"\n", b"\r\n")
    with imap.session(folder="INBOX") as c:
        seq = c.msgmap()["m71@client.test"][0]
        r = c.ok(f"FETCH {seq} (RFC822.SIZE BODY.PEEK[] BODY.PEEK[TEXT] BODY.PEEK[]<10.20>)")
        f = fetches(r.untagged)[seq]
        assert f["BODY[]"] == crlf, f["BODY[]"]
        assert int(f["RFC822.SIZE"]) == len(crlf), f["RFC822.SIZE"]
        assert f["BODY[TEXT]"] == b"one\r\ntwo\r\n\r\nfour\r\n"
        assert f["BODY[]<10>"] == crlf[10:30]
        r = c.ok("STATUS INBOX (SIZE)")
        total = sum(len(d) for p, d in imap.files(ALICE).values() if b"m71@" not in d) + len(crlf)
        assert status_of(r.untagged)["INBOX"]["SIZE"] == total, (r, total)


def test_two_sessions_on_one_folder_see_flags_expunges_and_new_mail(imap):
    imap.deliver(ALICE, MESSAGES)
    with imap.session(folder="INBOX") as a, imap.session(folder="INBOX") as b:
        ids = a.msgmap()
        assert b.msgmap() == ids
        a.ok("STORE 1 +FLAGS (\\Flagged)")
        r = b.ok("NOOP")
        f = fetches(r.untagged)
        assert list(f) == [1] and flagset(f[1]["FLAGS"]) == {"\\Flagged"}, r
        a.ok("STORE 2 +FLAGS.SILENT (\\Deleted)")
        r = a.ok("EXPUNGE")
        assert numbered(r.untagged, "EXPUNGE") == [2], r
        # B has not been told yet; no EXPUNGE in the middle of FETCH, STORE or SEARCH (RFC 9051 7.5.1)
        r = b.ok("FETCH 1,3 (FLAGS)")
        assert not numbered(r.untagged, "EXPUNGE") and {1, 3} <= set(fetches(r.untagged)), r
        r = b.ok("STORE 3 +FLAGS (\\Answered)")
        assert not numbered(r.untagged, "EXPUNGE"), r
        r = b.command("SEARCH ALL")
        assert r.status == "OK" and not numbered(r.untagged, "EXPUNGE"), r
        r = b.ok("NOOP")
        assert numbered(r.untagged, "EXPUNGE") == [2], r
        r = a.ok("NOOP")
        f = fetches(r.untagged)
        assert list(f) == [2] and flagset(f[2]["FLAGS"]) == {"\\Answered"}, r   # B's STORE, after renumbering
        imap.deliver(ALICE, [msg(4)])
        for c in (a, b):
            r = c.ok("NOOP")
            assert numbered(r.untagged, "EXISTS") == [3], r
        assert a.msgmap() == b.msgmap()
        assert set(a.msgmap()) == {"m1@client.test", "m3@client.test", "m4@client.test"}
        assert letters(imap.by_msgid(ALICE)["m3@client.test"][0]) == "R"


def test_concurrent_appends_and_deliveries_get_distinct_ascending_uids(imap):
    """Four sessions APPEND ten messages each while SMTP delivers ten: every
    APPENDUID is distinct, and a fresh session sees exactly those UIDs (and
    UIDs for the delivered ones) with nothing lost or doubled."""
    import threading
    results, errors = {}, []

    def appender(k):
        try:
            with imap.session() as c:
                for n in range(10):
                    i = 1000 + k * 10 + n
                    r = c.ok("APPEND INBOX", Lit(msg(i)))
                    word, v, u = r.code.split()
                    results[f"m{i}@client.test"] = (int(v), int(u))
        except Exception as e:   # reported below, in the test's thread
            errors.append(repr(e))

    def deliverer():
        try:
            with smtplib.SMTP("127.0.0.1", imap.srv.port, local_hostname="client.test", timeout=TIMEOUT) as s:
                for n in range(10):
                    s.sendmail("sender@remote.test", [ALICE], msg(2000 + n))
        except Exception as e:
            errors.append(repr(e))
    threads = [threading.Thread(target=appender, args=(k,)) for k in range(4)] + [threading.Thread(target=deliverer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads) and not errors, errors
    wait_until(lambda: len(imap.files(ALICE)) == 50, TIMEOUT, "all 50 messages in the Maildir")
    assert len({v for v, _ in results.values()}) == 1 and len({u for _, u in results.values()}) == 40, results
    with imap.session(folder="INBOX") as c:
        got = c.msgmap()
        assert len(got) == 50 and len({u for _, u in got.values()}) == 50, got
        assert {k: got[k][1] for k in results} == {k: u for k, (_, u) in results.items()}
        assert [u for _, u in sorted(got.values())] == sorted(u for _, u in got.values())   # ascending by seq


def test_idle_sees_a_delivery_and_another_sessions_flags(imap):
    imap.deliver(BOB, [msg(39)])
    with imap.session(BOB, folder="INBOX") as c:
        tag = c.tag()
        c.send(f"{tag} IDLE\r\n")
        r = c.read()
        assert r.startswith(b"+"), r
        t0 = time.monotonic()
        imap.deliver(BOB, [msg(40)])
        delivered = time.monotonic()
        # a generous bound; the "within a second" is printed, not asserted
        deadline = delivered + 5
        seen = []
        while b"* 2 EXISTS" not in seen:
            seen.append(c.read(timeout=max(0.01, deadline - time.monotonic())))
        latency = time.monotonic() - delivered
        print(f"IDLE: EXISTS {latency * 1000:.0f} ms after the file appeared in new/ "
              f"({(time.monotonic() - t0) * 1000:.0f} ms after the SMTP transaction began)")
        assert all(re.match(rb"^\* \d+ (EXISTS|RECENT)$", l) for l in seen), seen
        extra = []
        with imap.session(BOB, folder="INBOX") as other:
            other.ok("STORE 1 +FLAGS.SILENT (\\Flagged)")
            while True:   # the flag change arrives too (EXISTS/RECENT may come before)
                r = c.read(timeout=5)
                extra.append(r)
                f = fetches([r])
                if f:
                    assert flagset(f[1]["FLAGS"]) == {"\\Flagged"}, extra
                    break
        # POP3 deletes the first message: EXPUNGE at once, no command needed
        import poplib
        p = poplib.POP3("127.0.0.1", imap.pop3, timeout=TIMEOUT)
        assert p.user(BOB).startswith(b"+OK") and p.pass_(PASSWORD).startswith(b"+OK")
        first = next(n for n in (1, 2) if b"<m39@client.test>" in b"\r\n".join(p.top(n, 0)[1]))
        p.dele(first)
        assert p.quit().startswith(b"+OK")
        got = []
        while b"* 1 EXPUNGE" not in got:
            got.append(c.read(timeout=5))
        c.send("DONE\r\n")
        r = c.finish(tag)
        assert r.status == "OK", r
        c.ok("LOGOUT")


# --------------------------------------------------------------------------
# SEARCH


SEARCH_MESSAGES = [
    make_message("Quarterly report", ["numbers inside"], msgid="s1@client.test",
                 extra_headers=()).replace(b"From: Alice <alice@example.test>", b"From: Carol <carol@remote.test>")
    .replace(b"Date: Thu, 26 Nov 2026 07:00:00 +0000", b"Date: Thu, 15 Jan 2026 09:00:00 +0000"),
    make_message("=?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=", ["a needle in a haystack"], msgid="s2@client.test")
    .replace(b"From: Alice <alice@example.test>", b"From: Dave <dave@remote.test>")
    .replace(b"Date: Thu, 26 Nov 2026 07:00:00 +0000", b"Date: Mon, 01 Jun 2026 12:00:00 +0000"),
    make_message("lunch", ["x" * 76] * 80, msgid="s3@client.test")
    .replace(b"From: Alice <alice@example.test>", b"From: Carol <carol@remote.test>"),
]


def test_search_keys_charset_and_esearch(imap):
    imap.deliver(ALICE, SEARCH_MESSAGES)
    m = imap.imaplib()
    m.login(ALICE, PASSWORD)
    m.select("INBOX")
    with imap.session(folder="INBOX") as c:
        ids = c.msgmap()
        seq = {k.split("@")[0]: s for k, (s, _) in ids.items()}
        uid = {k.split("@")[0]: u for k, (_, u) in ids.items()}

        def S(*names):
            return {seq[n] for n in names}

        def imaplib_search(*criteria, charset=None):
            typ, data = m.search(charset, *criteria)
            assert typ == "OK", data
            return {int(x) for x in data[0].split()}
        assert imaplib_search("FROM", '"carol"') == S("s1", "s3")
        assert imaplib_search("SUBJECT", "QUARTERLY") == S("s1")   # case-insensitive
        assert imaplib_search("OR", "FROM", "dave", "SUBJECT", "lunch") == S("s2", "s3")
        assert imaplib_search("NOT", "FROM", "carol") == S("s2")
        assert imaplib_search("BODY", "needle") == S("s2")
        assert imaplib_search("TEXT", "haystack") == S("s2")
        assert imaplib_search("HEADER", "Message-ID", "s2@client") == S("s2")
        assert imaplib_search("LARGER", "4000") == S("s3")
        assert imaplib_search("SENTSINCE", "1-May-2026") == S("s2", "s3")
        assert imaplib_search("SENTBEFORE", "1-Feb-2026") == S("s1")
        assert imaplib_search("SENTON", "26-Nov-2026") == S("s3")
        assert imaplib_search("ALL") == {1, 2, 3}
        assert imaplib_search("2:3") == {2, 3}
        # the encoded word decoded, matched with a UTF-8 literal (imaplib sends m.literal)
        m.literal = "Grüße".encode()
        assert imaplib_search("SUBJECT", charset="UTF-8") == S("s2")
        r = c.ok("SEARCH CHARSET UTF-8 SUBJECT", Lit("Köln".encode()), "FROM dave")
        assert search_result(r.untagged) == S("s2"), r
        r = c.command("SEARCH CHARSET X-UNKNOWN-9 SUBJECT x")
        assert r.status == "NO" and (r.code or "").upper().startswith("BADCHARSET"), r
        # flags
        assert m.fetch(str(seq["s1"]), "(BODY[])")[0] == "OK"
        assert imaplib_search("UNSEEN") == S("s2", "s3")
        assert imaplib_search("SEEN") == S("s1")
        # UID ranges
        r = c.ok(f"UID SEARCH UID {uid['s2']}:*")
        found = [l for l in r.untagged if l.upper().startswith(b"* SEARCH")]
        assert {int(x) for x in found[0].split()[2:]} == {u for u in uid.values() if u >= uid["s2"]}, r
        r = c.ok(f"SEARCH UID {uid['s1']},{uid['s3']}")
        assert search_result(r.untagged) == S("s1", "s3"), r
        # ESEARCH (RFC 4731)
        r = c.ok("SEARCH RETURN (COUNT MIN MAX) FROM carol")
        e = esearch(r.untagged)
        assert e["TAG"] == r.tag and "UID" not in e, r
        assert (int(e["COUNT"]), int(e["MIN"]), int(e["MAX"])) == (2, min(S("s1", "s3")), max(S("s1", "s3"))), r
        r = c.ok("UID SEARCH RETURN (ALL) ALL")
        e = esearch(r.untagged)
        assert e.get("UID") and expand_set(e["ALL"]) == set(uid.values()), r
        r = c.ok("SEARCH RETURN (COUNT) FROM nobody")
        assert int(esearch(r.untagged)["COUNT"]) == 0, r
        # SEARCHRES (RFC 5182): $ refers to the saved result
        c.ok("SEARCH RETURN (SAVE) FROM carol")
        r = c.ok("FETCH $ (UID)")
        assert {int(i["UID"]) for i in fetches(r.untagged).values()} == {uid["s1"], uid["s3"]}, r
    m.logout()


# --------------------------------------------------------------------------
# raw bytes: literals, LITERAL+, bounds


def test_synchronizing_literals_and_literal_plus(imap):
    with imap.raw() as c:
        # LOGIN with two synchronizing literals: each waits for a '+'
        c.send("A1 LOGIN {%d}\r\n" % len(ALICE))
        r = c.read()
        assert r.startswith(b"+"), r
        c.send(ALICE + " {%d}\r\n" % len(PASSWORD))
        r = c.read()
        assert r.startswith(b"+"), r
        c.send(PASSWORD + "\r\n")
        r = c.finish("A1")
        assert r.status == "OK", r
        # LITERAL+ (RFC 7888): no continuation; the message and the next command in one write
        body = msg(50)
        c.send(b"A2 APPEND INBOX (\\Flagged) {%d+}\r\n" % len(body) + body + b"\r\nA3 NOOP\r\n")
        r = c.finish("A2")   # a '+' continuation would fail here
        assert r.status == "OK" and r.code.upper().startswith("APPENDUID "), r
        r = c.finish("A3")
        assert r.status == "OK", r
        (path, data), = imap.files(ALICE).values()
        assert data == body and letters(path) == "F", path
        # a literal in a SEARCH key and in a mailbox name
        r = c.ok("SELECT", Lit("INBOX"))
        assert numbered(r.untagged, "EXISTS") == [1], r
        r = c.ok("UID SEARCH SUBJECT", Lit("message 50"))
        assert search_result(r.untagged) == {1}, r


def test_append_past_appendlimit_is_refused_before_the_literal(imap):
    with imap.session() as c:
        limit = [int(x.split("=")[1]) for x in c.capabilities() if x.upper().startswith("APPENDLIMIT=")]
        assert len(limit) == 1
        c.send(b"A1 APPEND INBOX {%d}\r\n" % (limit[0] + 1))
        r = c.read()
        assert r.startswith(b"A1 NO"), f"a continuation or other response for an over-limit literal: {r!r}"
        assert code_of(r) == "TOOBIG", r
        c.ok("NOOP")   # the session goes on
    assert imap.files(ALICE) == {}


def test_a_non_synchronizing_literal_over_the_limit_is_never_run_as_commands(make_server, pw_hash):
    """APPEND with a LITERAL+ literal one octet over APPENDLIMIT whose bytes
    look like commands: refused with [TOOBIG] (NO, or BAD per RFC 7888 4),
    its bytes skipped or the connection closed; none of them runs."""
    imap = ImapServer(make_server, pw_hash, extra={"limits": {"message_size": 50000}})
    with imap.session() as c:
        limit = [int(x.split("=")[1]) for x in c.capabilities() if x.upper().startswith("APPENDLIMIT=")]
        assert limit == [50000], limit
        line = b"X9 CREATE Injected\r\n"
        payload = (line * (limit[0] // len(line) + 1))[:limit[0] + 1]
        try:
            c.send(b"A1 APPEND INBOX {%d+}\r\n" % len(payload) + payload + b"\r\nA2 NOOP\r\n")
        except OSError:
            pass   # closed while we were sending: allowed
        lines = []
        try:
            while not any(l.startswith(b"A2 ") for l in lines):
                lines.append(c.read())
        except (EOFError, OSError):
            assert any(l.startswith(b"* BYE") for l in lines), lines   # closing, then with BYE
        a1 = [l for l in lines if l.startswith(b"A1 ")]
        assert len(a1) <= 1 and (not a1 or (re.match(rb"A1 (NO|BAD) ", a1[0]) and code_of(a1[0]) == "TOOBIG")), lines
        assert a1 or any(l.startswith(b"* BYE") for l in lines), lines
        assert not [l for l in lines if l.startswith(b"X9 ")], lines
    assert not imap.folder_dir(ALICE, "Injected").exists()
    assert imap.files(ALICE) == {}
    with imap.session() as c:
        r = c.ok('LIST "" "*"')
        assert "Injected" not in list_entries(r.untagged)


def test_a_line_over_64k_is_bad_and_the_server_goes_on(imap):
    with imap.session() as c:
        c.send(b"A1 NOOP " + b"x" * 70000 + b"\r\n")
        lines = []
        try:
            while True:
                r = c.read()
                lines.append(r)
                if r.startswith(b"A1 ") or b" BAD" in r[:12] or r.startswith(b"* BYE"):
                    break
        except EOFError:
            pass
        assert any(re.match(rb"^(\*|A1) BAD", l) for l in lines), lines
        bad = next(l for l in lines if re.match(rb"^(\*|A1) BAD", l))
        assert len(bad) < 1000, "the server echoed the over-long line"
        assert code_of(bad) in ("TOOBIG", "LIMIT"), bad   # the issue: a clear BAD with an RFC 5530 code
        # either the session goes on or it ended with BYE; the server serves others
        try:
            r = c.command("NOOP")
            assert r.status == "OK", r
        except (EOFError, OSError):
            pass
    with imap.session() as c:
        c.ok("NOOP")


# --------------------------------------------------------------------------
# LOGOUT, SIGTERM


def test_logout_says_bye_then_ok_then_closes(imap):
    with imap.session(folder="INBOX") as c:
        r = c.command("LOGOUT")
        assert r.status == "OK", r
        assert len(r.untagged) == 1 and r.untagged[0].startswith(b"* BYE"), r
        c.expect_eof()


def test_sigterm_ends_an_open_session_with_bye_and_exit_0(imap):
    imap.deliver(ALICE, MESSAGES[:1])
    with imap.session(folder="INBOX") as c, imap.session(BOB, folder="INBOX") as idler:
        c.ok("STORE 1 +FLAGS (\\Flagged)")
        tag = idler.tag()
        idler.send(f"{tag} IDLE\r\n")
        assert idler.read().startswith(b"+")
        imap.srv.expect_dead = True   # its exit is checked here, not at teardown
        imap.srv.proc.send_signal(signal.SIGTERM)
        for s in (c, idler):
            r = s.read(timeout=TIMEOUT)   # unsolicited: the server's last words
            assert r.startswith(b"* BYE"), r
            s.expect_eof()
    imap.srv.proc.wait(timeout=TIMEOUT)
    assert imap.srv.proc.returncode == 0
    (path, _), = imap.files(ALICE).values()
    assert letters(path) == "F"


# --------------------------------------------------------------------------
# curl


@needs["curl"]
@pytest.mark.parametrize("scheme", ["imap", "imaps"])
def test_curl_fetches_by_uid_lists_and_examines(make_server, pw_hash, scheme):
    imap = ImapServer(make_server, pw_hash, plaintext_loopback=False)
    stored = imap.deliver(ALICE, MESSAGES[:2])
    with imap.raw(tls=True) as c:
        c.login()
        c.ok("EXAMINE INBOX")
        uids = {k: u for k, (_, u) in c.msgmap().items()}
    port = imap.imap if scheme == "imap" else imap.imaps
    base = ["curl", "-sS", "--max-time", str(TIMEOUT), "-k", "--user", f"{ALICE}:{PASSWORD}"]
    if scheme == "imap":
        base.append("--ssl-reqd")  # STARTTLS before the login
    url = f"{scheme}://127.0.0.1:{port}/"
    for k, (path, data) in stored.items():
        r = subprocess.run(base + [f"{url}INBOX;UID={uids[k]}"], capture_output=True, timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        assert r.stdout == data, (k, r.stdout[:300])
    listing = subprocess.run(base + [url], capture_output=True, timeout=TIMEOUT)
    assert listing.returncode == 0, listing.stderr
    lines = [l.encode() for l in listing.stdout.decode().splitlines()]
    assert set(list_entries(lines)) == {"INBOX", "Sent", "Drafts", "Trash", "Junk"}, listing.stdout
    r = subprocess.run(base + ["-X", "EXAMINE INBOX", url], capture_output=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    out = [l.encode() for l in r.stdout.decode().splitlines()]
    assert numbered(out, "EXISTS") == [2], r.stdout
    assert any(c.upper().startswith("UIDNEXT ") for c in codes(out)), r.stdout
    r = subprocess.run(base + [f"{url}INBOX;UID=999"], capture_output=True, timeout=TIMEOUT)
    assert r.returncode != 0 or r.stdout == b"", r   # no such message: nothing fetched
    # curl's BODY[] set \Seen on what it fetched
    assert {letters(p) for p, _ in imap.files(ALICE).values()} == {"S"}


# --------------------------------------------------------------------------
# mbsync (isync): both ways with a local Maildir


@pytest.fixture(scope="module")
def leaf_cert(tmp_path_factory):
    """A self-signed certificate that is no CA (basicConstraints CA:FALSE):
    mbsync trusts such a certificate from CertificateFile as the server's own
    ("Host" certificate, mbsync(1)), whatever name it connected to; conftest's
    certificate is a CA to OpenSSL, which mbsync would check against the
    host name 127.0.0.1."""
    d = tmp_path_factory.mktemp("leafcert")
    crt, key = d / "cert.pem", d / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-subj", f"/CN={HOSTNAME}", "-addext", f"subjectAltName=DNS:{HOSTNAME},IP:127.0.0.1",
                    "-addext", "basicConstraints=critical,CA:FALSE", "-days", "30",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True, timeout=TIMEOUT)
    return {"certificate": str(crt), "private_key": str(key)}


def mbsync_config(tmp_path, imap, ssl_type):
    local = tmp_path / "local"
    (local / "mail").mkdir(parents=True, exist_ok=True)
    port = imap.imaps if ssl_type == "IMAPS" else imap.imap
    rc = tmp_path / "mbsyncrc"
    rc.write_text(
        "IMAPAccount postern\n"
        "Host 127.0.0.1\n"
        f"Port {port}\n"
        f"User {ALICE}\n"
        f"Pass {PASSWORD}\n"
        f"SSLType {ssl_type}\n"
        "SSLVersions TLSv1.2 TLSv1.3\n"
        "SystemCertificates no\n"
        f"CertificateFile {imap.srv.config['tls']['certificate']}\n"   # the test's self-signed certificate
        "AuthMechs LOGIN\n"
        f"Timeout {TIMEOUT}\n"
        "\n"
        "IMAPStore remote\n"
        "Account postern\n"
        "\n"
        "MaildirStore local\n"
        f"Path {local}/mail/\n"
        f"Inbox {local}/inbox\n"
        "SubFolders Verbatim\n"
        "\n"
        "Channel alice\n"
        "Far :remote:\n"
        "Near :local:\n"
        "Patterns *\n"
        "Create Both\n"
        "Expunge Both\n"
        "Sync All\n"
        "CopyArrivalDate yes\n"
        "SyncState *\n")
    return rc, local


def run_mbsync(rc, tmp_path):
    r = subprocess.run(["mbsync", "-V", "-c", str(rc), "-a"], env={**os.environ, "HOME": str(tmp_path)},
                       capture_output=True, timeout=120)
    out = r.stdout.decode(errors="replace")[-6000:] + r.stderr.decode(errors="replace")[-3000:]
    assert r.returncode == 0, out
    return out


def canonical(data):
    """A message as mbsync's Maildir keeps it (LF) and as the server keeps it
    (CRLF) compare equal: LF line ends, without mbsync's X-TUID header."""
    data = data.replace(b"\r\n", b"\n")
    return re.sub(rb"(?m)^X-TUID: [^\n]*\n", b"", data)


def local_folder(local, folder):
    return local / "inbox" if folder == "INBOX" else local / "mail" / folder


def local_files(local, folder):
    """{name: (path, bytes)} of the local Maildir folder's messages."""
    out = {}
    d = local_folder(local, folder)
    for sub in ("new", "cur"):
        if (d / sub).is_dir():
            for p in (d / sub).iterdir():
                out[p.name] = (p, p.read_bytes())
    return out


def side(files):
    """A folder's messages as a comparable multiset: sorted (Message-ID, letters, canonical bytes)."""
    return sorted((msgid_of(d) or "", letters(p), canonical(d)) for p, d in files.values())


FOLDERS = ("INBOX", "Sent", "Drafts", "Trash", "Junk")


def both_sides(imap, local):
    server = {f: side(imap.files(ALICE, f)) for f in FOLDERS}
    client = {f: side(local_files(local, f)) for f in FOLDERS}
    return server, client


@needs["mbsync"]
@pytest.mark.parametrize("ssl_type", ["IMAPS", "STARTTLS"])
def test_mbsync_syncs_both_ways_with_a_local_maildir(make_server, pw_hash, tmp_path, ssl_type, leaf_cert):
    imap = ImapServer(make_server, pw_hash, plaintext_loopback=False, tls=leaf_cert)
    stored = imap.deliver(ALICE, [msg(n) for n in range(1, 6)])
    rc, local = mbsync_config(tmp_path, imap, ssl_type)

    # 1. pull: the five messages, unread; the special-use folders exist on both sides
    run_mbsync(rc, tmp_path)
    server, client = both_sides(imap, local)
    assert server == client, (server, client)
    assert [(i, l) for i, l, _ in client["INBOX"]] == [(f"m{n}@client.test", "") for n in range(1, 6)]
    assert sorted(canonical(d) for _, d in stored.values()) == [d for _, _, d in client["INBOX"]]
    for f in FOLDERS[1:]:
        assert local_folder(local, f).is_dir() and imap.folder_dir(ALICE, f).is_dir(), f

    # 2. changes on the client: flag m1, move m2 to Trash, delete m3, a message in Sent
    byid = {msgid_of(d): p for p, d in local_files(local, "INBOX").values()}
    p = byid["m1@client.test"]
    base, _, info = p.name.partition(":2,")
    p.rename(p.parent.parent / "cur" / (base + ":2," + "".join(sorted(info + "F"))))
    p = byid["m2@client.test"]
    # a message filed into another folder loses mbsync's ",U=" (it names a UID of INBOX)
    moved = re.sub(r",U=\d+", "", p.name.partition(":2,")[0]) + ":2,"
    (local_folder(local, "Trash") / "cur").mkdir(parents=True, exist_ok=True)
    p.rename(local_folder(local, "Trash") / "cur" / moved)
    byid["m3@client.test"].unlink()
    sent = msg(60, "written offline").replace(b"\r\n", b"\n")
    (local_folder(local, "Sent") / "cur" / f"{int(time.time())}.P{os.getpid()}Q1.client:2,S").write_bytes(sent)
    # and on the server: m4 answered by another client, m6 arrives
    m = imap.imaplib_ssl()
    m.login(ALICE, PASSWORD)
    m.select("INBOX")
    seq4 = next(s for s, i in imaplib_fetch(m, "1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])").items()
                if b"m4@client.test" in next(iter(i.values())))
    assert m.store(str(seq4), "+FLAGS", "(\\Answered)")[0] == "OK"
    m.logout()
    imap.deliver(ALICE, [msg(6)])

    # 3. push and pull
    run_mbsync(rc, tmp_path)
    server, client = both_sides(imap, local)
    assert server == client, (server, client)
    assert [(i, l) for i, l, _ in server["INBOX"]] == [
        ("m1@client.test", "F"), ("m4@client.test", "R"), ("m5@client.test", ""), ("m6@client.test", "")]
    assert [i for i, _, _ in server["Trash"]] == ["m2@client.test"]
    assert [(i, l, d) for i, l, d in server["Sent"]] == [("m60@client.test", "S", canonical(sent))]
    # the server's files: CRLF, the exact message (an X-TUID header of mbsync's aside)
    (spath, sdata), = imap.files(ALICE, "Sent").values()
    assert re.sub(rb"(?m)^X-TUID: [^\r]*\r\n", b"", sdata) == sent.replace(b"\n", b"\r\n")
    assert spath.parent.name == "cur" and letters(spath) == "S"
    trashed = imap.by_msgid(ALICE, "Trash")["m2@client.test"][1]
    assert re.sub(rb"(?m)^X-TUID: [^\r]*\r\n", b"", trashed) == stored["m2@client.test"][1]
    assert "m3@client.test" not in imap.by_msgid(ALICE)

    # 4. nothing changed: a second sync is a no-op on both sides
    def snapshot():
        srv = {f: sorted((u, letters(p), d) for u, (p, d) in imap.files(ALICE, f).items()) for f in FOLDERS}
        cli = {f: sorted((n, d) for n, (_, d) in local_files(local, f).items()) for f in FOLDERS}
        return srv, cli
    before = snapshot()
    run_mbsync(rc, tmp_path)
    assert snapshot() == before
