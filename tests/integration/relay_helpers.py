"""Helpers and fixtures for the outbound relay tests (test_relay_*.py).

- TestDNS: an authoritative-looking DNS responder (dnslib) on 127.0.0.1, UDP
  and TCP on one ephemeral port, serving per-test zone data: MX (including the
  null MX "0 ."), A, AAAA; NXDOMAIN for unknown names, SERVFAIL or no answer at
  all (drop) for chosen names. The zone may be changed while postern runs.
- Sink: an aiosmtpd server on 127.0.0.N:REMOTE_PORT that records every
  message (envelope, data, EHLO name, peer, connection number, MAIL params),
  answers chosen recipients with a 4xx/5xx reply at RCPT, and can hide
  SMTPUTF8 / 8BITMIME / PIPELINING.
- RefusingServer: a raw TCP server whose greeting is a 421/554.
- DSN parsing with the standard `email` package.

Test modules import the fixtures they use (pytest finds fixtures imported into
a test module's namespace):  from relay_helpers import dns, sinks, relay_env
"""

import email
import email.policy
import itertools
import socket
import socketserver
import threading
import time
from pathlib import Path

import pytest

from conftest import RawSMTP, dot_stuff, free_port, make_message, wait_until

# --------------------------------------------------------------------------
# DNS


class TestDNS:
    """Zone data: names (lower-case, no trailing dot) -> {rtype: [values]}.
    MX values are (preference, host) tuples; host "." is the null MX.
    A / AAAA values are address strings. A name absent from the zone is
    NXDOMAIN; a present name without records of the asked type is NODATA."""

    __test__ = False  # not a pytest test class

    def __init__(self, ttl=1):
        import dnslib  # noqa: F401  (fail early with a clear ImportError)
        self.ttl = ttl
        self.lock = threading.Lock()
        self.records = {}
        self.servfail_names = set()
        self.drop_names = set()
        self.delays = {}  # name -> seconds to wait before answering
        self.queries = []  # (name, type) in arrival order
        self.servers = []
        self.port = None

    # ---- zone editing (thread-safe; takes effect for the next query)
    @staticmethod
    def _norm(name):
        return name.rstrip(".").lower()

    def add(self, name, rtype, *values):
        with self.lock:
            self.records.setdefault(self._norm(name), {}).setdefault(rtype, []).extend(values)

    def mx(self, domain, *pairs):
        """mx("a.test", (10, "mx1.a.test"), (20, "mx2.a.test")); (0, ".") = null MX."""
        self.add(domain, "MX", *pairs)

    def a(self, name, *addrs):
        self.add(name, "A", *addrs)

    def aaaa(self, name, *addrs):
        self.add(name, "AAAA", *addrs)

    def exists(self, name):
        """The name exists (NODATA for every type) unless records are added."""
        with self.lock:
            self.records.setdefault(self._norm(name), {})

    def remove(self, name):
        with self.lock:
            self.records.pop(self._norm(name), None)

    def servfail(self, name, on=True):
        with self.lock:
            (self.servfail_names.add if on else self.servfail_names.discard)(self._norm(name))

    def drop(self, name, on=True):
        with self.lock:
            (self.drop_names.add if on else self.drop_names.discard)(self._norm(name))

    def delay(self, name, seconds):
        """Answer queries for name only after `seconds` (0: no delay)."""
        with self.lock:
            self.delays[self._norm(name)] = seconds

    def queried(self, name, rtype=None):
        name = self._norm(name)
        with self.lock:
            return [q for q in self.queries if q[0] == name and (rtype is None or q[1] == rtype)]

    # ---- the resolver dnslib calls (from its server threads)
    def resolve(self, request, handler):
        from dnslib import AAAA, MX, QTYPE, RCODE, RR, A, DNSLabel
        from dnslib.server import DNSError
        q = request.q
        name = self._norm(str(q.qname))
        qtype = QTYPE[q.qtype]
        with self.lock:
            pause = self.delays.get(name, 0)
        if pause:
            time.sleep(pause)  # a slow name server (this handler thread only)
        with self.lock:
            self.queries.append((name, qtype))
            if name in self.drop_names:
                raise DNSError(f"dropping the query for {name}")  # no reply at all
            reply = request.reply()  # QR, AA, RD copied, same id
            reply.header.ra = 1
            if name in self.servfail_names:
                reply.header.rcode = RCODE.SERVFAIL
                return reply
            if name not in self.records:
                reply.header.rcode = RCODE.NXDOMAIN
                return reply
            for value in self.records[name].get(qtype, []):
                if qtype == "MX":
                    pref, host = value
                    rdata = MX(DNSLabel(host if host != "." else "."), pref)
                elif qtype == "A":
                    rdata = A(value)
                elif qtype == "AAAA":
                    rdata = AAAA(value)
                else:
                    continue
                reply.add_answer(RR(q.qname, q.qtype, rdata=rdata, ttl=self.ttl))
            return reply

    # ---- process control
    def start(self):
        from dnslib.server import DNSLogger, DNSServer
        logger = DNSLogger(prefix=False, logf=lambda s: None)
        last = None
        for _ in range(50):
            port = free_port(udp=True)  # free for both UDP and TCP
            try:
                udp = DNSServer(self, port=port, address="127.0.0.1", logger=logger)
            except OSError as e:
                last = e
                continue
            try:
                tcp = DNSServer(self, port=port, address="127.0.0.1", logger=logger, tcp=True)
            except OSError as e:
                udp.server.server_close()
                last = e
                continue
            self.servers = [udp, tcp]
            self.port = port
            for srv in self.servers:
                # a short poll interval keeps shutdown() quick
                t = threading.Thread(target=srv.server.serve_forever,
                                     kwargs={"poll_interval": 0.05}, daemon=True)
                t.start()
            return self
        raise RuntimeError(f"no port free for the test DNS server: {last}")

    def stop(self):
        for srv in self.servers:
            try:
                srv.server.shutdown()
                srv.server.server_close()
            except Exception:
                pass
        self.servers = []

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"


