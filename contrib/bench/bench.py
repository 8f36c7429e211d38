#!/usr/bin/python3
"""contrib/bench/bench.py — the measurements behind contrib/bench/run.sh.

For postern, Postfix and OpenSMTPD in turn, several rounds interleaved
(A B C A B C …), each MTA running alone during its turn: the same load from
Postfix's smtp-source, messages/s accepted (smtp-source start → exit) and
delivered (smtp-source start → the last expected file in the Maildir's new/),
CPU seconds per 1,000 messages (the MTA's accounting cgroup, every process of
the instance, exited ones included, from the load's start until the last file),
p50/p99 connect→250 for single messages on an idle server, the smtp-sink
ceiling, the fio fsync rate, and fsyncs per message (strace -c).
Prints a Markdown report and writes it to contrib/bench/results-<date>.md.
"""
import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import Cgroup, HERE, count_files, make_body, peer_vars, percentile, send_one, sh  # noqa: E402

MTAS = ["postern", "postfix", "opensmtpd"]
SENDER = "bench@client.test"
# OpenSMTPD 6.8 listens with a backlog of 5: with 20 clients connecting at once the
# kernel drops SYNs, they are retried after 1 s and it falls to ~10 msg/s. That is a
# real property of it; to keep the run bounded its one-message-per-connection
# 20-session loads send only this many messages (flagged in the report).
OPENSMTPD_S20_CAP = 300


def loads(full):
    n20, n1, n100k = (20000, 10000, 5000) if full else (5000, 2000, 1000)
    return [
        dict(key="s20", title=f"20 sessions, 2 KB, one message per connection", sessions=20, n=n20, size=2048, reuse=False),
        dict(key="s1", title=f"1 session, 2 KB, one message per connection", sessions=1, n=n1, size=2048, reuse=False),
        dict(key="s20_100k", title=f"20 sessions, 100 KB, one message per connection", sessions=20, n=n100k, size=102400, reuse=False),
        # 20 smtp-source processes, each one connection with 90 messages (-d): OpenSMTPD
        # refuses a session's 101st message (max-mails 100), so stay under it.
        dict(key="s20_reuse", title="20 sessions, 2 KB, 90 messages per connection (20 × smtp-source -d -s 1 -m 90)", sessions=20, n=1800, size=2048, reuse=True),
    ]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def smtp_source_cmd(port, sessions, n, size, reuse, rcpt):
    cmd = ["/usr/sbin/smtp-source", "-s", str(sessions), "-m", str(n), "-l", str(size),
           "-f", SENDER, "-t", rcpt]
    if reuse:
        cmd.insert(1, "-d")
    return cmd + [f"127.0.0.1:{port}"]


