"""Recipients (issue 7): plus-addressing (recipient_delimiter), RCPT checks
for aliases whose targets do not exist, alias loops refused at configuration
load, and `postern route explain ADDRESS`."""

import email
import email.policy
import json
import os
import re
import smtplib
import subprocess

import pytest

from conftest import (BASE_CONFIG, POSTERN_BIN, deep_merge, free_port, make_message, port_is_bound,
                      split_delivered, wait_for_files)
from relay_helpers import dns  # noqa: F401  (fixture: a TestDNS on loopback)

SENDER = "sender@remote.test"


def run(*args, timeout=30):
    return subprocess.run([POSTERN_BIN, *args], capture_output=True, text=True, timeout=timeout)


def rcpt_reply(server, address):
    """(code, text) the server gives RCPT TO:<address>."""
    s = server.smtplib()
    try:
        s.ehlo()
        code, _ = s.mail(SENDER)
        assert code == 250
        return s.rcpt(address)
    finally:
        s.quit()


def send(server, rcpts, subject):
    msg = make_message(subject)
    s = server.smtplib()
    try:
        assert s.sendmail(SENDER, rcpts, msg) == {}
    finally:
        s.quit()
    return msg


# --------------------------------------------------------------------------
# plus-addressing


def test_plus_address_is_delivered_to_the_user_with_the_tag_in_delivered_to(server):
    assert rcpt_reply(server, "alice+news@example.test")[0] == 250
    msg = send(server, ["alice+news@example.test"], "plus")
    files = wait_for_files(server.new("alice@example.test"), 1)
    _, delivered_to, _, rest = split_delivered(files[0].read_bytes())
    assert delivered_to == b"alice+news@example.test"
    assert rest == msg
    assert not server.maildir("alice+news@example.test").exists()
    server.wait_queue_empty()


def test_plus_address_of_an_alias_expands_the_alias(server):
    send(server, ["team+x@example.test"], "alias plus")
    for user in ("alice@example.test", "bob@example.test"):
        files = wait_for_files(server.new(user), 1)
        assert split_delivered(files[0].read_bytes())[1] == user.encode()


def test_routing_tricks_stay_refused_with_a_tag(server):
    code, text = rcpt_reply(server, "alice+bob%remote.test@example.test")
    assert code == 554 and text.startswith(b"5.7.1"), (code, text)


def test_delimiter_switched_off(make_server):
    server = make_server({"recipient_delimiter": ""})
    code, text = rcpt_reply(server, "alice+tag@example.test")
    assert code == 550 and text.startswith(b"5.1.1"), (code, text)
    assert rcpt_reply(server, "alice@example.test")[0] == 250


def test_custom_delimiter(make_server):
    server = make_server({"recipient_delimiter": "-"})
    code, text = rcpt_reply(server, "alice+tag@example.test")
    assert code == 550 and text.startswith(b"5.1.1"), (code, text)
    send(server, ["alice-tag@example.test"], "dash")
    files = wait_for_files(server.new("alice@example.test"), 1)
    assert split_delivered(files[0].read_bytes())[1] == b"alice-tag@example.test"


def test_catch_all_keeps_the_full_local_part(server):
    send(server, ["some.body+tag@catchall.test"], "catch-all")
    files = wait_for_files(server.mail_root / "catchall.test" / "some.body+tag" / "new", 1)
    assert split_delivered(files[0].read_bytes())[1] == b"some.body+tag@catchall.test"


# --------------------------------------------------------------------------
# aliases whose targets do not exist


def test_alias_reaching_no_mailbox_is_refused_at_rcpt(make_server):
    server = make_server({"aliases": {
        "sales@example.test": ["nobody@example.test"],
        "half@example.test": ["alice@example.test", "ghost@example.test"],
    }})
    for address in ("sales@example.test", "sales+x@example.test"):
        code, text = rcpt_reply(server, address)
        assert code == 550 and text.startswith(b"5.1.1"), (address, code, text)
    # A partly valid alias is accepted; its existing target gets the mail and
    # the missing one bounces to the sender (local here: bob).
    assert rcpt_reply(server, "half@example.test")[0] == 250
    msg = make_message("half")
    s = server.smtplib()
    try:
        assert s.sendmail("bob@example.test", ["half@example.test"], msg) == {}
    finally:
        s.quit()
    delivered = wait_for_files(server.new("alice@example.test"), 1)
    assert split_delivered(delivered[0].read_bytes())[3] == msg
    bounce = wait_for_files(server.new("bob@example.test"), 1)
    report = email.message_from_bytes(bounce[0].read_bytes(), policy=email.policy.default)
    text = report.as_string()
    assert "ghost@example.test" in text and "5.1.1" in text, text
    assert "alice@example.test" not in [r.strip() for r in re.findall(r"Final-Recipient: rfc822;(.*)", text)]
    server.wait_queue_empty()
    assert not server.maildir("ghost@example.test").exists()