# --------------------------------------------------------------------------
# SMTP sinks


class Sink:
    """An aiosmtpd server recording everything; see module docstring."""

    def __init__(self, host, port, *, smtputf8=True, eightbitmime=True, pipelining=True,
                 name=None, greeting_delay=0, refuse_ehlo=False):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import SMTP
        self.host = host
        self.port = port
        self.name = name or f"sink.{host}"
        self.lock = threading.Lock()
        self.messages = []      # dicts, see handle_DATA
        self.connections = []   # one dict per connection that said EHLO/HELO
        self.rcpts_tried = []   # (conn, address, reply) for every RCPT
        self.mails_tried = []   # (conn, address, options) for every MAIL
        self.rcpt_replies = {}  # lower-case address -> "450 4.2.0 ..." (else 250)
        self.hide_8bitmime = not eightbitmime
        self.refuse_ehlo = refuse_ehlo
        self.ehlo_refused = 0
        self.advertise_pipelining = pipelining
        self._conn_counter = itertools.count(1)
        sink = self

        class Handler:
            async def handle_EHLO(self, server, session, envelope, hostname, responses):
                if sink.refuse_ehlo:  # an old SMTP-only server
                    session.extended_smtp = False
                    with sink.lock:
                        sink.ehlo_refused += 1
                    return ["502 5.5.1 EHLO not implemented"]
                session.host_name = hostname
                sink._new_connection(session, "EHLO", hostname)
                out = []
                for r in responses:
                    if sink.hide_8bitmime and r[4:].upper() == "8BITMIME":
                        continue
                    out.append(r)
                if sink.advertise_pipelining:
                    out.insert(len(out) - 1, "250-PIPELINING")
                return out

            async def handle_HELO(self, server, session, envelope, hostname):
                session.host_name = hostname
                sink._new_connection(session, "HELO", hostname)
                return f"250 {sink.name}"

            async def handle_MAIL(self, server, session, envelope, address, mail_options):
                with sink.lock:
                    # recorded as "" for the null reverse path (aiosmtpd says "<>")
                    sink.mails_tried.append((getattr(session, "conn_id", None),
                                             "" if address == "<>" else address,
                                             list(mail_options)))
                envelope.mail_from = address
                envelope.mail_options.extend(mail_options)
                return "250 2.1.0 Ok"

            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                with sink.lock:
                    reply = sink.rcpt_replies.get(address.lower())
                    sink.rcpts_tried.append((getattr(session, "conn_id", None), address,
                                             reply or "250"))
                if reply:
                    return reply
                envelope.rcpt_tos.append(address)
                envelope.rcpt_options.extend(rcpt_options)
                return "250 2.1.5 Ok"

            async def handle_DATA(self, server, session, envelope):
                with sink.lock:
                    sink.messages.append({
                        "mail_from": "" if envelope.mail_from == "<>" else envelope.mail_from,
                        "rcpt_tos": list(envelope.rcpt_tos),
                        "data": bytes(envelope.original_content or envelope.content),
                        "mail_options": list(envelope.mail_options),
                        "smtputf8": envelope.smtp_utf8,
                        "ehlo": session.host_name,
                        "peer": session.peer,
                        "conn": getattr(session, "conn_id", None),
                    })
                return "250 2.0.0 Ok: queued by " + sink.name

        class SlowGreetingSMTP(SMTP):
            # aiosmtpd sends the 220 first thing in _handle_client
            async def _handle_client(self):
                import asyncio
                await asyncio.sleep(sink.greeting_delay)
                return await super()._handle_client()

        class SinkController(Controller):
            def factory(self):
                cls = SlowGreetingSMTP if sink.greeting_delay else SMTP
                return cls(self.handler, **self.SMTP_kwargs)

        self.greeting_delay = greeting_delay
        self.controller = SinkController(
            Handler(), hostname=host, port=port, enable_SMTPUTF8=smtputf8,
            server_hostname=self.name, ready_timeout=10, decode_data=False)

    def _new_connection(self, session, verb, hostname):
        with self.lock:
            if getattr(session, "conn_id", None) is None:
                session.conn_id = next(self._conn_counter)
                self.connections.append({"conn": session.conn_id, "peer": session.peer,
                                         "verb": verb, "helo": hostname})

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        try:
            self.controller.stop()
        except Exception:
            pass

    # ---- observation
    def wait_messages(self, count, timeout=20):
        try:
            return wait_until(lambda: len(self.messages) >= count and list(self.messages),
                              timeout, f"{count} message(s) at {self.name}")
        except AssertionError:
            raise AssertionError(f"timed out after {timeout}s waiting for {count} message(s) "
                                 f"at {self.name}; have {len(self.messages)}: "
                                 f"{[(m['mail_from'], m['rcpt_tos']) for m in self.messages]}"
                                 ) from None

    def delivered_to(self, address):
        return [m for m in self.messages
                if address.lower() in (r.lower() for r in m["rcpt_tos"])]


