"""Running postern (issue 9): graceful shutdown on SIGTERM — stop accepting,
let open mail transactions finish within limits.shutdown_timeout_s, "421
4.3.2" to the rest, the queue consistent afterwards; dropping root for the
configured "user" once the ports are bound, checked in /proc."""

import grp
import json
import os
import pwd
import shutil
import signal
import smtplib
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import POSTERN_BIN, Server, free_port, make_message, port_is_bound, wait_for_files, wait_until

TIMEOUT = 20


def sigterm(srv):
    srv.proc.send_signal(signal.SIGTERM)


def exited(srv, timeout=TIMEOUT):
    srv.proc.wait(timeout=timeout)
    srv.expect_dead = True
    return srv.proc.returncode


def test_sigterm_lets_a_message_in_data_finish_and_says_421_to_idle_clients(make_server):
    srv = make_server({"limits": {"shutdown_timeout_s": 30}})
    idle = srv.connect()
    idle.greeting()
    idle.ehlo()
    busy = srv.connect()
    busy.greeting()
    busy.ehlo()
    busy.ok("MAIL FROM:<s@remote.test>", 250)
    busy.ok("RCPT TO:<alice@example.test>", 250)
    busy.ok("DATA", 354)
    msg = make_message("finished during shutdown")
    half = len(msg) // 2
    busy.send(msg[:half])
    t0 = time.monotonic()
    sigterm(srv)
    # The idle client hears 421 4.3.2 at once and is closed.
    code, texts = idle.reply(timeout=10)
    assert code == 421 and texts[-1].startswith("4.3.2 "), texts
    idle.expect_eof()
    # New connections are refused: the listener is closed.
    wait_until(lambda: not port_is_bound(srv.port), 10, "the listener to close")
    # The client inside DATA may finish: 250, then 421 4.3.2 at its next turn.
    assert srv.alive()
    busy.send(msg[half:] + b".\r\n")
    code, texts = busy.reply(timeout=10)
    assert code == 250, texts
    code, texts = busy.reply(timeout=10)
    assert code == 421 and texts[-1].startswith("4.3.2 "), texts
    busy.expect_eof()
    assert exited(srv) == 0
    assert time.monotonic() - t0 < TIMEOUT
    (f,) = wait_for_files(srv.new("alice@example.test"), 1)
    assert f.read_bytes().endswith(msg)
    assert "event=stopped" in srv.log()


def test_a_transaction_still_open_after_the_grace_time_gets_421_and_is_not_accepted(make_server):
    srv = make_server({"limits": {"shutdown_timeout_s": 1}})
    c = srv.connect()
    c.greeting()
    c.ehlo()
    c.ok("MAIL FROM:<s@remote.test>", 250)
    c.ok("RCPT TO:<alice@example.test>", 250)
    c.ok("DATA", 354)
    c.send(b"Subject: never finished\r\n\r\nhalf a messa")
    sigterm(srv)
    code, texts = c.reply(timeout=10)
    assert code == 421 and texts[-1].startswith("4.3.2 "), texts
    c.expect_eof()
    assert exited(srv) == 0
    assert any(e.get("transaction") == "abandoned" for e in srv.log_events("shutdown")), srv.log_tail()
    # Consistent: nothing half-received is queued or delivered after a restart.
    assert srv.incoming_files() == [] and srv.queue_files() == []
    srv.start()
    srv.wait_queue_empty()
    assert srv.delivered("alice@example.test") == []


def test_a_second_sigterm_stops_at_once(make_server):
    srv = make_server({"limits": {"shutdown_timeout_s": 60}})
    c = srv.connect()
    c.greeting()
    c.ehlo()
    c.ok("MAIL FROM:<s@remote.test>", 250)  # an open transaction would hold the stop for 60 s
    sigterm(srv)
    wait_until(lambda: "event=shutdown signal=15 sessions=1" in srv.log(), 10, "the first shutdown line")
    sigterm(srv)
    assert exited(srv, timeout=10) == 0
    c.close()


# --------------------------------------------------------------------------
# privileges