# --------------------------------------------------------------------------
# alias loops


def loop_config(tmp_path, aliases, port):
    cfg = deep_merge(BASE_CONFIG, {"aliases": aliases})
    cfg["spool_dir"] = str(tmp_path / "spool")
    cfg["mail_root"] = str(tmp_path / "mail")
    cfg["listeners"] = [{"address": f"127.0.0.1:{port}", "mode": "smtp"}]
    p = tmp_path / "loop.json"
    p.write_text(json.dumps(cfg, indent=2))
    return p


@pytest.mark.parametrize("aliases, cycle", [
    ({"a@example.test": ["b@example.test"], "b@example.test": ["A@Example.TEST"]},
     "a@example.test -> b@example.test -> a@example.test"),
    ({"list@example.test": ["alice@example.test", "list+again@example.test"]},
     "list@example.test -> list@example.test"),
])
def test_alias_loop_is_a_configuration_error(tmp_path, aliases, cycle):
    port = free_port()
    p = loop_config(tmp_path, aliases, port)
    first = next(iter(sorted(aliases))).lower()
    for command in ("check-config", "serve"):
        r = run(command, "--config", str(p))
        assert r.returncode == 2, (command, r.returncode, r.stderr)
        assert str(p) in r.stderr, r.stderr
        assert f'aliases["{first}"]' in r.stderr, r.stderr
        assert cycle in r.stderr, r.stderr
        assert r.stdout == ""
    assert not port_is_bound(port)


# --------------------------------------------------------------------------
# postern route explain


@pytest.fixture
def explain_config(tmp_path):
    def make(overrides=None):
        cfg = deep_merge(BASE_CONFIG, overrides or {})
        cfg["spool_dir"] = str(tmp_path / "spool")
        cfg["mail_root"] = str(tmp_path / "mail")
        cfg["listeners"] = [{"address": f"127.0.0.1:{free_port()}", "mode": "smtp"}]
        p = tmp_path / "explain.json"
        p.write_text(json.dumps(cfg, indent=2))
        return p, cfg
    return make


def explain(config_path, address):
    return run("route", "explain", address, "--config", str(config_path))


def test_explain_local_user(explain_config):
    p, cfg = explain_config()
    r = explain(p, "Alice@Example.TEST")
    assert r.returncode == 0, r.stderr
    assert "domain example.test: local, with users" in r.stdout
    assert "alice@example.test: user, mailbox alice" in r.stdout
    maildir = os.path.join(cfg["mail_root"], "example.test", "alice")
    assert f"alice@example.test: Maildir {maildir} (Delivered-To: alice@example.test)" in r.stdout
    assert r.stdout.rstrip().endswith("result: accepted (RCPT 250 2.1.5)")
    # nothing was delivered or queued
    assert not os.path.exists(cfg["mail_root"])
    assert not os.path.exists(cfg["spool_dir"])


def test_explain_plus_tag(explain_config):
    p, cfg = explain_config()
    r = explain(p, "alice+news@example.test")
    assert r.returncode == 0, r.stderr
    assert 'strips the extension "news"' in r.stdout
    assert "alice@example.test: user, mailbox alice" in r.stdout
    assert "(Delivered-To: alice+news@example.test)" in r.stdout


def test_explain_alias_chain(explain_config):
    # (an "aliases" override replaces the whole table)
    p, _ = explain_config({"aliases": {
        "all@example.test": ["staff@example.test", "alice@example.test"],
        "staff@example.test": ["team@example.test"],
        "team@example.test": ["alice@example.test", "bob@example.test", "carol@remote.test"],
    }})
    r = explain(p, "all@example.test")   # all -> staff -> team -> alice, bob, carol@remote
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert "all@example.test: alias of staff@example.test, alice@example.test" in lines
    assert "  staff@example.test: alias of team@example.test" in lines
    assert "    team@example.test: alias of alice@example.test, bob@example.test, carol@remote.test" in lines
    assert "      carol@remote.test: remote (domain remote.test)" in lines
    # the final targets, each once
    finals = lines[lines.index("final targets:") + 1:]
    assert sum(1 for line in finals if line.startswith("  alice@example.test: Maildir")) == 1
    assert any(line.startswith("  bob@example.test: Maildir") for line in finals)
    assert any(line.startswith("  carol@remote.test: SMTP to the MX hosts of remote.test") for line in finals)