class RefusingServer:
    """A TCP server at host:port whose greeting is `greeting` (e.g. "421 4.3.2
    busy"); it then answers QUIT with 221 and anything else with 503, and
    counts connections."""

    def __init__(self, host, port, greeting="421 4.3.2 Service not available"):
        self.host, self.port, self.greeting = host, port, greeting
        self.connections = 0
        self.commands = []
        outer = self

        class H(socketserver.StreamRequestHandler):
            timeout = 10

            def handle(self):
                outer.connections += 1
                try:
                    self.wfile.write(outer.greeting.encode() + b"\r\n")
                    for _ in range(20):
                        line = self.rfile.readline(1024)
                        if not line:
                            return
                        outer.commands.append(line.rstrip(b"\r\n").decode("latin-1"))
                        if line[:4].upper() == b"QUIT":
                            self.wfile.write(b"221 2.0.0 bye\r\n")
                            return
                        self.wfile.write(b"503 5.5.1 go away\r\n")
                except OSError:
                    return

        class S(socketserver.ThreadingTCPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.server = S((host, port), H)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def pick_remote_port(hosts):
    """A TCP port that can be bound on every address in hosts."""
    return free_port(tuple(hosts))


# Addresses used by the relay tests (one "remote host" each, all on REMOTE_PORT)
SINK_HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7"]


class RelayEnv:
    """Everything one relay test needs: the DNS server, the remote port,
    sinks started on demand, and postern configured to use them."""

    def __init__(self, make_server, dns_server, port):
        self.make_server = make_server
        self.dns = dns_server
        self.port = port
        self.sinks = []
        self.others = []

    def sink(self, host, **kw):
        s = Sink(host, self.port, **kw).start()
        self.sinks.append(s)
        return s

    def refusing(self, host, greeting="421 4.3.2 Service not available"):
        r = RefusingServer(host, self.port, greeting).start()
        self.others.append(r)
        return r

    def overrides(self, **extra):
        from conftest import deep_merge
        base = {
            "relay_networks": ["127.0.0.0/8"],
            "dns": {"servers": [self.dns.address]},
            "remote": {"port": self.port, "connect_timeout_s": 5, "command_timeout_s": 20},
            "queue": {"retry_initial_s": 1, "retry_max_s": 2},
        }
        return deep_merge(base, extra)

    def postern(self, start=True, name=None, **extra):
        return self.make_server(self.overrides(**extra), start=start, name=name)

    def postern_mx(self, domain, host, name, start=True, **extra):
        """A postern that is the MX of domain: DNS names mx.<domain> at host,
        where it listens on the remote port, besides 127.0.0.1:srv.port (for
        wait_ready and the tests' clients); otherwise as postern()."""
        import json
        self.dns.mx(domain, (10, f"mx.{domain}"))
        self.dns.a(f"mx.{domain}", host)
        srv = self.postern(start=False, name=name, **extra)
        srv.config["listeners"] = [{"address": f"127.0.0.1:{srv.port}", "mode": "smtp"},
                                   {"address": f"{host}:{self.port}", "mode": "smtp"}]
        srv.config_path.write_text(json.dumps(srv.config, indent=2))
        return srv.start() if start else srv

    def stop(self):
        for s in self.sinks:
            s.stop()
        for o in self.others:
            try:
                o.stop()
            except Exception:
                pass


@pytest.fixture
def dns():
    d = TestDNS().start()
    yield d
    d.stop()


@pytest.fixture
def relay_env(make_server, dns):
    port = pick_remote_port(SINK_HOSTS)
    env = RelayEnv(make_server, dns, port)
    yield env
    env.stop()


# --------------------------------------------------------------------------
# sending and DSN parsing

SENDER = "alice@example.test"


def send(server, rcpts, *, sender=SENDER, msg=None, mail_params="", subject="relay test",
         source=None):
    """One SMTP transaction to postern (from 127.0.0.1 unless source);
    returns (queue id, message bytes as sent)."""
    msg = msg if msg is not None else make_message(subject)
    with RawSMTP(server.port, source=source) as c:
        c.greeting()
        c.ehlo()
        qid = c.transaction(sender, rcpts, dot_stuff(msg), mail_params=mail_params)
        c.ok("QUIT", 221)
    return qid, msg


def parse_dsn(data):
    """Parse a delivered DSN (bytes of a Maildir file, prefix headers included).
    Returns a dict: msg, text (the human part), per_message (dict), recipients
    (list of dicts with lower-case keys), headers (the text/rfc822-headers
    part as str)."""
    msg = email.message_from_bytes(data, policy=email.policy.compat32)
    assert msg.get_content_type() == "multipart/report", msg.get_content_type()
    assert (msg.get_param("report-type") or "").lower() == "delivery-status", msg["Content-Type"]
    parts = msg.get_payload()
    assert isinstance(parts, list) and len(parts) >= 2, parts
    types = [p.get_content_type() for p in parts]
    assert types[0] == "text/plain", types
    assert types[1] in ("message/delivery-status", "message/global-delivery-status"), types
    status = parts[1]
    blocks = status.get_payload()
    if isinstance(blocks, str):  # not split by the parser: do it by hand
        blocks = [email.message_from_string(b.strip() + "\n")
                  for b in blocks.replace("\r\n", "\n").split("\n\n") if b.strip()]
    assert len(blocks) >= 2, f"delivery-status needs a per-message block and >=1 recipient: {blocks}"

    def fields(block):
        return {k.lower(): " ".join(v.split()) for k, v in block.items()}
    headers = None
    for p in parts[2:]:
        if p.get_content_type() in ("text/rfc822-headers", "message/rfc822",
                                    "message/global-headers"):
            payload = p.get_payload(decode=True)
            if payload is None:
                payload = str(p.get_payload())
            headers = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else payload
    return {"msg": msg, "text": str(parts[0].get_payload()),
            "per_message": fields(blocks[0]),
            "recipients": [fields(b) for b in blocks[1:]], "headers": headers}


def dsns_for(server, address):
    return [parse_dsn(p.read_bytes()) for p in server.delivered(address)]


def wait_dsns(server, address, count, timeout=20):
    from conftest import wait_for_files
    files = wait_for_files(server.new(address), count, timeout)
    return [parse_dsn(p.read_bytes()) for p in files]


def assert_dsn_envelope(server, dsn, hostname):
    """The common shape of every DSN postern sends."""
    msg = dsn["msg"]
    # envelope sender <> (the Return-Path the Maildir delivery wrote)
    assert msg["Return-Path"].strip() == "<>", msg["Return-Path"]
    frm = msg["From"]
    assert f"MAILER-DAEMON@{hostname}".lower() in frm.lower(), frm
    pm = dsn["per_message"]
    assert "reporting-mta" in pm, pm
    assert hostname.lower() in pm["reporting-mta"].lower(), pm


def log_events_with(server, event, **match):
    out = []
    for e in server.log_events(event):
        if all(e.get(k, "").strip('"') == v for k, v in match.items()):
            out.append(e)
    return out


def wait_log(server, event, timeout=20, **match):
    try:
        return wait_until(lambda: log_events_with(server, event, **match), timeout,
                          f"log event={event} {match}")
    except AssertionError:
        raise AssertionError(f"timed out after {timeout}s waiting for event={event} {match}\n"
                             f"{server.log_tail(40)}") from None


def unq(v):
    return v.strip('"') if isinstance(v, str) else v


# --------------------------------------------------------------------------
# a private Postfix instance (Debian's postfix package) as a destination

POSTFIX = "/usr/sbin/postfix"

POSTFIX_MASTER_CF = """\
{host}:{port} inet n - n - - smtpd
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
proxywrite unix - - n - 1 proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
virtual unix - n n - - virtual
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""

POSTFIX_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {d}/spool
data_directory = {d}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = {hostname}
mydomain = {domain}
myorigin = {domain}
# the listener's address is in master.cf; Postfix wants inet_interfaces to be
# addresses of an interface, which 127.0.0.N (N > 1) is not
inet_interfaces = loopback-only
inet_protocols = ipv4
mydestination =
mynetworks = 127.0.0.0/8
relay_domains =
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {d}/vmail
virtual_mailbox_maps = texthash:{d}/etc/vmailbox
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
maillog_file_prefixes = {d}
maillog_file = {d}/maillog
alias_maps =
alias_database =
biff = no
append_dot_mydomain = no
smtp_dns_support_level = disabled
smtpd_banner = $myhostname ESMTP Postfix
"""


class PostfixInstance:
    """Postfix with its own config_directory, queue and mailboxes in a fresh
    directory (not under pytest's 0700 tmp_path: Postfix's daemons run as
    `postfix` and `nobody` and must reach it), virtual Maildir mailboxes for
    `domain`, smtpd on host:port, nothing chrooted."""

    def __init__(self, host, port, domain, users, hostname=None):
        import pwd
        import tempfile
        self.host, self.port, self.domain = host, port, domain
        self.hostname = hostname or f"mx.{domain}"
        self.dir = Path(tempfile.mkdtemp(prefix="postern-postfix-"))
        self.dir.chmod(0o755)
        d = self.dir
        for sub in ("etc", "spool", "data", "vmail"):
            (d / sub).mkdir()
        os_chown = __import__("os").chown
        pw = pwd.getpwnam("postfix")
        os_chown(d / "data", pw.pw_uid, pw.pw_gid)
        os_chown(d / "vmail", 65534, 65534)
        (d / "etc" / "main.cf").write_text(POSTFIX_MAIN_CF.format(
            d=d, hostname=self.hostname, domain=domain))
        (d / "etc" / "master.cf").write_text(POSTFIX_MASTER_CF.format(host=host, port=port))
        (d / "etc" / "vmailbox").write_text(
            "".join(f"{u}@{domain} {domain}/{u}/\n" for u in users))
        self.started = False

    def _run(self, *args, timeout=60):
        import subprocess
        # Postfix writes its errors to stderr only when that is a terminal
        # (else to syslog, absent here): the maillog file is the record.
        return subprocess.run([POSTFIX, "-c", str(self.dir / "etc"), *args],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)

    def start(self, timeout=30):
        r = self._run("start")
        if r.returncode != 0:
            raise RuntimeError(f"postfix start failed ({r.returncode}): {r.stdout}{r.stderr}\n"
                               f"{self.log()}")
        self.started = True
        wait_until(lambda: self._answers(), timeout, f"Postfix smtpd on {self.host}:{self.port}")
        return self

    def _answers(self):
        try:
            with RawSMTP(self.port, host=self.host, timeout=5) as c:
                c.greeting()
                c.ok("QUIT", 221)
            return True
        except (OSError, AssertionError):
            return False

    def stop(self):
        if self.started:
            r = self._run("stop")
            if r.returncode != 0:
                self._run("abort")
            self.started = False
            # wait until the listener is gone (master closes it on exit)
            try:
                wait_until(lambda: not self._listening(), 20, "Postfix to stop listening")
            except AssertionError:
                pass

    def _listening(self):
        try:
            with socket.create_connection((self.host, self.port), timeout=2):
                return True
        except OSError:
            return False

    def cleanup(self):
        import shutil
        shutil.rmtree(self.dir, ignore_errors=True)

    def log(self):
        try:
            return (self.dir / "maillog").read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def new(self, user):
        return self.dir / "vmail" / self.domain / user / "new"