class Bench:
    def __init__(self, args):
        self.args = args
        self.v = peer_vars()
        self.rcpt = self.v["BENCH_RCPT"]
        self.port = {m: int(self.v[k]) for m, k in
                     (("postern", "POSTERN_PORT"), ("postfix", "POSTFIX_PORT"),
                      ("opensmtpd", "OPENSMTPD_PORT"), ("sink", "SINK_PORT"))}
        self.stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.work = os.path.join(self.v["BENCH_DIR"], "runs", self.stamp)
        os.makedirs(self.work, exist_ok=True)
        self.results = {}      # (load key, mta) -> list of dicts
        self.latency = {}      # mta -> list of (p50, p99)
        self.fsyncs = {}
        self.commands = []
        self.cg = {m: Cgroup(m) for m in MTAS}

    # ---- MTAs -------------------------------------------------------------
    def start(self, mta, rnd):
        if mta == "postern":
            sh(f'postern_start "{self.work}/postern-r{rnd}"')
        else:
            sh(f"{mta}_start")

    def stop(self, mta):
        sh(f"{mta}_stop")

    def maildir_new(self, mta):
        return os.path.join(sh(f"mta_maildir {mta}"), "new")

    def move_aside(self, mta, rnd):
        """After a peer's turn (stopped): rename its Maildir into this run's folder,
        a cheap rename instead of a deletion (freed inodes slow ext4 for ~30 s)."""
        if mta == "postern":
            return
        d = sh(f"mta_maildir {mta}")
        if os.path.isdir(d):
            os.rename(d, os.path.join(self.work, f"{mta}-r{rnd}-Maildir"))

    # ---- one load -------------------------------------------------------------
    def run_load(self, mta, load):
        n = load["n"]
        if mta == "opensmtpd" and load["sessions"] > 1 and not load["reuse"]:
            n = min(n, OPENSMTPD_S20_CAP)
        new = self.maildir_new(mta)
        before = count_files(new)
        if load["reuse"]:
            per = n // load["sessions"]
            cmds = [smtp_source_cmd(self.port[mta], 1, per, load["size"], True, self.rcpt)] * load["sessions"]
            self.commands.append(f"{load['sessions']} × in parallel: " + " ".join(cmds[0]))
        else:
            cmds = [smtp_source_cmd(self.port[mta], load["sessions"], n, load["size"], False, self.rcpt)]
            self.commands.append(" ".join(cmds[0]))
        cpu0 = self.cg[mta].cpu_s()
        t0 = time.perf_counter()
        limit = 60 + n / 5
        procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True) for c in cmds]
        t_acc = float("nan")
        ok = True
        try:
            for p in procs:
                _, err = p.communicate(timeout=max(1, t0 + limit - time.perf_counter()))
                if p.returncode != 0 or err.strip():
                    ok = False
                    log(f"  {mta} {load['key']}: smtp-source rc={p.returncode} {err.strip()[:300]}")
            t_acc = time.perf_counter() - t0
        except subprocess.TimeoutExpired:
            ok = False
            log(f"  {mta} {load['key']}: smtp-source did not finish in {limit:.0f} s")
            for p in procs:
                p.kill()
                p.wait()
        # wait for the last file; give up once nothing has arrived for 20 s
        target = before + n
        got = count_files(new)
        last_change, last = time.perf_counter(), got
        while got < target and time.perf_counter() - last_change < 20:
            time.sleep(0.05)
            got = count_files(new)
            if got != last:
                last_change, last = time.perf_counter(), got
        t_del = time.perf_counter() - t0 if got >= target else last_change - t0
        cpu = self.cg[mta].cpu_s() - cpu0
        delivered = min(got - before, n)
        res = dict(n=n, accepted=n / t_acc if t_acc == t_acc and ok else float("nan"),
                   delivered=delivered / t_del, complete=delivered >= n,
                   cpu_per_1000=cpu / max(delivered, 1) * 1000)
        if not res["complete"]:
            log(f"  {mta} {load['key']}: only {delivered} of {n} delivered before the deadline")
        log(f"  {mta:9s} {load['key']:9s} n={n:5d} accepted {res['accepted']:8.1f}/s delivered "
            f"{res['delivered']:8.1f}/s cpu {res['cpu_per_1000']:.2f} s/1000")
        self.results.setdefault((load["key"], mta), []).append(res)

    def settle(self, mta):
        """Waits until the Maildir count is stable for 1 s (a peer may deliver what an
        interrupted earlier run left in its queue), at most 60 s."""
        new = self.maildir_new(mta)
        last, since, end = count_files(new), time.perf_counter(), time.perf_counter() + 60
        while time.perf_counter() - since < 1.0 and time.perf_counter() < end:
            time.sleep(0.1)
            c = count_files(new)
            if c != last:
                last, since = c, time.perf_counter()

    def run_latency(self, mta):
        new = self.maildir_new(mta)
        before = count_files(new)
        body = make_body(2048)
        xs = []
        for _ in range(self.args.samples):
            xs.append(send_one(self.port[mta], self.rcpt, body))
            time.sleep(0.02)
        p50, p99 = percentile(xs, 50) * 1000, percentile(xs, 99) * 1000
        log(f"  {mta:9s} latency   p50 {p50:.2f} ms p99 {p99:.2f} ms")
        self.latency.setdefault(mta, []).append((p50, p99))
        deadline = time.perf_counter() + 30
        while count_files(new) < before + len(xs) and time.perf_counter() < deadline:
            time.sleep(0.05)

    # ---- limits of the machine ------------------------------------------------
    def sink(self):
        out = {}
        sh("sink_start")
        try:
            for sessions, n in ((20, 20000 if self.args.full else 10000), (1, 5000 if self.args.full else 3000)):
                rates = []
                for _ in range(3):
                    cmd = smtp_source_cmd(self.port["sink"], sessions, n, 2048, False, self.rcpt)
                    t0 = time.perf_counter()
                    subprocess.run(cmd, check=True, timeout=300, stdout=subprocess.DEVNULL)
                    rates.append(n / (time.perf_counter() - t0))
                self.commands.append(" ".join(cmd) + "   # smtp-sink -u nobody -c 127.0.0.1:%d 1024" % self.port["sink"])
                out[sessions] = rates
                log(f"  smtp-sink {sessions:2d} sessions: {statistics.median(rates):.0f} msg/s")
        finally:
            sh("sink_stop")
        return out

    def fio(self):
        d = os.path.join(self.work, "fio")
        os.makedirs(d, exist_ok=True)
        out = {}
        for jobs in (1, 4):
            cmd = ["fio", "--name=fsync", f"--directory={d}", "--rw=write", "--bs=4k", "--size=64m",
                   "--fsync=1", f"--numjobs={jobs}", f"--runtime={10 if self.args.full else 5}",
                   "--time_based", "--group_reporting", "--output-format=json"]
            self.commands.append(" ".join(cmd))
            r = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True, timeout=120)
            j = json.loads(r.stdout[r.stdout.index("{"):])
            out[jobs] = j["jobs"][0]["write"]["iops"]
            log(f"  fio 4 KiB write+fsync, {jobs} job(s): {out[jobs]:.0f}/s")
        shutil.rmtree(d, ignore_errors=True)
        return out

    def count_fsyncs(self, mta, rnd):
        """strace -f -c on every process (and thread) of the instance over N messages."""
        n = 200
        self.start(mta, rnd)
        try:
            pids = self.cg[mta].pids()
            tids = []
            for p in pids:
                try:
                    tids += [int(t) for t in os.listdir(f"/proc/{p}/task")]
                except FileNotFoundError:
                    pass
            outf = os.path.join(self.work, f"strace-{mta}.txt")
            cmd = ["strace", "-f", "-c", "-o", outf, "-e", "trace=fsync,fdatasync,syncfs,sync_file_range,msync"]
            for t in tids:
                cmd += ["-p", str(t)]
            st = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
            self.settle(mta)
            new = self.maildir_new(mta)
            before = count_files(new)
            subprocess.run(smtp_source_cmd(self.port[mta], 1, n, 2048, False, self.rcpt), timeout=300,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.perf_counter() + 60
            while count_files(new) < before + n and time.perf_counter() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)
            st.send_signal(signal.SIGINT)
            st.wait(timeout=30)
            calls = {}
            with open(outf) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 5 and parts[-1] in ("fsync", "fdatasync", "syncfs", "sync_file_range", "msync"):
                        # columns: %time seconds usecs/call calls [errors] syscall
                        calls[parts[-1]] = int(parts[3])
            self.fsyncs[mta] = {k: v / n for k, v in calls.items()}
            log(f"  {mta:9s} syncs per message: {self.fsyncs[mta]}")
        finally:
            self.stop(mta)
            self.move_aside(mta, rnd)

    # ---- the whole run ----------------------------------------------------------
    def run(self):
        sh("stop_all")
        for mta in self.args.mtas:
            self.move_aside(mta, 0)     # start from empty Maildirs
        log(f"bench: work dir {self.work}")
        log("bench: physical limits")
        self.fio_rates = self.fio()
        self.sink_rates = self.sink()
        for rnd in range(1, self.args.rounds + 1):
            log(f"bench: round {rnd}/{self.args.rounds}")
            for mta in self.args.mtas:
                self.start(mta, rnd)
                try:
                    self.settle(mta)
                    for load in loads(self.args.full):
                        self.run_load(mta, load)
                    self.run_latency(mta)
                finally:
                    self.stop(mta)
                    self.move_aside(mta, rnd)
        if not self.args.no_strace:
            log("bench: syncs per message (strace)")
            for mta in self.args.mtas:
                self.count_fsyncs(mta, "strace")

    # ---- report -------------------------------------------------------------------
    def report(self, t_total):
        v = self.v
        lines = []
        w = lines.append
        now = datetime.datetime.now()
        w(f"# postern benchmark — {now:%Y-%m-%d %H:%M}\n")
        w(f"- mode: {'full' if self.args.full else 'quick'}, {self.args.rounds} rounds interleaved "
          f"({' '.join(self.args.mtas)} …), {t_total / 60:.1f} min")
        w(f"- machine: `nproc` = {os.cpu_count()}, {cpu_model()}, kernel {os.uname().release}")
        w(f"- bench dir `{v['BENCH_DIR']}`: `df -h`: {df_h(v['BENCH_DIR'])}; device: {disk_of(v['BENCH_DIR'])}")
        w(f"- versions: {versions(v)}")
        w("- load avg at the end: " + open("/proc/loadavg").read().split(" ")[0:3].__str__())
        w("")
        w("## Physical limits\n")
        w("| what | median | min–max |\n|---|---:|---:|")
        for jobs, r in self.fio_rates.items():
            w(f"| fio 4 KiB write+fsync, {jobs} job{'s' if jobs > 1 else ''} | {r:,.0f}/s | (one run) |")
        for s, rates in self.sink_rates.items():
            w(f"| smtp-source → smtp-sink (no disk), {s} session{'s' if s > 1 else ''}, 2 KB | "
              f"{statistics.median(rates):,.0f} msg/s | {min(rates):,.0f}–{max(rates):,.0f} |")
        w("")
        for load in loads(self.args.full):
            w(f"## {load['title']}\n")
            ns = {m: self.results.get((load['key'], m), [{}])[0].get('n') for m in self.args.mtas}
            w("messages per run: " + ", ".join(f"{m} {n:,}" for m, n in ns.items() if n) + "\n")
            for fig, label, fmt in (("accepted", "accepted, msg/s", "{:,.0f}"),
                                    ("delivered", "delivered into the Maildir, msg/s", "{:,.0f}"),
                                    ("cpu_per_1000", "server CPU s per 1,000 messages", "{:.2f}")):
                w(f"**{label}**\n")
                w("| MTA | median | min–max | ratio to Postfix |\n|---|---:|---:|---:|")
                base = self._median(load['key'], "postfix", fig)
                for m in self.args.mtas:
                    xs = [r[fig] for r in self.results.get((load['key'], m), []) if r[fig] == r[fig]]
                    if not xs:
                        w(f"| {m} | failed | – | – |")
                        continue
                    med = statistics.median(xs)
                    flag = "" if all(r["complete"] for r in self.results[(load['key'], m)]) else " (incomplete)"
                    ratio = f"{med / base:.2f}×" if base else "–"
                    w(f"| {m} | {fmt.format(med)}{flag} | {fmt.format(min(xs))}–{fmt.format(max(xs))} | {ratio} |")
                w("")
        w(f"## Latency: connect → `250` after DATA, one 2 KB message at a time on an idle server "
          f"({self.args.samples} samples per round)\n")
        w("| MTA | p50 ms (median of rounds) | p50 min–max | p99 ms (median of rounds) | p99 min–max | p50 ratio to Postfix | p99 ratio to Postfix |")
        w("|---|---:|---:|---:|---:|---:|---:|")
        bl = self.latency.get("postfix")
        for m in self.args.mtas:
            if m not in self.latency:
                continue
            p50s = [x[0] for x in self.latency[m]]
            p99s = [x[1] for x in self.latency[m]]
            r50 = f"{statistics.median(p50s) / statistics.median([x[0] for x in bl]):.2f}×" if bl else "–"
            r99 = f"{statistics.median(p99s) / statistics.median([x[1] for x in bl]):.2f}×" if bl else "–"
            w(f"| {m} | {statistics.median(p50s):.2f} | {min(p50s):.2f}–{max(p50s):.2f} | "
              f"{statistics.median(p99s):.2f} | {min(p99s):.2f}–{max(p99s):.2f} | {r50} | {r99} |")
        w("")
        if self.fsyncs:
            w("## Sync calls per message (strace -f -c over 200 messages, 1 session)\n")
            w("| MTA | fsync | fdatasync | syncfs | sync_file_range | msync |\n|---|---:|---:|---:|---:|---:|")
            for m, c in self.fsyncs.items():
                w(f"| {m} | " + " | ".join(f"{c.get(k, 0):.2f}" for k in
                                           ("fsync", "fdatasync", "syncfs", "sync_file_range", "msync")) + " |")
            w("")
        w("## Method\n")
        w("- Each MTA is started only for its turn and is the only one running; order per round: "
          + " → ".join(self.args.mtas) + ". Its Maildir for the recipient is counted with `os.scandir` every 50 ms.")
        w("- accepted = messages / (smtp-source start → exit); delivered = messages / (smtp-source start → "
          "the last expected file in `new/`).")
        w("- CPU = growth of the MTA's accounting cgroup (`cpuacct.usage` on cgroup v1, `cpu.stat usage_usec` "
          "on v2) from the load's start until the last file: every process of the instance, including "
          "those that exited meanwhile (Postfix's smtpd/cleanup/local, OpenSMTPD's mail.maildir).")
        w(f"- OpenSMTPD, 20 sessions with one message per connection: capped at {OPENSMTPD_S20_CAP} messages "
          "(its listen backlog of 5 overflows, SYNs are retried after 1 s); the connection-reuse load shows its throughput.")
        w("- Peers: Debian's Postfix 3.7 and OpenSMTPD 6.8 with their shipped durability and limits "
          "(contrib/bench/setup-peers.sh); postern with `log_level` warn and raised connection limits.")
        w("")
        w("## Commands\n")
        w("```")
        w(" ".join(["contrib/bench/run.sh"] + sys.argv[1:]))
        seen = []
        for c in self.commands:
            if c not in seen:
                seen.append(c)
        w("\n".join(seen))
        w("```")
        return "\n".join(lines) + "\n"

    def _median(self, key, mta, fig):
        xs = [r[fig] for r in self.results.get((key, mta), []) if r[fig] == r[fig]]
        return statistics.median(xs) if xs else None


