"""Crash torture: a mixed load (local, relayed, mixed local+remote, aliases
that fan out to both) from several smtplib clients while the server is
killed with SIGKILL at random moments, many rounds; then the queue drains
and every promise is checked:

- a message that got `250` after DATA ("acked") is delivered to every one of
  its recipients exactly once: local Maildirs counted by Message-ID, remote
  recipients counted in the sinks' received messages;
- a message that got no 250 and whose end of data was never completely written
  ("not sent"), or that got a non-250 reply, is delivered nowhere;
- a message whose end of data was written but whose reply was lost in the
  kill ("unknown") is delivered at most once per recipient; if it reached any
  recipient through the queue (it has a remote recipient, so it was queued
  before a 250 would have been sent), it reaches all of them;
- no local duplicate, ever: the Maildir file name is derived from the queue id;
- a remote duplicate is the one accepted case (RFC 5321 6.1: the kill fell
  after the peer's 250 and before the server recorded it): it is counted and
  reported apart, and accepted only if its copies came from different server
  incarnations (a kill lies between them); two copies from one incarnation
  fail the test;
- after a clean restart the spool holds nothing stale: queue/ and incoming/
  and corrupt/ are empty (free/ holds recycled, empty files and does not count).

Reported, not failed: an "unknown" all-local message found in some of its
mailboxes only (all-local mail is written to the Maildirs before the 250, with
no queue entry, so a kill between two renames leaves it so: no 250 was given),
and files left in Maildir tmp/ directories (Maildir readers clean tmp/).

Knobs (environment), for a longer run by hand:
  POSTERN_TORTURE_ROUNDS   kill rounds (default 25)
  POSTERN_TORTURE_SEED     the seed of the schedule and the message mix
                           (default: random, always printed)
  POSTERN_TORTURE_THREADS  client threads (default 6)
  POSTERN_TORTURE_MIN_S / POSTERN_TORTURE_MAX_S
                           load time per round before the kill (0.2 / 1.5)
  POSTERN_TORTURE_EARLY    chance that a round is cut short, 0.03-0.2 s after
                           the restart, to kill during the recovery scan (0.15)
  POSTERN_TORTURE_DRAIN_S  bound on the final drain (default 60)
e.g.  POSTERN_TORTURE_ROUNDS=150 POSTERN_TORTURE_SEED=7 \\
      /usr/bin/python3 -m pytest tests/integration/test_torture.py -q -s

The seed fixes the kill schedule and each thread's sequence of messages; the
thread interleaving and where exactly a kill lands are up to the machine.
"""

import collections
import os
import random
import re
import smtplib
import socket
import threading
import time

from conftest import dot_stuff, split_delivered, wait_until
from relay_helpers import dns, relay_env  # noqa: F401  (fixtures)

ROUNDS = int(os.environ.get("POSTERN_TORTURE_ROUNDS", "25"))
THREADS = int(os.environ.get("POSTERN_TORTURE_THREADS", "6"))
MIN_S = float(os.environ.get("POSTERN_TORTURE_MIN_S", "0.2"))
MAX_S = float(os.environ.get("POSTERN_TORTURE_MAX_S", "1.5"))
EARLY = float(os.environ.get("POSTERN_TORTURE_EARLY", "0.15"))
DRAIN_S = float(os.environ.get("POSTERN_TORTURE_DRAIN_S", "60"))
DUP_DETAIL = 20   # remote duplicates printed one by one (all are counted per round)

SENDER = "torture@catchall.test"     # local: a DSN (there must be none) would show up
FAR, AWAY = "far.test", "away.test"  # remote domains, one sink each

NOT_SENT, UNKNOWN, ACKED, REFUSED = "not-sent", "unknown", "acked", "refused"

