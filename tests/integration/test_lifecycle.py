"""Running postern (issue 9): graceful shutdown on SIGTERM — stop accepting,
let open mail transactions finish within limits.shutdown_timeout_s, "421
4.3.2" to the rest, the queue consistent afterwards."""

import signal
import socket
import time

import pytest

from conftest import HOSTNAME, RawSMTP, make_message, port_is_bound, wait_for_files, wait_until

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