def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def df_h(path):
    r = subprocess.run(["df", "-h", path], stdout=subprocess.PIPE, text=True)
    l = r.stdout.strip().splitlines()
    return "`" + " ".join(l[-1].split()) + "`" if l else "?"


def disk_of(path):
    r = subprocess.run(["findmnt", "-n", "-o", "SOURCE,FSTYPE,OPTIONS", "-T", path], stdout=subprocess.PIPE, text=True)
    return "`" + r.stdout.strip() + "`"


def versions(v):
    out = []
    r = subprocess.run([v["POSTERN_BIN"], "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out.append(r.stdout.strip().splitlines()[0] if r.stdout.strip() else "postern ?")
    r = subprocess.run(["postconf", "-dh", "mail_version"], stdout=subprocess.PIPE, text=True)
    out.append("Postfix " + r.stdout.strip())
    r = subprocess.run(["bash", "-c", "apt-cache policy opensmtpd 2>/dev/null | awk '/Candidate/ {print $2}'"],
                       stdout=subprocess.PIPE, text=True)
    out.append("OpenSMTPD " + (r.stdout.strip() or "?"))
    return ", ".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="20,000-message loads (default: quick)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--samples", type=int, default=200, help="latency samples per round")
    ap.add_argument("--mtas", default=",".join(MTAS), help="comma-separated subset, in turn order")
    ap.add_argument("--no-strace", action="store_true", help="skip the sync count")
    ap.add_argument("--out", help="report file (default contrib/bench/results-<date>.md)")
    args = ap.parse_args()
    args.mtas = [m for m in args.mtas.split(",") if m]
    if "postfix" in MTAS and "postfix" not in args.mtas:
        log("bench: without postfix there are no ratios")
    b = Bench(args)
    t0 = time.time()
    try:
        b.run()
    finally:
        sh("stop_all", check=False)
    text = b.report(time.time() - t0)
    out = args.out or os.path.join(HERE, f"results-{b.stamp[:8][:4]}-{b.stamp[4:6]}-{b.stamp[6:8]}-{b.stamp[9:13]}.md")
    with open(out, "w") as f:
        f.write(text)
    print(text)
    log(f"bench: report written to {out}")
    # delete the run's Maildirs and spools only now, at the very end
    shutil.rmtree(b.work, ignore_errors=True)


if __name__ == "__main__":
    main()