def test_explain_unknown_user_and_dead_alias(explain_config):
    p, _ = explain_config({"aliases": {"sales@example.test": ["nobody@example.test"]}})
    for address in ("nobody@example.test", "sales@example.test"):
        r = explain(p, address)
        assert r.returncode == 1, (address, r.stdout, r.stderr)
        assert "final targets: none" in r.stdout
        assert "result: refused: unknown user (RCPT 550 5.1.1 user unknown)" in r.stdout


def test_explain_routing_trick(explain_config):
    p, _ = explain_config()
    r = explain(p, "bob%remote.test@example.test")
    assert r.returncode == 1, r.stdout
    assert "a routing trick, refused and never relayed" in r.stdout
    assert "RCPT 554 5.7.1" in r.stdout


def test_explain_bare_postmaster(explain_config):
    p, _ = explain_config()
    r = explain(p, "postmaster")
    assert r.returncode == 0, r.stderr
    # the hostname is no local domain here: the first local domain's postmaster
    assert "canonical: postmaster@example.test" in r.stdout
    assert "postmaster@example.test: alias of alice@example.test" in r.stdout


def test_explain_remote_domain_resolves_mx_now(explain_config, dns):  # noqa: F811
    dns.mx("remote.test", (20, "mx2.remote.test"), (10, "mx1.remote.test"))
    dns.a("mx1.remote.test", "192.0.2.1")
    dns.aaaa("mx1.remote.test", "2001:db8::1")
    dns.a("mx2.remote.test", "192.0.2.2")
    dns.exists("implicit.test")
    dns.a("implicit.test", "192.0.2.9")
    p, _ = explain_config({"dns": {"servers": [dns.address]}})
    r = explain(p, "someone@remote.test")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert ("  someone@remote.test: SMTP to the MX hosts of remote.test, in order:\n"
            "    MX 10 mx1.remote.test: 2001:db8::1, 192.0.2.1\n"
            "    MX 20 mx2.remote.test: 192.0.2.2\n") in r.stdout, r.stdout
    assert "result: relayed for authenticated clients and relay_networks" in r.stdout
    r = explain(p, "someone@implicit.test")
    assert r.returncode == 0, (r.stdout, r.stderr)
    assert "no MX records: the domain itself" in r.stdout
    assert "    MX 0 implicit.test: 192.0.2.9" in r.stdout
    r = explain(p, "someone@nowhere.test")
    assert "none now: 5.1.2 domain nowhere.test does not exist" in r.stdout, r.stdout
    assert dns.queried("remote.test", "MX")


def test_explain_smarthost_skips_dns(explain_config, dns):  # noqa: F811
    p, _ = explain_config({"dns": {"servers": [dns.address]},
                           "relay": {"smarthost": "smtp.isp.test:587"}})
    r = explain(p, "someone@remote.test")
    assert r.returncode == 0, r.stderr
    assert "someone@remote.test: SMTP via the smarthost smtp.isp.test:587" in r.stdout
    assert dns.queries == []


def test_explain_bad_address_and_usage(explain_config):
    p, _ = explain_config()
    for bad in ("not an address", "a@", "@example.test"):
        r = explain(p, bad)
        assert r.returncode == 64, (bad, r.returncode, r.stdout, r.stderr)
        assert "not an address" in r.stderr
    assert run("route", "explain", "--config", str(p)).returncode == 64
    assert run("route", "frobnicate", "x@example.test").returncode == 64


def test_explain_configuration_error_exits_2(tmp_path):
    port = free_port()
    p = loop_config(tmp_path, {"a@example.test": ["b@example.test"], "b@example.test": ["a@example.test"]},
                    port)
    r = explain(p, "alice@example.test")
    assert r.returncode == 2, r.stderr
    assert "a@example.test -> b@example.test -> a@example.test" in r.stderr