ALIASES = {
    # conftest's aliases (an override replaces the whole object)
    "postmaster@example.test": ["alice@example.test"],
    "team@example.test": ["alice@example.test", "bob@example.test"],
    "staff@example.test": ["team@example.test"],
    "all@example.test": ["staff@example.test", "alice@example.test"],
    # fans out to a local mailbox and a remote address
    "fwd@example.test": ["carl@users.test", f"fwd-out@{FAR}"],
}

MSGID_RE = re.compile(rb"^Message-ID: <([^>]+)>\r?$", re.M | re.I)
ENTRY_RE = re.compile(r"^[0-9a-f]{16}(\.env)?$")
RCVD_ID_RE = re.compile(rb"\(postern\) with \S+ id ([0-9a-f]{16})")


def _plan(rng, t, k):
    """(recipients as sent, local mailboxes, remote addresses) for message k of thread t."""
    u = f"t{t}k{k}"
    kind = rng.choices(
        ["local1", "alias", "local_multi", "remote1", "remote_same", "remote_two",
         "mixed", "mixed3", "fwd"],
        weights=[3, 1, 1, 2, 1, 1, 2, 1, 1])[0]
    if kind == "local1":
        r = rng.choice(["alice@example.test", "bob@example.test", "carl@users.test",
                        f"c{t}@catchall.test"])
        return kind, [r], {r}, set()
    if kind == "alias":
        return kind, ["team@example.test"], {"alice@example.test", "bob@example.test"}, set()
    if kind == "local_multi":
        return (kind, ["bob@example.test", f"x{t}@catchall.test", "carl@users.test"],
                {"bob@example.test", f"x{t}@catchall.test", "carl@users.test"}, set())
    if kind == "remote1":
        r = f"r-{u}@{FAR}"
        return kind, [r], set(), {r}
    if kind == "remote_same":
        rs = [f"a-{u}@{FAR}", f"b-{u}@{FAR}"]
        return kind, rs, set(), set(rs)
    if kind == "remote_two":
        rs = [f"a-{u}@{FAR}", f"b-{u}@{AWAY}"]
        return kind, rs, set(), set(rs)
    if kind == "mixed":
        rs = ["alice@example.test", f"m-{u}@{FAR}"]
        return kind, rs, {"alice@example.test"}, {rs[1]}
    if kind == "mixed3":
        rs = ["team@example.test", f"m-{u}@{FAR}", f"n-{u}@{AWAY}", f"y{t}@catchall.test"]
        return (kind, rs, {"alice@example.test", "bob@example.test", f"y{t}@catchall.test"},
                {rs[1], rs[2]})
    # fwd: an alias to carl (local) and fwd-out@far.test, plus a direct remote one
    rs = ["fwd@example.test", f"f-{u}@{AWAY}"]
    return kind, rs, {"carl@users.test"}, {f"fwd-out@{FAR}", rs[1]}


def _message(rng, mid, token, t, k):
    lines = [f"torture token {token}", ".a line that starts with a dot", "..two dots", ""]
    size = rng.choice([1, 1, 1, 2, 4, 8]) * 300
    if rng.random() < 0.04:
        size = 120_000  # a big one now and then: kills during DATA
    filler = f"t={t} k={k} " + "x" * 60
    while sum(len(x) + 2 for x in lines) < size:
        lines.append(filler)
    lines += ["", "-- ", "end"]
    hdrs = [f"From: Torture <{SENDER}>", "To: undisclosed-recipients:;",
            f"Subject: torture {token}", f"Message-ID: <{mid}>",
            "Date: Thu, 26 Nov 2026 07:00:00 +0000"]
    return ("\r\n".join(hdrs) + "\r\n\r\n" + "\r\n".join(lines) + "\r\n").encode()


def _timed_out(e):
    # smtplib turns a socket timeout into SMTPServerDisconnected("... timed out")
    return isinstance(e, socket.timeout) or "timed out" in str(e)


