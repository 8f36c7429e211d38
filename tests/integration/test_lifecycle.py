"""Running postern (issue 9): graceful shutdown on SIGTERM — stop accepting,
let open mail transactions finish within limits.shutdown_timeout_s, "421
4.3.2" to the rest, the queue consistent afterwards; dropping root for the
configured "user" once the ports are bound, checked in /proc; live reload
(users, limits, domains, listeners, routes) with sessions keeping the
configuration they started with; syslog output; one message's whole story
under its queue id."""

import grp
import json
import os
import pwd
import re
import shutil
import signal
import smtplib
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (POSTERN_BIN, RawSMTP, Server, free_port, make_message, port_is_bound,
                      wait_for_files, wait_until)

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
    out = r.stdout.decode()
    assert out.startswith("reloaded; certificate ") and "in force now: users" in out and "restart" not in out, out
    c.ok("QUIT", 221)
    assert srv.alive()
    wait_for_files(srv.new("alice@example.test"), 1)


def reload_with(srv, change):
    """Rewrites the config file with change(cfg) applied, then `postern
    reload`; returns its stdout (asserting success)."""
    cfg = json.loads(srv.config_path.read_text())
    change(cfg)
    srv.config_path.write_text(json.dumps(cfg))
    r = reload_cmd(srv)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode()


