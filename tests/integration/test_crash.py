"""Crash safety: kill -9 at any moment; after a restart with the same config
every message that got `250 ... queued as` is delivered exactly once, and no
message that did not get a 250 is ever delivered.

The only uncertain case is a message whose final <CRLF>.<CRLF> was fully
written but whose reply never arrived (the kill came in between): it may or
may not be delivered, but never twice."""

import collections
import threading
import traceback

from conftest import (RawSMTP, SMTPError, dot_stuff, make_message, message_ids_in,
                      split_delivered, wait_until)

THREADS = 8
MAX_PER_THREAD = 300          # bounded loop; the kill normally comes long before
KILL_AFTER_ACKS = 120

ACKED, UNKNOWN, NOT_SENT, REFUSED = "acked", "unknown", "not-sent", "refused"


def _targets(t, k):
    """Recipients and the mailboxes they reach (team -> alice + bob)."""
    choice = (t + k) % 4
    if choice == 0:
        return ["alice@example.test"], {"alice@example.test"}
    if choice == 1:
        return ["team@example.test"], {"alice@example.test", "bob@example.test"}
    if choice == 2:
        return [f"t{t}@catchall.test"], {f"t{t}@catchall.test"}
    return ["bob@example.test", f"x{t}@catchall.test"], {"bob@example.test", f"x{t}@catchall.test"}


class Load:
    def __init__(self, srv, tag):
        self.srv = srv
        self.tag = tag
        self.lock = threading.Lock()
        self.state = {}          # message-id -> state
        self.expect = {}         # message-id -> (mailboxes, body)
        self.errors = []
        self.acks = 0
        self.stop = threading.Event()
        self.stopping = threading.Event()   # set just before the server is stopped/killed
        self.threads = [threading.Thread(target=self.run, args=(t,), daemon=True)
                        for t in range(THREADS)]

    def start(self):
        for th in self.threads:
            th.start()

    def join(self):
        for th in self.threads:
            th.join(timeout=60)
        assert not any(th.is_alive() for th in self.threads), "load threads did not finish"

    def set(self, mid, st):
        with self.lock:
            self.state[mid] = st
            if st == ACKED:
                self.acks += 1

    def run(self, t):
        try:
            c = RawSMTP(self.srv.port, timeout=30)
        except OSError:
            return
        try:
            c.greeting()
            c.ehlo()
            for k in range(MAX_PER_THREAD):
                if self.stop.is_set():
                    break
                mid = f"{self.tag}-t{t}-m{k}@crash.test"
                rcpts, boxes = _targets(t, k)
                msg = make_message(f"crash {t}/{k}", [f"t={t} k={k}", ".dot", "x" * (k % 200)],
                                   msgid=mid)
                with self.lock:
                    self.expect[mid] = (boxes, msg)
                self.set(mid, NOT_SENT)
                c.ok(f"MAIL FROM:<t{t}@remote.test>", 250, "2.1.0")
                for r in rcpts:
                    c.ok(f"RCPT TO:<{r}>", 250, "2.1.5")
                c.ok("DATA", 354)
                c.send(dot_stuff(msg))
                c.send(b".\r\n")
                self.set(mid, UNKNOWN)        # the whole end of data is written
                code, texts = c.reply()
                if code == 250:
                    self.set(mid, ACKED)
                else:
                    self.set(mid, REFUSED)
                    if not self.stopping.is_set():
                        with self.lock:
                            self.errors.append(f"{mid}: unexpected reply {code} {texts}")
        except (OSError, SMTPError):
            pass          # the server was killed under us
        except AssertionError:
            # a non-250 reply while the server was alive is a real failure;
            # after the kill anything may happen on the wire
            if not self.stopping.is_set():
                with self.lock:
                    self.errors.append(traceback.format_exc())
        finally:
            c.close()


def _verify(srv, load, timeout=90):
    acked = [m for m, s in load.state.items() if s == ACKED]
    unknown = {m for m, s in load.state.items() if s == UNKNOWN}
    assert acked, "no message was acknowledged before the kill"

    def mailbox_counts():
        counts = collections.Counter()        # (mid, mailbox) -> files
        for f in srv.all_delivered():
            rel = f.relative_to(srv.mail_root).parts
            box = f"{rel[1]}@{rel[0]}"
            for mid in message_ids_in(f):
                counts[(mid, box)] += 1
        return counts

    def all_acked_in():
        counts = mailbox_counts()
        return all(counts[(m, b)] >= 1 for m in acked for b in load.expect[m][0])

    wait_until(all_acked_in, timeout, "every acknowledged message in its mailboxes",
               interval=0.2)
    srv.wait_queue_empty(timeout)
    counts = mailbox_counts()
    problems = []
    delivered_mids = {m for (m, _b) in counts}
    for (mid, box), n in counts.items():
        if n != 1:
            problems.append(f"{mid} delivered {n} times to {box}")
        st = load.state.get(mid)
        if st in (NOT_SENT, REFUSED, None):
            problems.append(f"{mid} ({st}: never acknowledged) was delivered to {box}")
        elif box not in load.expect[mid][0]:
            problems.append(f"{mid} delivered to unexpected mailbox {box}")
    for mid in acked:
        for box in load.expect[mid][0]:
            if counts[(mid, box)] != 1:
                problems.append(f"acked {mid} has {counts[(mid, box)]} copies in {box}")
    # an uncertain message is delivered to all of its mailboxes or to none
    for mid in unknown & delivered_mids:
        boxes = {b for (m, b) in counts if m == mid}
        if boxes != load.expect[mid][0]:
            problems.append(f"uncertain {mid} delivered to {sorted(boxes)} only")
    assert not problems, "\n".join(problems[:30])
    # byte-exact content for everything delivered
    for f in srv.all_delivered():
        mid = message_ids_in(f)[0]
        assert split_delivered(f.read_bytes())[3] == load.expect[mid][1], f
    assert srv.incoming_files() == []
    assert srv.queue_files() == []
    return len(acked), len(unknown & delivered_mids), len(unknown)


