"""Outbound relay: what happens with the remote server's answers — per
recipient results, retries, expiry and delay warnings, DSNs (RFC 3464), no
DSN for <>, connection reuse, SMTPUTF8/8BITMIME, TLS policy."""

import time

import pytest

from conftest import HOSTNAME, make_message, wait_until
from relay_helpers import (SENDER, assert_dsn_envelope, dns, relay_env,  # noqa: F401
                           log_events_with, send, unq, wait_dsns, wait_log)


def one_mx(relay_env, domain, host="127.0.0.2", **sink_kw):
    relay_env.dns.mx(domain, (10, f"mx.{domain}"))
    relay_env.dns.a(f"mx.{domain}", host)
    return relay_env.sink(host, **sink_kw)


def test_mixed_recipient_results(relay_env):
    """250 for a, 450 for b, 550 for c in one transaction: a delivered, c
    bounced (a DSN about c only), b deferred and delivered on retry."""
    sink = one_mx(relay_env, "mix.test")
    sink.rcpt_replies = {"b@mix.test": "450 4.2.0 b: mailbox busy, try later",
                         "c@mix.test": "550 5.1.1 c: no such user here"}
    srv = relay_env.postern(queue={"retry_initial_s": 1, "retry_max_s": 2})
    qid, msg = send(srv, ["a@mix.test", "b@mix.test", "c@mix.test"], subject="mixed results")

    (m1,) = sink.wait_messages(1)
    assert m1["rcpt_tos"] == ["a@mix.test"], m1
    assert m1["data"].endswith(msg)
    wait_log(srv, "delivery", id=qid, to="a@mix.test", status="sent")
    ev_b = wait_log(srv, "delivery", id=qid, to="b@mix.test", status="deferred")
    assert "mailbox busy" in unq(ev_b[0]["detail"]), ev_b
    assert unq(ev_b[0]["relay"]) == "mx.mix.test", ev_b
    ev_c = wait_log(srv, "delivery", id=qid, to="c@mix.test", status="bounced")
    assert "no such user here" in unq(ev_c[0]["detail"]), ev_c

    (dsn,) = wait_dsns(srv, SENDER, 1)
    assert_dsn_envelope(srv, dsn, HOSTNAME)
    assert [r["final-recipient"].lower() for r in dsn["recipients"]] == ["rfc822; c@mix.test"], \
        dsn["recipients"]
    r = dsn["recipients"][0]
    assert r["action"].lower() == "failed", r
    assert r["status"] == "5.1.1", r
    assert r["diagnostic-code"].lower().startswith("smtp;"), r
    assert "c: no such user here" in r["diagnostic-code"], r
    assert "550" in r["diagnostic-code"], r
    assert "remote-mta" in r and "mx.mix.test" in r["remote-mta"].lower(), r
    assert "Subject: mixed results" in dsn["headers"], dsn["headers"]
    ev = wait_log(srv, "dsn", id=qid, action="failed")
    assert len(ev) == 1

    # b is retried (only b) and goes through once the sink takes it
    assert srv.queue_files()
    wait_until(lambda: sum(1 for t in sink.rcpts_tried if t[1] == "b@mix.test") >= 2, 15,
               "a retry for b")
    sink.rcpt_replies = {"c@mix.test": "550 5.1.1 c: no such user here"}
    msgs = sink.wait_messages(2, timeout=20)
    assert msgs[1]["rcpt_tos"] == ["b@mix.test"], msgs[1]
    assert msgs[1]["data"] == m1["data"]
    wait_log(srv, "delivery", id=qid, to="b@mix.test", status="sent")
    srv.wait_queue_empty()
    # a and c were never tried again
    assert [t[1] for t in sink.rcpts_tried].count("a@mix.test") == 1
    assert [t[1] for t in sink.rcpts_tried].count("c@mix.test") == 1
    assert len(srv.delivered(SENDER)) == 1, "one DSN only (about c)"
    assert len(log_events_with(srv, "dsn")) == 1