class Load:
    """Client threads sending through smtplib until told to stop; every
    message's fate as the client saw it is in self.msgs[mid]["state"]."""

    def __init__(self, srv, seed):
        self.srv = srv
        self.seed = seed
        self.lock = threading.Lock()
        self.msgs = {}
        self.errors = []
        self.round = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(t,), daemon=True)
                        for t in range(THREADS)]

    def start(self):
        for th in self.threads:
            th.start()

    def join(self, timeout=60):
        deadline = time.monotonic() + timeout
        for th in self.threads:
            th.join(timeout=max(0.1, deadline - time.monotonic()))
        assert not any(th.is_alive() for th in self.threads), "client threads did not finish"

    def count(self, state, rnd=None):
        with self.lock:
            return sum(1 for m in self.msgs.values()
                       if m["state"] == state and (rnd is None or m["round"] == rnd))

    def _error(self, what):
        with self.lock:
            self.errors.append(f"round {self.round} gen {self.srv.generation}: {what}")

    def run(self, t):
        rng = random.Random(f"{self.seed}/{t}")
        conn = None
        k = 0
        while not self.stop.is_set():
            if conn is None:
                try:
                    conn = smtplib.SMTP(timeout=30)
                    code, text = conn.connect("127.0.0.1", self.srv.port)
                    if code != 220:
                        self._error(f"t{t}: greeting {code} {text!r}")
                        conn.close()
                        conn = None
                        continue
                    code, text = conn.ehlo("client.test")
                    if code != 250:
                        raise smtplib.SMTPResponseException(code, text)
                except smtplib.SMTPResponseException as e:
                    self._error(f"t{t}: while connecting: {e.smtp_code} {e.smtp_error!r}")
                    conn.close()
                    conn = None
                    continue
                except (OSError, smtplib.SMTPException) as e:
                    if _timed_out(e):
                        self._error(f"t{t}: timeout while connecting (hang?): {e!r}")
                    conn.close()
                    conn = None
                    time.sleep(0.02)  # down between kill and restart
                    continue
            kind, rcpts, boxes, remote = _plan(rng, t, k)
            token = f"s{self.seed}.t{t}.k{k}"
            mid = f"{token}@torture.test"
            msg = _message(rng, mid, token, t, k)
            k += 1
            info = {"state": NOT_SENT, "kind": kind, "rcpts": rcpts, "boxes": boxes,
                    "remote": remote, "body": msg, "round": self.round,
                    "gen": self.srv.generation, "qid": None, "reply": None}
            with self.lock:
                self.msgs[mid] = info
            try:
                code, text = conn.mail(SENDER)
                if code != 250:
                    raise smtplib.SMTPResponseException(code, b"MAIL: " + text)
                for r in rcpts:
                    code, text = conn.rcpt(r)
                    if code != 250:
                        raise smtplib.SMTPResponseException(code, f"RCPT {r}: ".encode() + text)
                code, text = conn.docmd("DATA")
                if code != 354:
                    raise smtplib.SMTPResponseException(code, b"DATA: " + text)
                conn.send(dot_stuff(msg) + b".\r\n")  # raises unless every byte was written
                with self.lock:
                    info["state"] = UNKNOWN
                code, text = conn.getreply()
                with self.lock:
                    info["reply"] = (code, text.decode(errors="replace"))
                    if code == 250:
                        info["state"] = ACKED
                        m = re.search(r"queued as ([0-9a-f]{16})", info["reply"][1])
                        info["qid"] = m.group(1) if m else None
                        info["ack_round"] = self.round
                    else:
                        info["state"] = REFUSED
                if code != 250:
                    raise smtplib.SMTPResponseException(code, b"end of data: " + text)
                if rng.random() < 0.1:  # sometimes a fresh connection
                    conn.quit()
                    conn.close()
                    conn = None
            except smtplib.SMTPResponseException as e:
                # a reply came, so the server was alive: SIGKILL sends none
                self._error(f"t{t} {mid}: unexpected reply {e.smtp_code} {e.smtp_error!r}")
                conn.close()
                conn = None
            except (OSError, smtplib.SMTPException) as e:
                if _timed_out(e):
                    self._error(f"t{t} {mid}: no reply within 30 s (hang?): {e!r}")
                conn.close()
                conn = None
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            conn.close()


