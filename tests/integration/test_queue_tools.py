"""`postern queue list|show|flush|delete|hold|release` against a running
server, through the control socket <spool_dir>/control.sock (issue 4).

The server relays for 127.0.0.0/8 but its DNS server is a loopback port
nobody listens on, so MX lookups fail temporarily: a message to a remote
domain stays queued (pending, 4.4.3 after the first attempt) and the retry
is an hour away — the queue holds still while the tools look at it.
"""

import json
import os
import stat
import subprocess

from conftest import (POSTERN_BIN, RawSMTP, dot_stuff, free_port, make_message,
                      wait_until)

SENDER = "alice@example.test"
REMOTE_RCPT = "bob@remote.test"


def queue_overrides():
    return {
        "relay_networks": ["127.0.0.0/8"],
        "dns": {"servers": [f"127.0.0.1:{free_port()}"]},
        "remote": {"port": free_port()},
        "queue": {"retry_initial_s": 3600, "retry_max_s": 7200, "delay_warning_s": 0},
    }


def postern_queue(server, *args, timeout=70):
    return subprocess.run(
        [POSTERN_BIN, "queue", *args, "--config", str(server.config_path)],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)


def queue_json(server, *args):
    p = postern_queue(server, *args, "--json")
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr)
    lines = p.stdout.splitlines()
    assert len(lines) == 1, p.stdout  # one line, for scripts
    reply = json.loads(lines[0])
    assert reply["ok"] is True, reply
    return reply


def entries(server):
    return {e["id"]: e for e in queue_json(server, "list")["entries"]}


def send_remote(server, subject="queue tools"):
    msg = make_message(subject)
    with RawSMTP(server.port) as c:
        c.greeting()
        c.ehlo()
        qid = c.transaction(SENDER, [REMOTE_RCPT], dot_stuff(msg))
        c.ok("QUIT", 221)
    return qid, msg


def wait_deferred(server, qid, timeout=40):
    """Wait until the first delivery attempt of qid has failed temporarily."""
    def attempted():
        e = entries(server).get(qid)
        if e and e["recipients"][0]["attempts"] >= 1:
            return e
        return None
    return wait_until(attempted, timeout, f"a first (deferred) attempt for {qid}", interval=0.2)


def on_disk(server, qid):
    return [p for p in server.queue_files() if p.name.startswith(qid)]


def test_queue_tools_on_a_deferred_message(make_server):
    server = make_server(queue_overrides())
    sock = server.spool / "control.sock"
    assert sock.exists()
    assert stat.S_ISSOCK(sock.stat().st_mode)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    # 0711: passable by local users on their way to pickup/ (postern
    # sendmail), not listable; the socket itself is owner-only.
    assert stat.S_IMODE(server.spool.stat().st_mode) == 0o711
    assert stat.S_IMODE((server.spool / "queue").stat().st_mode) == 0o700

    qid, msg = send_remote(server)
    e = wait_deferred(server, qid)

    # list --json: the envelope and the recipient's retry state
    assert e["sender"] == SENDER
    assert e["held"] is False
    assert e["size"] > len(msg)  # the Received: header is part of it
    assert e["age_s"] >= 0
    (r,) = e["recipients"]
    assert r["address"] == REMOTE_RCPT
    assert r["state"] == "pending"
    assert r["attempts"] >= 1
    assert r["last_error"], r
    assert "4.4.3" in r["last_error"], r
    assert r["next_attempt"] > e["received_at"] + 1800  # retry_initial_s 3600

    # list, human
    p = postern_queue(server, "list")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "ID" in out and "AGE" in out and "SIZE" in out and "SENDER" in out, out
    row = next(line for line in out.splitlines() if line.startswith(qid))
    assert SENDER in row and str(e["size"]) in row, row
    rline = next(line for line in out.splitlines() if REMOTE_RCPT in line)
    assert rline.startswith(" "), rline  # indented under its message
    assert "pending" in rline and "attempts=" in rline and "next=in " in rline, rline
    assert r["last_error"] in rline, rline

    # show: envelope and message text
    p = postern_queue(server, "show", qid)
    assert p.returncode == 0, p.stderr
    assert qid in p.stdout and SENDER in p.stdout and REMOTE_RCPT in p.stdout
    assert "Subject: queue tools" in p.stdout
    assert "Received: from " in p.stdout
    shown = queue_json(server, "show", qid)["entry"]
    assert shown["id"] == qid
    assert shown["client_ip"] == "127.0.0.1"
    assert shown["helo"] == "client.test"
    assert shown["message"].endswith(msg.decode())
    assert shown["message_truncated"] is False

    # hold / release
    p = postern_queue(server, "hold", qid)
    assert (p.returncode, p.stdout.strip()) == (0, f"held {qid}"), p.stderr
    assert entries(server)[qid]["held"] is True
    p = postern_queue(server, "list")
    assert "(held)" in next(line for line in p.stdout.splitlines() if line.startswith(qid))
    # flush skips a held message
    assert queue_json(server, "flush")["ids"] == []
    p = postern_queue(server, "release", qid)
    assert (p.returncode, p.stdout.strip()) == (0, f"released {qid}"), p.stderr
    assert entries(server)[qid]["held"] is False

    # flush (all): retried now, deferred again after the attempt
    before = entries(server)[qid]["recipients"][0]["attempts"]
    p = postern_queue(server, "flush")
    assert (p.returncode, p.stdout.strip()) == (0, "flushed 1"), (p.stdout, p.stderr)
    wait_until(lambda: entries(server)[qid]["recipients"][0]["attempts"] > before, 40,
               "the flushed message to be tried again", interval=0.2)
    assert entries(server)[qid]["recipients"][0]["state"] == "pending"
    # flush ID
    assert queue_json(server, "flush", qid)["ids"] == [qid]

    # delete: gone from the list and from the spool
    assert on_disk(server, qid)
    p = postern_queue(server, "delete", qid)
    assert (p.returncode, p.stdout.strip()) == (0, f"deleted {qid}"), p.stderr
    assert qid not in entries(server)
    assert on_disk(server, qid) == []
    p = postern_queue(server, "list")
    assert p.returncode == 0 and "queue is empty" in p.stdout, p.stdout

    # a well-formed id that is not queued: the server's error, exit 1
    for args in (("show", qid), ("delete", qid), ("hold", qid)):
        p = postern_queue(server, *args)
        assert p.returncode == 1, (args, p.returncode, p.stdout, p.stderr)
        assert "no such queue entry" in p.stderr, p.stderr
        p = postern_queue(server, *args, "--json")
        assert p.returncode == 1
        reply = json.loads(p.stdout)
        assert reply["ok"] is False and "no such queue entry" in reply["error"]

    controls = server.log_events("control")
    assert any(c.get("cmd") == "hold" and c.get("id") == qid for c in controls), controls
    assert server.alive()