def test_expiry_after_give_up_with_one_delay_warning(relay_env):
    sink = one_mx(relay_env, "slow.test")
    sink.rcpt_replies = {"x@slow.test": "451 4.3.0 x: temporary trouble"}
    srv = relay_env.postern(queue={"retry_initial_s": 1, "retry_max_s": 1,
                                   "give_up_s": 3, "delay_warning_s": 1})
    qid, msg = send(srv, ["x@slow.test"], subject="will expire")
    wait_log(srv, "dsn", timeout=30, id=qid, action="failed")
    dsns = wait_dsns(srv, SENDER, 2)
    srv.wait_queue_empty()
    events = log_events_with(srv, "dsn", id=qid)
    assert [unq(e["action"]) for e in events] == ["delayed", "failed"], events
    assert len(srv.delivered(SENDER)) == 2, "exactly one delayed notice and one failure"
    by_action = {d["recipients"][0]["action"].lower(): d for d in dsns}
    assert set(by_action) == {"delayed", "failed"}, [d["recipients"] for d in dsns]
    for d in dsns:
        assert_dsn_envelope(srv, d, HOSTNAME)
        assert len(d["recipients"]) == 1
        assert d["recipients"][0]["final-recipient"].lower() == "rfc822; x@slow.test"
        assert "Subject: will expire" in d["headers"]
    delayed = by_action["delayed"]["recipients"][0]
    assert delayed["status"].startswith("4."), delayed
    failed = by_action["failed"]["recipients"][0]
    assert failed["status"] == "4.4.7", failed
    # the sink kept refusing: it never got the message, but was asked several times
    assert sink.messages == []
    assert sum(1 for t in sink.rcpts_tried if t[1] == "x@slow.test") >= 2


def test_no_dsn_for_null_sender(relay_env):
    sink = one_mx(relay_env, "rej.test")
    sink.rcpt_replies = {"nobody@rej.test": "550 5.1.1 nobody: no such user"}
    srv = relay_env.postern()
    qid, _ = send(srv, ["nobody@rej.test"], sender="")
    wait_log(srv, "delivery", id=qid, to="nobody@rej.test", status="bounced")
    srv.wait_queue_empty()
    assert [t[1] for t in sink.rcpts_tried] == ["nobody@rej.test"], sink.rcpts_tried
    assert sink.mails_tried and sink.mails_tried[0][1] == "", sink.mails_tried
    assert sink.messages == []
    assert srv.all_delivered() == []
    assert log_events_with(srv, "dsn") == []


def test_dsn_to_remote_sender_is_relayed(relay_env):
    """A DSN is queued and delivered like any message: to a remote sender it is
    relayed, with MAIL FROM:<>."""
    rej = one_mx(relay_env, "rej.test", host="127.0.0.2")
    rej.rcpt_replies = {"nobody@rej.test": "550 5.1.1 nobody: no such user"}
    home = one_mx(relay_env, "home.test", host="127.0.0.3")
    srv = relay_env.postern()
    qid, _ = send(srv, ["nobody@rej.test"], sender="me@home.test", subject="to nobody")
    (m,) = home.wait_messages(1)
    assert m["mail_from"] == "", m
    assert m["rcpt_tos"] == ["me@home.test"], m
    import email
    dsn_msg = email.message_from_bytes(m["data"])
    assert dsn_msg.get_content_type() == "multipart/report"
    assert dsn_msg.get_param("report-type") == "delivery-status"
    assert b"5.1.1" in m["data"] and b"nobody@rej.test" in m["data"]
    ev = wait_log(srv, "dsn", id=qid, action="failed")
    dsn_id = unq(ev[0]["dsn_id"])
    wait_log(srv, "delivery", id=dsn_id, to="me@home.test", status="sent")
    srv.wait_queue_empty()
    assert srv.all_delivered() == []


def send_five(srv, domain, prefix):
    from conftest import RawSMTP, dot_stuff
    sent = []
    with RawSMTP(srv.port) as c:
        c.greeting()
        c.ehlo()
        for i in range(5):
            msg = make_message(f"{prefix} {i}")
            sent.append(msg)
            c.transaction(SENDER, [f"u{i}@{domain}"], dot_stuff(msg))
        c.ok("QUIT", 221)
    return sent