def proc_ids(pid):
    """{thread id: (uids, gids, groups, CapEff)} from /proc/PID/task/*/status."""
    out = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        fields = {}
        with open(f"/proc/{pid}/task/{task}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                fields[k] = v.split()
        out[task] = (fields["Uid"], fields["Gid"], fields["Groups"], fields["CapEff"])
    return out


@pytest.fixture
def open_root(request):
    """A server root every user can traverse (pytest's tmp dirs are 0700 and
    owned by root, so the dropped server could not reach its own spool)."""
    d = tempfile.mkdtemp(prefix="postern-priv-", dir="/tmp")
    os.chmod(d, 0o755)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_started_as_root_it_drops_to_the_configured_user_after_binding(open_root):
    nobody = pwd.getpwnam("nobody")
    nogroup = grp.getgrgid(nobody.pw_gid).gr_name
    srv = Server(open_root / "srv", {"user": "nobody"})
    try:
        # Mail root submitted with `postern sendmail` while the server was
        # down: its pickup file keeps root as owner through the hand-over
        # (the owner is the submitter's identity) and is delivered.
        r = subprocess.run([POSTERN_BIN, "sendmail", "--config", str(srv.config_path), "alice@example.test"],
                           input=b"Subject: from cron\n\nwritten before the start\n", capture_output=True,
                           timeout=TIMEOUT)
        assert r.returncode == 0, r.stderr
        srv.start()
        wait_until(lambda: srv.log_events("privileges"), 10, "the privileges line")
        ids = proc_ids(srv.proc.pid)
        assert len(ids) >= 2  # the worker threads dropped too
        for task, (uids, gids, groups, cap) in ids.items():
            assert uids == [str(nobody.pw_uid)] * 4, (task, uids)
            assert gids == [str(nobody.pw_gid)] * 4, (task, gids)
            assert groups in ([], [str(nobody.pw_gid)]), (task, groups)
            assert int(cap[0], 16) == 0, (task, cap)
        (line,) = srv.log_events("privileges")
        assert line["user"] == "nobody" and line["group"] == nogroup
        # The spool and the Maildirs are the user's, private, and work.
        # (the spool itself is 0711: local users pass through to pickup/)
        for d, mode in ((srv.spool, 0o711), (srv.spool / "queue", 0o700), (srv.mail_root, 0o700)):
            st = os.stat(d)
            assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (nobody.pw_uid, mode), d
        sock = os.stat(srv.spool / "control.sock")
        assert (sock.st_uid, stat.S_IMODE(sock.st_mode)) == (nobody.pw_uid, 0o600)
        with smtplib.SMTP("127.0.0.1", srv.port, timeout=TIMEOUT) as c:
            c.sendmail("s@remote.test", ["alice@example.test"], make_message("after the drop"))
        files = wait_for_files(srv.new("alice@example.test"), 2)
        assert len(files) == 2 and all(os.stat(f).st_uid == nobody.pw_uid for f in files)
        assert any(b"written before the start" in f.read_bytes() for f in files)
        srv.stop()
        assert srv.proc.returncode == 0
    finally:
        srv.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="the warning is about root")
def test_without_user_it_warns_when_running_as_root(make_server):
    srv = make_server()
    (line,) = srv.log_events("privileges")
    assert line["severity"] == "warn" and line["user"] == "root", line


def test_an_unknown_user_is_a_configuration_error_before_any_bind(make_server):
    srv = make_server({"user": "no-such-user-postern"}, start=False)
    r = subprocess.run([POSTERN_BIN, "serve", "--config", str(srv.config_path)], capture_output=True,
                       timeout=TIMEOUT)
    assert r.returncode == 2, r.stderr
    assert (f'{srv.config_path}: user: expected an existing user name, got \\"no-such-user-postern\\"'
            in r.stderr.decode()), r.stderr
    assert b"event=listen" not in r.stderr
    assert not port_is_bound(srv.port)


# --------------------------------------------------------------------------
# metrics


