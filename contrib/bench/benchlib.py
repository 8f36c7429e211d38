"""Helpers shared by contrib/bench/bench.py and idle.py (run with /usr/bin/python3).

The shell side (start/stop, cgroups, ports) lives in peers.sh; here we call
its functions through bash so there is one definition of each.
"""
import os
import socket
import subprocess
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = os.path.join(HERE, "peers.sh")


def sh(script, check=True, capture=True, env=None):
    """Runs SCRIPT in bash with peers.sh sourced; returns stdout."""
    r = subprocess.run(["bash", "-c", f'set -e; . "{PEERS}"; {script}'],
                       stdout=subprocess.PIPE if capture else None,
                       text=True, check=check, env=env)
    return (r.stdout or "").strip()


def peer_vars():
    names = ["BENCH_DIR", "BENCH_RCPT", "BENCH_DOMAIN", "POSTERN_BIN", "POSTERN_PORT",
             "POSTFIX_PORT", "OPENSMTPD_PORT", "SINK_PORT", "POSTFIX_CONF"]
    out = sh("; ".join(f'echo "{n}=${n}"' for n in names))
    return dict(line.split("=", 1) for line in out.splitlines())


def cg_path(name):
    return sh(f"bench_cg_path {name}")


class Cgroup:
    """The accounting cgroup an MTA runs in (see peers.sh)."""

    def __init__(self, name):
        self.name = name
        self.path = cg_path(name)

    def pids(self):
        try:
            with open(os.path.join(self.path, "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except FileNotFoundError:
            return []

    def cpu_s(self):
        p = os.path.join(self.path, "cpuacct.usage")
        if os.path.exists(p):
            with open(p) as f:
                return int(f.read()) / 1e9
        with open(os.path.join(self.path, "cpu.stat")) as f:
            for line in f:
                k, v = line.split()
                if k == "usage_usec":
                    return int(v) / 1e6
        raise RuntimeError("no CPU accounting in " + self.path)

    def memory_kib(self):
        """(RSS sum, PSS sum, process count) over the cgroup's processes."""
        rss = pss = n = 0
        for pid in self.pids():
            try:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    for line in f:
                        if line.startswith("Rss:"):
                            rss += int(line.split()[1])
                        elif line.startswith("Pss:"):
                            pss += int(line.split()[1])
                n += 1
            except (FileNotFoundError, ProcessLookupError, PermissionError):
                pass
        return rss, pss, n


def count_files(d):
    try:
        with os.scandir(d) as it:
            return sum(1 for _ in it)
    except FileNotFoundError:
        return 0


def recv_reply(sock, buf=b""):
    """Reads one (possibly multi-line) SMTP reply; returns (code, rest of buffer)."""
    while True:
        while b"\r\n" in buf:
            line, buf = buf.split(b"\r\n", 1)
            if len(line) < 4 or line[3:4] != b"-":
                return int(line[:3]), buf
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk


def send_one(port, rcpt, body, timeout=10.0):
    """One message on a fresh connection; returns seconds from connect() to the 250 after DATA."""
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        code, buf = recv_reply(s)
        assert code == 220, code
        for cmd, want in ((b"EHLO client.test\r\n", 250), (b"MAIL FROM:<bench@client.test>\r\n", 250),
                          (f"RCPT TO:<{rcpt}>\r\n".encode(), 250), (b"DATA\r\n", 354)):
            s.sendall(cmd)
            code, buf = recv_reply(s, buf)
            if code != want:
                raise RuntimeError(f"{cmd!r} -> {code}")
        s.sendall(body + b".\r\n")
        code, buf = recv_reply(s, buf)
        t = time.perf_counter() - t0
        if code != 250:
            raise RuntimeError(f"end of data -> {code}")
        s.sendall(b"QUIT\r\n")
        try:
            recv_reply(s, buf)
        except (ConnectionError, OSError):
            pass
        return t
    finally:
        s.close()


def make_body(size):
    head = (b"From: <bench@client.test>\r\nTo: <bench@bench.test>\r\n"
            b"Subject: postern benchmark\r\n\r\n")
    line = b"x" * 76 + b"\r\n"
    n = max(1, (size - len(head)) // len(line))
    return head + line * n


def percentile(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)