def test_connection_reuse(relay_env):
    """5 messages for one domain queued quickly go over fewer connections than
    messages (the spec: several messages to one domain reuse one connection,
    up to messages_per_connection).

    "Quickly" made certain: the name server takes 1.5 s to answer the MX
    query for the domain, so all five are queued (accepted within a few ms of
    each other) before any connection to the domain can exist."""
    sink = one_mx(relay_env, "reuse.test")
    relay_env.dns.delay("reuse.test", 1.5)
    srv = relay_env.postern()
    t0 = time.monotonic()
    sent = send_five(srv, "reuse.test", "reuse")
    assert time.monotonic() - t0 < 1.5, "the five messages were not queued within the DNS delay"
    msgs = sink.wait_messages(5)
    srv.wait_queue_empty()
    assert sorted(m["rcpt_tos"][0] for m in msgs) == [f"u{i}@reuse.test" for i in range(5)]
    for m in msgs:
        i = int(m["rcpt_tos"][0][1])
        assert m["data"].endswith(sent[i])
    conns = {m["conn"] for m in msgs}
    assert len(conns) < 5, (f"5 messages to one domain came over {len(conns)} connections "
                            f"(sink connections: {sink.connections})")
    assert len(sink.connections) < 5, (f"{len(sink.connections)} connections opened for 5 "
                                       f"messages to one domain: {sink.connections}")
    assert len(sink.connections) < 5, sink.connections


def test_connection_reuse_one_connection_per_domain(relay_env):
    """concurrency_per_domain 1: the five queued messages go over the one
    connection allowed."""
    sink = one_mx(relay_env, "single.test")
    relay_env.dns.delay("single.test", 1.5)
    srv = relay_env.postern(remote={"concurrency_per_domain": 1})
    t0 = time.monotonic()
    send_five(srv, "single.test", "single")
    assert time.monotonic() - t0 < 1.5, "the five messages were not queued within the DNS delay"
    msgs = sink.wait_messages(5)
    srv.wait_queue_empty()
    assert sorted(m["rcpt_tos"][0] for m in msgs) == [f"u{i}@single.test" for i in range(5)]
    assert len(sink.connections) == 1, sink.connections


def test_connection_reuse_backlog_at_start(relay_env):
    """5 messages for one domain all due at once (a backlog found at start-up,
    as after a restart or a retry wave) go over fewer connections than
    messages.

    The backlog is made without timing: the domain's name server does not
    answer while the messages are accepted, so no delivery attempt ends;
    postern is stopped, DNS is fixed, and the restarted postern finds five
    never-attempted messages in its queue."""
    # the sink greets after 0.5 s: every connection postern opens for the
    # backlog is open (and counted) before any of them can carry a message
    sink = one_mx(relay_env, "backlog.test", greeting_delay=0.5)
    relay_env.dns.drop("backlog.test")
    srv = relay_env.postern()
    sent = send_five(srv, "backlog.test", "backlog")
    wait_until(lambda: len(relay_env.dns.queried("backlog.test", "MX")) >= 1, 10,
               "postern asking for the MX")
    srv.stop()
    assert len(srv.queue_files()) >= 5 or srv.incoming_files(), "the five must still be queued"
    assert log_events_with(srv, "delivery") == []
    relay_env.dns.drop("backlog.test", on=False)
    srv.start()
    msgs = sink.wait_messages(5)
    srv.wait_queue_empty()
    assert sorted(m["rcpt_tos"][0] for m in msgs) == [f"u{i}@backlog.test" for i in range(5)]
    for m in msgs:
        assert m["data"].endswith(sent[int(m["rcpt_tos"][0][1])])
    conns = {m["conn"] for m in msgs}
    assert len(conns) < 5, (f"5 messages to one domain came over {len(conns)} connections "
                            f"(sink connections: {sink.connections})")
    assert len(sink.connections) < 5, (f"{len(sink.connections)} connections opened for 5 "
                                       f"messages to one domain: {sink.connections}")


def test_messages_per_connection_limit(relay_env):
    sink = one_mx(relay_env, "cap.test")
    srv = relay_env.postern(remote={"messages_per_connection": 2})
    from conftest import RawSMTP, dot_stuff
    with RawSMTP(srv.port) as c:
        c.greeting()
        c.ehlo()
        for i in range(5):
            c.transaction(SENDER, [f"u{i}@cap.test"], dot_stuff(make_message(f"cap {i}")))
        c.ok("QUIT", 221)
    msgs = sink.wait_messages(5)
    srv.wait_queue_empty()
    per_conn = {}
    for m in msgs:
        per_conn[m["conn"]] = per_conn.get(m["conn"], 0) + 1
    assert max(per_conn.values()) <= 2, per_conn
    assert len(per_conn) >= 3, per_conn