def scrape(port, path="/metrics"):
    """GET with curl; returns (HTTP status, {sample: value})."""
    r = subprocess.run(["curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}", f"http://127.0.0.1:{port}{path}"],
                       capture_output=True, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    body, _, code = r.stdout.decode().rpartition("\n")
    samples, families = {}, set()
    if code != "200":
        return int(code), body
    for line in body.splitlines():
        if line.startswith("# TYPE "):
            families.add(line.split()[2])
        elif line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            base = name.split("{")[0]
            assert any(base == f or base.startswith(f + "_") for f in families), f"no TYPE for {line}"
            samples[name] = float(value)
    return int(code), samples


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_metrics_count_the_traffic_the_test_sent(make_server):
    mport = free_port()
    closed = free_port()  # a smarthost that is never there: remote mail waits in the queue
    srv = make_server({"metrics": {"address": f"127.0.0.1:{mport}"}, "relay_networks": ["127.0.0.0/8"],
                       "relay": {"smarthost": f"127.0.0.1:{closed}"}})
    code, before = scrape(mport)
    assert code == 200
    with smtplib.SMTP("127.0.0.1", srv.port, local_hostname="client.test", timeout=TIMEOUT) as c:
        c.starttls()
        c.ehlo("client.test")
        c.sendmail("s@remote.test", ["alice@example.test"], make_message("one"))
        c.sendmail("s@remote.test", ["bob@example.test"], make_message("two"))
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            c.sendmail("s@remote.test", ["nobody@example.test"], make_message("three"))
        c.sendmail("s@remote.test", ["far@elsewhere.test"], make_message("to the smarthost"))
    wait_for_files(srv.new("alice@example.test"), 1)
    wait_for_files(srv.new("bob@example.test"), 1)
    wait_until(lambda: any(e.get("status") == "deferred" for e in srv.log_events("delivery")), TIMEOUT,
               "the remote delivery to be deferred")
    code, after = scrape(mport)
    assert code == 200
    delta = lambda k: after.get(k, 0) - before.get(k, 0)
    assert delta("postern_messages_received_total") == 3
    assert delta('postern_refusals_total{reason="unknown_user"}') == 1
    assert delta('postern_deliveries_total{transport="local",result="sent"}') == 2
    assert delta('postern_delivery_delay_seconds_count{transport="local"}') == 2
    assert after['postern_delivery_delay_seconds_bucket{transport="local",le="+Inf"}'] == 2
    assert delta('postern_deliveries_total{transport="remote",result="deferred"}') >= 1
    assert delta('postern_tls_handshakes_total{result="ok"}') == 1
    assert delta('postern_connections_total{protocol="smtp"}') == 1
    assert after['postern_connections{protocol="smtp"}'] == 0
    assert after["postern_queue_messages"] == 1
    assert 0 <= after["postern_queue_oldest_age_seconds"] < 600
    # A relay attempt from outside relay_networks is counted as such: none here.
    assert delta('postern_refusals_total{reason="relay_denied"}') == 0
    code, body = scrape(mport, "/")
    assert code == 404 and "/metrics" in body


def test_metrics_off_by_default(make_server):
    srv = make_server()
    assert not srv.log_events("listen") or all(e.get("mode") != "metrics" for e in srv.log_events("listen"))


# --------------------------------------------------------------------------
# reload


def reload_cmd(srv):
    return subprocess.run([POSTERN_BIN, "reload", "--config", str(srv.config_path)], capture_output=True,
                          timeout=TIMEOUT)


def test_reload_keeps_sessions_refuses_a_bad_config_and_names_what_needs_a_restart(make_server):
    srv = make_server()
    good = srv.config_path.read_text()
    c = srv.connect()
    c.greeting()
    c.ehlo()
    c.ok("MAIL FROM:<s@remote.test>", 250)
    c.ok("RCPT TO:<alice@example.test>", 250)
    # A bad file, by SIGHUP: refused, logged, the old configuration kept.
    srv.config_path.write_text(good.replace('"limits": {', '"limits": {"recipients": 0,', 1))
    srv.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: any(e.get("result") == "failed" for e in srv.log_events("reload")), 10, "the refusal")
    (refused,) = [e for e in srv.log_events("reload") if e.get("result") == "failed"]
    assert "limits.recipients" in refused["error"] and str(srv.config_path) in refused["error"], refused
    # `postern reload` checks the file itself first and says what is wrong.
    r = reload_cmd(srv)
    assert r.returncode != 0 and b"limits.recipients" in r.stderr, r.stderr
    # The client mid-transaction never noticed.
    c.ok("DATA", 354)
    c.send(make_message("across reloads") + b".\r\n")
    code, _ = c.reply(timeout=10)
    assert code == 250
    # A good change: accepted; the certificate is read again, users take a restart.
    cfg = json.loads(good)
    cfg["users"].append({"address": "dave@example.test"})
    srv.config_path.write_text(json.dumps(cfg))
    r = reload_cmd(srv)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().startswith("reloaded; certificate ") and "takes a restart: users" in r.stdout.decode()
    c.ok("QUIT", 221)
    assert srv.alive()
    wait_for_files(srv.new("alice@example.test"), 1)


def test_reload_without_a_running_server_says_so(make_server):
    srv = make_server(start=False)
    r = reload_cmd(srv)
    assert r.returncode == 1 and b"the server is not running" in r.stderr, r.stderr