def hash_password(pw):
    r = subprocess.run([POSTERN_BIN, "hash-password"], input=(pw + "\n").encode(), capture_output=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().strip()


def test_reload_adds_a_user_who_can_log_in_at_once_while_an_open_session_keeps_the_old_users(make_server):
    pw = hash_password("s3cret-pw")
    srv = make_server({"auth": {"plaintext_loopback": True, "failure_delay_ms": 0},
                       "users": [{"address": "alice@example.test", "password": pw},
                                 {"address": "bob@example.test"}, {"address": "carl@users.test"}]})
    old = srv.smtplib()
    old.ehlo()
    out = reload_with(srv, lambda cfg: cfg["users"].append({"address": "dave@example.test", "password": pw}))
    assert "in force now: users" in out, out
    # A new session knows dave at once.
    with srv.smtplib() as new:
        new.login("dave@example.test", "s3cret-pw")
        new.sendmail("dave@example.test", ["alice@example.test"], make_message("from dave"))
    wait_for_files(srv.new("alice@example.test"), 1)
    # The session opened before the reload keeps the users it started with.
    with pytest.raises(smtplib.SMTPAuthenticationError):
        old.login("dave@example.test", "s3cret-pw")
    old.login("alice@example.test", "s3cret-pw")
    old.sendmail("alice@example.test", ["bob@example.test"], make_message("from alice"))
    old.quit()
    wait_for_files(srv.new("bob@example.test"), 1)
    (line,) = [e for e in srv.log_events("reload") if e.get("result") == "ok"]
    assert line["generation"] == "2" and line["applied"] == "users", line


def test_reload_of_a_limit_applies_to_new_sessions_while_an_open_transaction_finishes_under_the_old(make_server):
    srv = make_server()
    old = srv.connect()
    old.greeting()
    assert "SIZE 36700160" in old.ehlo()
    old.ok("MAIL FROM:<s@remote.test>", 250)
    old.ok("RCPT TO:<alice@example.test>", 250)
    out = reload_with(srv, lambda cfg: cfg["limits"].update(message_size=2000))
    assert "in force now: limits" in out, out
    big = make_message("big", body_lines=["x" * 70] * 60)
    assert len(big) > 4000
    # A new session has the new limit.
    new = srv.connect()
    new.greeting()
    assert "SIZE 2000" in new.ehlo()
    new.ok("MAIL FROM:<s@remote.test> SIZE=5000", 552)
    new.ok("MAIL FROM:<s@remote.test>", 250)
    new.ok("RCPT TO:<alice@example.test>", 250)
    new.ok("DATA", 354)
    new.send(big + b".\r\n")
    new.expect(552)
    new.ok("QUIT", 221)
    # The transaction begun before the reload finishes with the old one.
    old.ok("DATA", 354)
    old.send(big + b".\r\n")
    old.expect(250)
    old.ok("QUIT", 221)
    (f,) = wait_for_files(srv.new("alice@example.test"), 1)
    assert f.read_bytes().endswith(big)


def test_reload_adds_a_local_domain_whose_mail_is_then_delivered_locally(make_server):
    srv = make_server()
    with srv.connect() as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<s@remote.test>", 250)
        code, _ = c.cmd("RCPT TO:<joe@new.test>")
        assert code >= 500  # not ours, and no relaying for this client
    out = reload_with(srv, lambda cfg: cfg["local_domains"].append("new.test"))
    assert "in force now: local_domains" in out, out
    with srv.connect() as c:
        c.greeting()
        c.ehlo()
        qid = c.transaction("s@remote.test", ["joe@new.test"], make_message("to a new domain"))
    (f,) = wait_for_files(srv.new("joe@new.test"), 1)
    assert b"to a new domain" in f.read_bytes()
    assert any(e.get("id") == qid and e.get("status") == "sent" for e in srv.log_events("delivery"))


def test_reload_binds_added_listeners_closes_removed_ones_and_refuses_one_it_cannot_bind(make_server):
    srv = make_server()
    first = {"address": f"127.0.0.1:{srv.port}", "mode": "smtp"}
    second_port = free_port()
    second = {"address": f"127.0.0.1:{second_port}", "mode": "smtp", "tls": "none"}
    reload_with(srv, lambda cfg: cfg.update(listeners=[first, second]))
    with RawSMTP(second_port) as c:
        c.greeting()
        assert "STARTTLS" not in c.ehlo()
        c.ok("MAIL FROM:<s@remote.test>", 250)
    # Changed settings of a listener apply to its next client (same socket).
    second["mode"] = "submission"
    reload_with(srv, lambda cfg: cfg.update(listeners=[first, second]))
    with RawSMTP(second_port) as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<s@remote.test>", 530, "5.7.0")  # submission: AUTH first
    # A session on the listener about to go keeps going after it is closed.
    on_first = srv.connect()
    on_first.greeting()
    on_first.ehlo()
    reload_with(srv, lambda cfg: cfg.update(listeners=[second]))
    wait_until(lambda: not port_is_bound(srv.port), 10, "the removed listener to close")
    with pytest.raises(OSError):
        RawSMTP(srv.port).greeting()
    on_first.transaction("s@remote.test", ["alice@example.test"], make_message("on a closed listener"))
    on_first.ok("QUIT", 221)
    wait_for_files(srv.new("alice@example.test"), 1)
    # An address that cannot be bound refuses the reload as a whole: the
    # other new listener is not bound either, the running ones stay.
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    fresh = free_port()
    try:
        cfg = json.loads(srv.config_path.read_text())
        cfg["listeners"] = [second, {"address": f"127.0.0.1:{fresh}", "mode": "smtp"},
                            {"address": f"127.0.0.1:{taken.getsockname()[1]}", "mode": "smtp"}]
        srv.config_path.write_text(json.dumps(cfg))
        r = reload_cmd(srv)
        assert r.returncode == 1 and f"127.0.0.1:{taken.getsockname()[1]}".encode() in r.stderr, r.stderr
    finally:
        taken.close()
    assert not port_is_bound(fresh)
    with RawSMTP(second_port) as c:
        c.greeting()
    assert srv.alive()


def test_reload_adds_a_pop3_listener_and_a_user_who_can_log_in_there(make_server):
    import poplib
    pw = hash_password("pop-pw")
    srv = make_server({"auth": {"plaintext_loopback": True, "failure_delay_ms": 0}})
    with srv.connect() as c:  # erin is nobody yet
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<s@remote.test>", 250)
        c.ok("RCPT TO:<erin@example.test>", 550)
    pop_port = free_port()

    def change(cfg):
        cfg["listeners"].append({"address": f"127.0.0.1:{pop_port}", "mode": "pop3", "tls": "none"})
        cfg["users"].append({"address": "erin@example.test", "password": pw})
    out = reload_with(srv, change)
    assert "in force now: listeners,users" in out, out
    with srv.connect() as c:  # erin exists now for SMTP too
        c.greeting()
        c.ehlo()
        c.transaction("s@remote.test", ["erin@example.test"], make_message("for erin"))
    wait_for_files(srv.new("erin@example.test"), 1)
    p = poplib.POP3("127.0.0.1", pop_port, timeout=TIMEOUT)
    p.user("erin@example.test")
    p.pass_("pop-pw")
    assert p.stat()[0] == 1
    p.quit()


def test_reload_names_what_takes_a_restart_and_keeps_it(make_server):
    srv = make_server()
    cfg = json.loads(srv.config_path.read_text())
    cfg.update(spool_dir=str(srv.root / "elsewhere"), hostname="new-name.example.test")
    srv.config_path.write_text(json.dumps(cfg))
    # By SIGHUP: `postern reload` would look for the server in the new spool.
    srv.proc.send_signal(signal.SIGHUP)
    (line,) = wait_until(lambda: srv.log_events("reload"), 10, "the reload")
    assert line["result"] == "ok" and line["restart_needed"] == "spool_dir" and line["applied"] == "hostname", line
    with srv.connect() as c:
        assert "new-name.example.test" in c.greeting()[0]
        c.ehlo()
        c.transaction("s@remote.test", ["alice@example.test"], make_message("same spool"))
    wait_for_files(srv.new("alice@example.test"), 1)
    assert not (srv.root / "elsewhere").exists()


def test_reload_without_a_running_server_says_so(make_server):
    srv = make_server(start=False)
    r = reload_cmd(srv)
    assert r.returncode == 1 and b"the server is not running" in r.stderr, r.stderr


# --------------------------------------------------------------------------
# logs: syslog, and one message's story under its queue id

KV_RE = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


def test_log_target_syslog_sends_each_line_as_one_datagram_to_the_socket(make_server, monkeypatch):
    import conftest
    d = tempfile.mkdtemp(prefix="postern-syslog-", dir="/tmp")  # short: sun_path holds 108 octets
    try:
        path = os.path.join(d, "log")
        sink = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sink.bind(path)
        wrapper = os.path.join(d, "postern")
        with open(wrapper, "w") as f:
            f.write(f'#!/bin/sh\nexec {POSTERN_BIN} "$@" --log-target syslog:{path}\n')
        os.chmod(wrapper, 0o755)
        monkeypatch.setattr(conftest, "POSTERN_BIN", wrapper)
        srv = make_server()
        with srv.connect() as c:
            c.greeting()
            c.ehlo()
            qid = c.transaction("s@remote.test", ["alice@example.test"], make_message("to syslog"))
        seen = []

        def message_line():
            sink.settimeout(0.2)
            try:
                seen.append(sink.recv(65536).decode())
            except socket.timeout:
                pass
            return [m for m in seen if f" event=message " in m and f"id={qid}" in m]

        (line,) = wait_until(message_line, 10, "the message line on the syslog socket")
        # syslog(3)'s local format: <PRI>Mmm dd hh:mm:ss TAG[PID]: text; mail.info is 2*8+6.
        assert re.fullmatch(r"<22>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d postern\[%d\]: severity=info event=message .*"
                            % srv.proc.pid, line), line
        assert all(m.startswith("<") and not m.endswith("\n") for m in seen), seen
        assert "event=message" not in srv.log()  # stderr had none of it
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_one_message_s_whole_story_is_under_its_queue_id(make_server):
    """Deferred (the smarthost is not there), the route changed by a reload,
    flushed, relayed, removed: `grep ID` shows each step."""
    smarthost = make_server({"local_domains": ["example.test", "catchall.test", "users.test", "elsewhere.test"]},
                            name="smarthost")
    srv = make_server({"relay_networks": ["127.0.0.0/8"], "relay": {"smarthost": f"127.0.0.1:{free_port()}"},
                       "queue": {"retry_initial_s": 3600, "retry_max_s": 3600}})
    with srv.connect() as c:
        c.greeting()
        c.ehlo()
        qid = c.transaction("s@remote.test", ["far@elsewhere.test"], make_message("the whole story"))
    wait_until(lambda: any(e.get("id") == qid and e.get("status") == "deferred" for e in srv.log_events("delivery")),
               20, "the deferral")
    out = reload_with(srv, lambda cfg: cfg["relay"].update(smarthost=f"127.0.0.1:{smarthost.port}"))
    assert "in force now: relay" in out, out
    r = subprocess.run([POSTERN_BIN, "queue", "flush", qid, "--config", str(srv.config_path)], capture_output=True,
                       timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    (f,) = wait_for_files(smarthost.new("far@elsewhere.test"), 1)
    assert b"the whole story" in f.read_bytes()
    wait_until(lambda: any(e.get("id") == qid for e in srv.log_events("removed")), 20, "the removal")
    story = [line for line in srv.log().splitlines() if qid in line]
    fields = [dict(KV_RE.findall(line)) for line in story]
    assert all(kv.get("id") == qid for kv in fields), story  # id=ID on every line, not only somewhere
    steps = [(kv["event"], kv.get("status")) for kv in fields]
    assert steps[0] == ("message", None), story
    assert steps[-1] == ("removed", None), story
    deferred = steps.index(("delivery", "deferred"))
    flushed = steps.index(("control", None))
    relayed = steps.index(("remote_transaction", None))
    sent = steps.index(("delivery", "sent"))
    assert deferred < flushed < relayed < sent, story
    (received,) = [kv for kv in fields if kv["event"] == "message"]
    assert received["from"] == "<s@remote.test>" and received["nrcpt"] == "1"
    assert fields[sent]["relay"] == "127.0.0.1" and fields[sent]["to"] == "far@elsewhere.test", story
