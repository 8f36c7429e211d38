#!/usr/bin/python3
"""contrib/bench/idle.py — memory per idle SMTP connection, postern vs Postfix vs OpenSMTPD.

For each MTA in turn (started alone, as in run.sh): opens N connections to it
(default 1,000 then 10,000), reads each greeting, sends EHLO on each and holds
them all open; then reports the server's memory (RSS summed over every process
of the instance, from its accounting cgroup, and PSS, which counts shared pages
once), the growth per held connection, how many connections got their greeting
and their EHLO answer, and whether one more client gets its greeting within 1 s
while they are held.

    /usr/bin/python3 contrib/bench/idle.py                       # 1000 and 10000, all three
    /usr/bin/python3 contrib/bench/idle.py --counts 1000 --mtas postern,postfix --out idle.md

Run as root after contrib/bench/setup-peers.sh. RLIMIT_NOFILE is raised to
the hard limit (the servers started from here inherit it).
"""
import argparse
import datetime
import errno
import os
import resource
import selectors
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Cgroup, peer_vars, sh  # noqa: E402

MTAS = ["postern", "postfix", "opensmtpd"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Conn:
    __slots__ = ("sock", "state", "buf")

    def __init__(self, sock):
        self.sock, self.state, self.buf = sock, "connecting", b""


def final_reply(buf):
    """Returns (code, rest) if buf holds a complete reply, else None."""
    while b"\r\n" in buf:
        line, buf = buf.split(b"\r\n", 1)
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3]), buf
    return None


def open_held(port, n, deadline_s, window=256):
    """Opens n connections, greeting + EHLO on each; returns (conns, counts)."""
    sel = selectors.DefaultSelector()
    conns = []
    started = 0
    connecting = 0
    counts = dict(tcp=0, greeted=0, ehlo=0, refused=0, closed=0)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        while started < n and connecting < window:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            err = s.connect_ex(("127.0.0.1", port))
            if err not in (0, errno.EINPROGRESS):
                counts["refused"] += 1
                s.close()
                started += 1
                continue
            c = Conn(s)
            conns.append(c)
            sel.register(s, selectors.EVENT_WRITE, c)
            started += 1
            connecting += 1
        if started >= n and counts["ehlo"] + counts["refused"] + counts["closed"] >= n:
            break
        for key, ev in sel.select(timeout=0.2):
            c = key.data
            if c.state == "connecting":
                connecting -= 1
                if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    counts["refused"] += 1
                    sel.unregister(c.sock)
                    c.state = "dead"
                    continue
                counts["tcp"] += 1
                c.state = "greeting"
                sel.modify(c.sock, selectors.EVENT_READ, c)
                continue
            try:
                data = c.sock.recv(4096)
            except OSError:
                data = b""
            if not data:
                counts["closed"] += 1
                sel.unregister(c.sock)
                c.state = "dead"
                continue
            c.buf += data
            r = final_reply(c.buf)
            if r is None:
                continue
            code, c.buf = r
            if c.state == "greeting":
                if code != 220:
                    counts["closed"] += 1   # e.g. 421 too many connections
                    sel.unregister(c.sock)
                    c.state = "dead"
                    continue
                counts["greeted"] += 1
                c.state = "ehlo"
                c.sock.sendall(b"EHLO idle.client.test\r\n")
            elif c.state == "ehlo":
                if code == 250:
                    counts["ehlo"] += 1
                c.state = "held"
                sel.unregister(c.sock)
    sel.close()
    return conns, counts


def greeting_time(port, limit=1.0):
    t0 = time.perf_counter()
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=limit)
        s.settimeout(max(0.01, limit - (time.perf_counter() - t0)))
        buf = b""
        while final_reply(buf) is None:
            d = s.recv(4096)
            if not d:
                return None
            buf += d
        s.close()
        return time.perf_counter() - t0
    except OSError:
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", default="1000,10000")
    ap.add_argument("--mtas", default=",".join(MTAS))
    ap.add_argument("--out", help="also write the Markdown table here")
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    v = peer_vars()
    ports = dict(postern=int(v["POSTERN_PORT"]), postfix=int(v["POSTFIX_PORT"]),
                 opensmtpd=int(v["OPENSMTPD_PORT"]))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    rows = []
    sh("stop_all")
    for n in [int(x) for x in args.counts.split(",")]:
        if n + 100 > hard:
            log(f"idle: {n} connections need more than the {hard} file descriptors allowed")
        for mta in [m for m in args.mtas.split(",") if m]:
            if mta == "postern":
                sh(f'postern_start "{v["BENCH_DIR"]}/runs/idle-{stamp}/postern-{n}"')
            else:
                sh(f"{mta}_start")
            cg = Cgroup(mta)
            try:
                time.sleep(1.0)
                greeting_time(ports[mta], 5.0)          # one session first: lazy start-up
                time.sleep(0.5)
                rss0, pss0, np0 = cg.memory_kib()
                t0 = time.monotonic()
                conns, c = open_held(ports[mta], n, deadline_s=20 + n / 250)
                t_open = time.monotonic() - t0
                time.sleep(1.0)
                rss1, pss1, np1 = cg.memory_kib()
                probe = greeting_time(ports[mta], 1.0)
                held = max(c["ehlo"], 1)
                row = dict(mta=mta, n=n, **c, open_s=t_open, procs0=np0, procs1=np1,
                           rss0=rss0, rss1=rss1, pss0=pss0, pss1=pss1,
                           rss_per=(rss1 - rss0) / held, pss_per=(pss1 - pss0) / held, probe=probe)
                rows.append(row)
                log(f"idle: {mta} n={n}: tcp {c['tcp']} greeted {c['greeted']} ehlo {c['ehlo']} "
                    f"closed {c['closed']} refused {c['refused']}; RSS {rss0}→{rss1} KiB ({np0}→{np1} procs), "
                    f"{row['rss_per']:.1f} KiB/conn RSS, {row['pss_per']:.1f} KiB/conn PSS; "
                    f"new client greeted: {'%.3f s' % probe if probe is not None else 'no (>1 s)'}")
                for cc in conns:
                    cc.sock.close()
            finally:
                sh(f"{mta}_stop")
            time.sleep(2.0)
    sh(f'rm -rf "{v["BENCH_DIR"]}/runs/idle-{stamp}"', check=False)
    lines = [f"## Idle connections held (EHLO sent on each) — {datetime.datetime.now():%Y-%m-%d %H:%M}, `nproc` = {os.cpu_count()}\n",
             "| MTA | N | greeted | EHLO answered | server procs | RSS sum before → held | RSS per held conn | PSS per held conn | new client greeted within 1 s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['mta']} | {r['n']:,} | {r['greeted']:,} | {r['ehlo']:,} | {r['procs0']} → {r['procs1']} | "
                     f"{r['rss0'] / 1024:.1f} → {r['rss1'] / 1024:.1f} MiB | {r['rss_per']:.1f} KiB | {r['pss_per']:.1f} KiB | "
                     f"{'yes, %.0f ms' % (r['probe'] * 1000) if r['probe'] is not None else 'no'} |")
    lines.append("\nper held conn = (memory while held − memory before) / connections whose EHLO was answered. "
                 "Connections are opened 256 at a time (TCP handshakes in flight) for at most 20 s + N/250 s; "
                 "those not greeted by then are counted as not greeted.")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