def test_kill9_while_receiving(make_server):
    srv = make_server()
    load = Load(srv, "recv")
    load.start()
    try:
        wait_until(lambda: load.acks >= KILL_AFTER_ACKS or
                   not any(th.is_alive() for th in load.threads),
                   90, f"{KILL_AFTER_ACKS} acknowledged messages")
    finally:
        load.stopping.set()
        srv.kill9()
        load.stop.set()
        load.join()
    assert not load.errors, "\n".join(load.errors[:5])
    srv.start()
    acked, unknown_delivered, unknown = _verify(srv, load)
    print(f"acked={acked} uncertain={unknown} (delivered {unknown_delivered})")


def _events_since_last_start(srv, event):
    text = srv.log()
    last = text.rsplit(f"---- start #{srv.generation}\n", 1)[-1]
    return [line for line in last.splitlines() if f"event={event} " in line + " "]


def test_kill9_during_delivery_repeatedly(make_server):
    """Queue a batch, then kill -9 the server right as deliveries happen,
    several times; in the end each message is in each mailbox exactly once."""
    srv = make_server()
    load = Load(srv, "deliv")
    load.start()
    try:
        wait_until(lambda: load.acks >= 200 or
                   not any(th.is_alive() for th in load.threads),
                   90, "200 acknowledged messages")
    finally:
        load.stopping.set()
        srv.kill9()
        load.stop.set()
        load.join()
    assert not load.errors, "\n".join(load.errors[:5])
    for _round in range(5):
        srv.start()
        # kill as soon as this incarnation has delivered something (if anything is left)
        wait_until(lambda: _events_since_last_start(srv, "delivery") or not srv.queue_files(),
                   30, "a delivery after restart")
        srv.kill9()
    srv.start()
    _verify(srv, load)


def test_sigterm_while_receiving(make_server):
    """A graceful stop (SIGTERM, SIGKILL only if still running after 5 s) under
    load keeps the same promises."""
    srv = make_server()
    load = Load(srv, "term")
    load.start()
    try:
        wait_until(lambda: load.acks >= 80 or
                   not any(th.is_alive() for th in load.threads),
                   90, "80 acknowledged messages")
    finally:
        load.stopping.set()
        srv.stop()
        load.stop.set()
        load.join()
    assert not load.errors, "\n".join(load.errors[:5])
    srv.start()
    _verify(srv, load)


def test_kill9_during_big_data_then_restart_purges(make_server):
    """kill -9 while a large message is being received: after the restart
    nothing of it is delivered, incoming/ is empty, and the server works."""
    srv = make_server({"limits": {"message_size": 64 * 1024 * 1024}})
    c = RawSMTP(srv.port, timeout=30)
    c.greeting()
    c.ehlo()
    c.ok("MAIL FROM:<big@remote.test>", 250, "2.1.0")
    c.ok("RCPT TO:<alice@example.test>", 250, "2.1.5")
    c.ok("DATA", 354)
    chunk = (b"y" * 98 + b"\r\n") * 10_000          # 1 MB
    c.send(b"Subject: killed mid-data\r\nMessage-ID: <killed@crash.test>\r\n\r\n")
    for _ in range(12):                              # 12 MB written; socket buffers hold far less
        c.send(chunk)
    srv.kill9()
    c.close()
    srv.start()
    srv.wait_queue_empty()
    assert srv.incoming_files() == []
    good = make_message("after restart", msgid="after-restart@crash.test")
    with srv.connect() as c2:
        c2.greeting()
        c2.ehlo()
        c2.transaction("x@remote.test", ["alice@example.test"], dot_stuff(good))
        c2.assert_nothing_pending()
    wait_until(lambda: srv.delivered("alice@example.test"), 20, "delivery after restart")
    srv.wait_queue_empty()
    files = srv.all_delivered()
    assert [message_ids_in(f) for f in files] == [["after-restart@crash.test"]]