def test_smtputf8_to_peer_without_it_bounces_5_6_7(relay_env):
    sink = one_mx(relay_env, "ascii.test", smtputf8=False)
    srv = relay_env.postern()
    rcpt = "jörg@ascii.test"
    msg = make_message("utf8", extra_headers=["X-Name: Jörg"])
    qid, _ = send(srv, [rcpt], msg=msg, mail_params=" SMTPUTF8")
    (dsn,) = wait_dsns(srv, SENDER, 1)
    assert_dsn_envelope(srv, dsn, HOSTNAME)
    assert len(dsn["recipients"]) == 1
    r = dsn["recipients"][0]
    assert r["action"].lower() == "failed", r
    assert r["status"] == "5.6.7", r
    assert "ascii.test" in r["final-recipient"].lower(), r
    wait_log(srv, "delivery", id=qid, status="bounced")
    srv.wait_queue_empty()
    assert sink.messages == [] and sink.mails_tried == [], (sink.messages, sink.mails_tried)


def test_smtputf8_to_peer_with_it(relay_env):
    sink = one_mx(relay_env, "utf.test", smtputf8=True)
    srv = relay_env.postern()
    rcpt = "jörg@utf.test"
    msg = make_message("utf8", extra_headers=["X-Name: Jörg"])
    qid, _ = send(srv, [rcpt], msg=msg, mail_params=" SMTPUTF8")
    (m,) = sink.wait_messages(1)
    assert m["rcpt_tos"] == [rcpt], m
    assert m["smtputf8"] is True, m
    assert m["data"].endswith(msg)
    wait_log(srv, "delivery", id=qid, status="sent")
    srv.wait_queue_empty()
    assert srv.all_delivered() == []


def test_8bit_body_declared_8bitmime(relay_env):
    sink = one_mx(relay_env, "eight.test", eightbitmime=True)
    srv = relay_env.postern()
    msg = make_message("8bit", body_lines=["Gr\u00fc\u00dfe aus K\u00f6ln", "", "-- ", "a"],
                       extra_headers=["MIME-Version: 1.0",
                                      "Content-Type: text/plain; charset=utf-8",
                                      "Content-Transfer-Encoding: 8bit"])
    qid, _ = send(srv, ["x@eight.test"], msg=msg, mail_params=" BODY=8BITMIME")
    (m,) = sink.wait_messages(1)
    assert m["data"].endswith(msg)
    assert "BODY=8BITMIME" in [o.upper() for o in m["mail_options"]], m["mail_options"]
    srv.wait_queue_empty()


def test_tls_policy_encrypt_defers_4_7_4(relay_env):
    """STARTTLS to peers is not available yet: "encrypt" must not send in
    clear; the message is deferred with 4.7.4, the sink gets nothing."""
    sink = one_mx(relay_env, "secure.test")
    clear = one_mx(relay_env, "clear.test", host="127.0.0.3")
    srv = relay_env.postern(remote={"tls_policy": "may",
                                    "tls_policies": {"secure.test": "encrypt"}},
                            queue={"retry_initial_s": 60, "retry_max_s": 60})
    qid, _ = send(srv, ["x@secure.test"])
    qid2, _ = send(srv, ["y@clear.test"])
    ev = wait_log(srv, "delivery", id=qid, status="deferred")
    assert "4.7.4" in unq(ev[0]["detail"]), ev
    clear.wait_messages(1)  # "may": delivered in clear
    wait_log(srv, "delivery", id=qid2, status="sent")
    assert sink.messages == [] and sink.mails_tried == []
    assert srv.queue_files()
    assert srv.all_delivered() == [] and log_events_with(srv, "dsn") == []


def test_expiry_without_delay_warning(relay_env):
    """delay_warning_s 0 disables the "delayed" notice: only the failure."""
    sink = one_mx(relay_env, "slow2.test")
    sink.rcpt_replies = {"x@slow2.test": "450 4.2.1 x: over quota, try later"}
    srv = relay_env.postern(queue={"retry_initial_s": 1, "retry_max_s": 1,
                                   "give_up_s": 2, "delay_warning_s": 0})
    qid, _ = send(srv, ["x@slow2.test"])
    wait_log(srv, "dsn", timeout=30, id=qid, action="failed")
    srv.wait_queue_empty()
    (dsn,) = wait_dsns(srv, SENDER, 1)
    r = dsn["recipients"][0]
    assert r["action"].lower() == "failed" and r["status"] == "4.4.7", r
    assert [unq(e["action"]) for e in log_events_with(srv, "dsn")] == ["failed"]