class Deliveries:
    """What arrived: local Maildir files (parsed once each; they never change)
    and the sinks' messages."""

    def __init__(self, srv, sinks):
        self.srv = srv
        self.sinks = sinks
        self.parsed = {}  # path -> (mids, qid)

    def local(self):
        """(mid, mailbox) -> [paths], plus files with no known Message-ID."""
        out = collections.defaultdict(list)
        root = self.srv.mail_root
        if not root.exists():
            return out
        for f in root.glob("*/*/new/*"):
            if f not in self.parsed:
                data = f.read_bytes()
                mids = [m.decode() for m in MSGID_RE.findall(data)]
                q = RCVD_ID_RE.search(data)
                self.parsed[f] = (mids, q.group(1).decode() if q else None)
            mids, _ = self.parsed[f]
            box = f"{f.parent.parent.name}@{f.parent.parent.parent.name}"
            for mid in mids or ["<no Message-ID>"]:
                out[(mid, box)].append(f)
        return out

    def remote(self):
        """(mid, rcpt) -> [(sink name, index in that sink's list)]."""
        out = collections.defaultdict(list)
        for s in self.sinks:
            for i, m in enumerate(list(s.messages)):
                mids = [x.decode() for x in MSGID_RE.findall(m["data"])] or ["<no Message-ID>"]
                for r in m["rcpt_tos"]:
                    for mid in mids:
                        out[(mid, r.lower())].append((s.name, i))
        return out


def _settle(sinks, quiet=0.15, bound=2.0):
    """Wait until no sink has received anything for `quiet` s (bounded): a
    message the dead server finished sending is counted in its own round."""
    deadline = time.monotonic() + bound
    last = [len(s.messages) for s in sinks]
    calm_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.03)
        now = [len(s.messages) for s in sinks]
        if now != last:
            last, calm_since = now, time.monotonic()
        elif time.monotonic() - calm_since >= quiet:
            break
    return last


def _log_lines(srv, needles, limit=12):
    out = []
    for line in srv.log().splitlines():
        if line.startswith("---- start") or any(n and n in line for n in needles):
            out.append(line)
    # keep the start markers only where they separate matching lines
    keep = [l for i, l in enumerate(out)
            if not l.startswith("---- start") or (i + 1 < len(out) and
                                                  not out[i + 1].startswith("---- start"))]
    return keep[-limit:]