def test_queue_tools_report_a_stopped_server(make_server):
    server = make_server(queue_overrides())
    qid, _ = send_remote(server)
    wait_deferred(server, qid)
    server.stop()
    assert server.proc.returncode == 0, server.log_tail()
    server.expect_dead = True  # stopped on purpose, not a crash
    sock = server.spool / "control.sock"
    assert not sock.exists()  # removed at stop
    for args in (("list",), ("list", "--json"), ("show", qid), ("flush",)):
        p = postern_queue(server, *args, timeout=20)
        assert p.returncode == 1, (args, p.returncode, p.stdout, p.stderr)
        assert "not running" in p.stderr, p.stderr
        assert str(sock) in p.stderr, p.stderr
        assert p.stdout == ""
    p = postern_queue(server, "list", timeout=20)
    assert "1 message" in p.stderr, p.stderr  # what waits on disk


def test_a_stale_socket_is_replaced_and_a_live_one_kept(make_server):
    server = make_server(queue_overrides())
    qid, _ = send_remote(server)
    wait_deferred(server, qid)
    server.kill9()
    sock = server.spool / "control.sock"
    assert sock.exists()  # left behind by the crash
    p = postern_queue(server, "list", timeout=20)
    assert p.returncode == 1 and "not running" in p.stderr, p.stderr

    server.start()
    assert qid in entries(server)
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600

    # A second server on the same spool (another SMTP port) must not take
    # the live socket over.
    other = make_server(dict(queue_overrides(), spool_dir=str(server.spool)),
                        start=False, name="second")
    with open(other.log_path, "wb") as log:
        proc = subprocess.run([POSTERN_BIN, "serve", "--config", str(other.config_path)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=log, cwd=str(other.root), timeout=30)
    assert proc.returncode != 0
    assert "another server is running" in other.log(), other.log()
    assert sock.exists()
    assert qid in entries(server)
    assert server.alive()


def test_usage_errors_exit_2(make_server):
    server = make_server(queue_overrides(), start=False)
    cases = [
        ("frob",),                       # unknown subcommand
        (),                              # no subcommand
        ("show",),                       # missing ID
        ("delete",),
        ("hold",),
        ("release",),
        ("show", "0123"),                # too short
        ("show", "0123456789ABCDEF"),    # upper case
        ("delete", "../../etc/passwd"),
        ("hold", "0123456789abcdeg"),
        ("list", "0123456789abcdef"),    # list takes no ID
        ("show", "0123456789abcdef", "0123456789abcdef"),
        ("list", "--frob"),
    ]
    for args in cases:
        p = postern_queue(server, *args, timeout=20)
        assert p.returncode == 2, (args, p.returncode, p.stdout, p.stderr)
        assert p.stderr.startswith("postern: "), (args, p.stderr)
        assert "usage: postern queue" in p.stderr, (args, p.stderr)


def test_help_lists_the_queue_commands():
    p = subprocess.run([POSTERN_BIN, "help"], capture_output=True, text=True, timeout=20)
    assert p.returncode == 0
    for verb in ("queue list", "queue show", "queue flush", "queue delete",
                 "queue hold", "queue release"):
        assert verb in p.stdout, p.stdout


def test_embedded_default_config_finds_no_server(tmp_path):
    """Without --config the CLI uses the embedded default (./var/spool)."""
    p = subprocess.run([POSTERN_BIN, "queue", "list"], capture_output=True, text=True,
                       cwd=str(tmp_path), timeout=20)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "not running" in p.stderr
    assert os.path.join("var", "spool", "control.sock") in p.stderr, p.stderr