def test_kill9_torture_mixed_local_and_relay(relay_env):
    seed = int(os.environ.get("POSTERN_TORTURE_SEED") or random.SystemRandom().randrange(1 << 31))
    rng = random.Random(seed)
    print(f"\ntorture: seed={seed} rounds={ROUNDS} threads={THREADS} "
          f"round={MIN_S}-{MAX_S}s early={EARLY}  "
          f"(re-run: POSTERN_TORTURE_SEED={seed} POSTERN_TORTURE_ROUNDS={ROUNDS})")
    env = relay_env
    env.dns.mx(FAR, (10, f"mx.{FAR}"))
    env.dns.a(f"mx.{FAR}", "127.0.0.2")
    env.dns.mx(AWAY, (10, f"mx.{AWAY}"))
    env.dns.a(f"mx.{AWAY}", "127.0.0.3")
    sinks = [env.sink("127.0.0.2", name=f"mx.{FAR}"), env.sink("127.0.0.3", name=f"mx.{AWAY}")]
    srv = env.postern(aliases=ALIASES, queue={"retry_initial_s": 1, "retry_max_s": 2},
                      remote={"connect_timeout_s": 5, "command_timeout_s": 20,
                              "tls_policy": "none"})
    t0 = time.monotonic()
    load = Load(srv, seed)
    bounds = []       # per generation: [len(sink.messages)] once that incarnation is dead
    rounds_log = []
    kill_times = []   # wall clock of each round's kill
    load.start()
    try:
        for r in range(ROUNDS):
            load.round = r
            early = r > 0 and rng.random() < EARLY
            dur = rng.uniform(0.03, 0.2) if early else rng.uniform(MIN_S, MAX_S)
            down = rng.uniform(0.0, 0.2)
            time.sleep(dur)
            if not srv.alive():
                raise AssertionError(f"round {r}: postern died on its own "
                                     f"(status {srv.proc.returncode})\n{srv.log_tail()}")
            srv.kill9()
            kill_times.append(time.time())
            bounds.append(_settle(sinks))
            rounds_log.append((r, dur, early))
            time.sleep(down)
            srv.start(timeout=30)
        load.round = ROUNDS
        time.sleep(0.3)  # a little load on the last incarnation too
    finally:
        load.stop.set()
        load.join()
    t_load = time.monotonic() - t0

    # ---- drain (bounded) and a clean restart
    dl = Deliveries(srv, sinks)
    with load.lock:
        msgs = dict(load.msgs)

    def missing():
        loc, rem = dl.local(), dl.remote()
        out = []
        for mid, m in msgs.items():
            if m["state"] != ACKED:
                continue
            out += [(mid, b) for b in m["boxes"] if not loc.get((mid, b))]
            out += [(mid, a) for a in m["remote"] if not rem.get((mid, a.lower()))]
        return out

    def queue_entries():
        # entries and their later envelopes; any other file in queue/ is
        # judged after the clean restart (stale)
        return [p for p in srv.queue_files() if ENTRY_RE.match(p.name)]

    drained = True
    try:
        wait_until(lambda: not missing() and not queue_entries() and not srv.incoming_files(),
                   DRAIN_S, "every acked message delivered and the queue empty", interval=0.25)
    except AssertionError:
        drained = False
    t_drain = time.monotonic() - t0 - t_load
    queue_before_restart = [str(p.relative_to(srv.spool)) for p in queue_entries()]
    srv.stop()
    assert srv.proc.returncode == 0, f"SIGTERM: exit status {srv.proc.returncode}"
    srv.start(timeout=30)
    time.sleep(1.5)  # past retry_initial_s: anything re-delivered would show
    bounds.append(_settle(sinks))
    stale = {"queue": [str(p.relative_to(srv.spool)) for p in srv.queue_files()],
             "incoming": [str(p.relative_to(srv.spool)) for p in srv.incoming_files()],
             "corrupt": sorted(str(p.relative_to(srv.spool))
                               for p in (srv.spool / "corrupt").rglob("*") if p.is_file())}
    free_files = [p for p in (srv.spool / "free").iterdir() if p.is_file()]
    maildir_tmp = [p for p in srv.mail_root.glob("*/*/tmp/*") if p.is_file()]

    # ---- the verdict
    loc, rem = dl.local(), dl.remote()

    def gen_of(sink_name, idx):
        si = [s.name for s in sinks].index(sink_name)
        for g, b in enumerate(bounds):
            if idx < b[si]:
                return g
        return len(bounds)

    problems = []
    local_dups, remote_dups = [], []
    n_local = n_remote = 0
    for (mid, box), files in sorted(loc.items()):
        n_local += len(files)
        m = msgs.get(mid)
        if m is None:
            problems.append(f"unexpected local delivery {mid} in {box}: {[str(f) for f in files]}")
            continue
        if box not in m["boxes"]:
            problems.append(f"{mid} delivered to a mailbox it was not for: {box}")
        if m["state"] in (NOT_SENT, REFUSED):
            problems.append(f"{mid} ({m['state']}, round {m['round']}) delivered to {box}")
        if len(files) > 1:
            local_dups.append((mid, box, files))
        # byte-exact: the prefix headers then exactly the bytes sent
        for f in files:
            if split_delivered(f.read_bytes())[3] != m["body"]:
                problems.append(f"{f}: content differs from what was sent for {mid}")
    for (mid, rcpt), where in sorted(rem.items()):
        n_remote += len(where)
        m = msgs.get(mid)
        if m is None:
            problems.append(f"unexpected remote delivery {mid} to {rcpt}")
            continue
        if rcpt not in {a.lower() for a in m["remote"]}:
            problems.append(f"{mid} relayed to a recipient it was not for: {rcpt}")
        if m["state"] in (NOT_SENT, REFUSED):
            problems.append(f"{mid} ({m['state']}, round {m['round']}) relayed to {rcpt}")
        for sname, i in where:
            data = next(s for s in sinks if s.name == sname).messages[i]["data"]
            if not data.endswith(m["body"]):
                problems.append(f"{mid}: relayed content to {rcpt} differs from what was sent")
        if len(where) > 1:
            gens = [gen_of(s, i) for s, i in where]
            sname, i = where[0]
            q = RCVD_ID_RE.search(next(s for s in sinks if s.name == sname).messages[i]["data"])
            remote_dups.append((mid, rcpt, gens, q.group(1).decode() if q else m["qid"]))
            if len(set(gens)) != len(gens):
                problems.append(f"{mid} relayed {len(where)} times to {rcpt} by one server "
                                f"incarnation (generations {gens}): not the kill window")
    for (mid, box, files) in local_dups:
        qids = sorted({dl.parsed[f][1] for f in files})
        problems.append(f"LOCAL DUPLICATE {mid} x{len(files)} in {box} (round "
                        f"{msgs[mid]['round']}, queue ids {qids}): {[f.name for f in files]}")
    lost = []
    for mid, m in msgs.items():
        targets = [(b, loc.get((mid, b), [])) for b in m["boxes"]] + \
                  [(a, rem.get((mid, a.lower()), [])) for a in m["remote"]]
        got = [t for t, w in targets if w]
        if m["state"] == ACKED:
            lost += [(mid, t) for t, w in targets if not w]
        elif m["state"] == UNKNOWN and got and len(got) != len(targets) and m["remote"]:
            # it reached someone through the queue: the queue entry was durable
            lost += [(mid, t) for t, w in targets if not w]
    for mid, t in lost:
        m = msgs[mid]
        needles = [m["qid"]] if m["qid"] else [mid]
        problems.append(f"LOST {mid} ({m['state']}, kind {m['kind']}, sent in round {m['round']}, "
                        f"queue id {m['qid']}) never reached {t}\n    "
                        + "\n    ".join(_log_lines(srv, needles)))
    def round_of_mtime(path):
        t = path.stat().st_mtime
        return next((r for r, k in enumerate(kill_times) if t <= k), "after the last kill")

    for what, files in stale.items():
        if not files:
            continue
        problems.append(f"STALE SPOOL: {len(files)} file(s) left in {what}/ after the drain and "
                        f"a clean restart (first ones follow)")
        for name in files[:5]:
            f = srv.spool / name
            head = f.read_bytes()[:120]
            problems.append(f"  {name} ({f.stat().st_size} bytes, written in round "
                            f"{round_of_mtime(f)}): {head!r}")
    if not drained:
        problems.append(f"not drained within {DRAIN_S}s; queue then: {queue_before_restart[:10]}")
    if load.errors:
        problems += ["client: " + e for e in load.errors[:20]]

    acked = load.count(ACKED)
    unknown = [mid for mid, m in msgs.items() if m["state"] == UNKNOWN]
    unknown_delivered = sum(1 for mid in unknown
                            if any(loc.get((mid, b)) for b in msgs[mid]["boxes"]) or
                            any(rem.get((mid, a.lower())) for a in msgs[mid]["remote"]))
    # an all-local message is delivered before its 250 (no queue entry): a kill
    # between its Maildir renames leaves it in some mailboxes only (no 250 was given)
    unknown_partial_direct = [
        mid for mid in unknown if not msgs[mid]["remote"]
        and 0 < sum(1 for b in msgs[mid]["boxes"] if loc.get((mid, b))) < len(msgs[mid]["boxes"])]
    kinds = collections.Counter(m["kind"] for m in msgs.values() if m["state"] == ACKED)
    per_round = []
    for r, dur, early in rounds_log:
        per_round.append(f"r{r}:{dur:.2f}s{'E' if early else ''}"
                         f" ack={sum(1 for m in msgs.values() if m.get('ack_round') == r)}"
                         f" unk={sum(1 for mid in unknown if msgs[mid]['round'] == r)}")
    print("torture rounds: " + "  ".join(per_round))
    print(f"torture: seed={seed} rounds={ROUNDS} threads={THREADS} "
          f"load {t_load:.1f}s drain {t_drain:.1f}s\n"
          f"  sent={len(msgs)} acked(250)={acked} unknown={len(unknown)} "
          f"(delivered {unknown_delivered}, partial all-local {len(unknown_partial_direct)}) "
          f"not-sent={load.count(NOT_SENT)} refused={load.count(REFUSED)}\n"
          f"  acked by kind: {dict(sorted(kinds.items()))}\n"
          f"  delivered local={n_local} remote={n_remote} "
          f"local-duplicates={len(local_dups)} remote-duplicates={len(remote_dups)} "
          f"lost={len(lost)}\n"
          f"  spool after clean restart: queue={len(stale['queue'])} "
          f"incoming={len(stale['incoming'])} corrupt={len(stale['corrupt'])} "
          f"free(recycled)={len(free_files)}; Maildir tmp/ leftovers={len(maildir_tmp)}")
    if remote_dups:
        # Where did the kill fall, by the first incarnation's log: before
        # postern read the sink's 250, after it (remote_transaction) but before
        # the runner applied it, or after it logged status=sent but before the
        # queue update was on disk.
        segments = srv.log().split("---- start #")
        kill_points = collections.Counter()
        dup_rounds = collections.Counter()
        for mid, rcpt, gens, qid in remote_dups:
            dup_rounds[gens[0]] += 1
            seg = segments[gens[0] + 1] if qid and gens[0] + 1 < len(segments) else ""
            if f"event=delivery id={qid} to={rcpt} status=sent" in seg.lower():
                kill_points["after status=sent"] += 1
            elif f"event=remote_transaction id={qid} " in seg:
                kill_points["after the peer's 250, before the runner applied it"] += 1
            else:
                kill_points["before postern read the peer's 250"] += 1
        print(f"  remote duplicates per round (the kill that ended it): "
              + " ".join(f"r{r}:{n}" for r, n in sorted(dup_rounds.items())))
        print(f"  remote duplicates by kill point: {dict(kill_points)}")
        for mid, rcpt, gens, qid in remote_dups[:DUP_DETAIL]:
            print(f"  remote duplicate (accepted, RFC 5321 6.1): {mid} to {rcpt}, queue id "
                  f"{qid}: copies from server generations {gens} (round {gens[0]} ended in "
                  f"the kill), sent in round {msgs[mid]['round']}")
        if len(remote_dups) > DUP_DETAIL:
            print(f"  ... and {len(remote_dups) - DUP_DETAIL} more remote duplicates")
    for mid in unknown_partial_direct:
        print(f"  unknown all-local partially delivered: {mid} (round {msgs[mid]['round']})")
    assert acked > 0 and any(m["remote"] for m in msgs.values() if m["state"] == ACKED), \
        "the load did not get going"
    assert not problems, (f"seed={seed} rounds={ROUNDS}: {len(problems)} problem(s)\n"
                          + "\n".join(problems[:40]))
