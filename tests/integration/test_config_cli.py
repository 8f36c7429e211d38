"""CLI: check-config, configuration errors (exit 2, file + key named, nothing
bound), --version, help."""

import json
import os
import re
import subprocess

import pytest

from conftest import (BASE_CONFIG, POSTERN_BIN, RawSMTP, deep_merge, dot_stuff, free_port,
                      make_message, port_is_bound, split_delivered, wait_for_files, wait_until)


@pytest.fixture(autouse=True)
def _binary():
    if not os.access(POSTERN_BIN, os.X_OK):
        pytest.fail(f"postern binary not found at {POSTERN_BIN} (set POSTERN_BIN)")


def run(*args, timeout=20, cwd=None):
    return subprocess.run([POSTERN_BIN, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def good_config(tmp_path, port=None):
    port = port or free_port()
    cfg = deep_merge(BASE_CONFIG, {})
    cfg["spool_dir"] = str(tmp_path / "spool")
    cfg["mail_root"] = str(tmp_path / "mail")
    cfg["listeners"] = [{"address": f"127.0.0.1:{port}", "mode": "smtp"}]
    return cfg


def write(tmp_path, cfg, name="postern.json"):
    p = tmp_path / name
    p.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg, indent=2))
    return p


def test_check_config_good_prints_json(tmp_path):
    cfg = good_config(tmp_path)
    p = write(tmp_path, cfg)
    r = run("check-config", "--config", str(p))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["hostname"] == "mx.example.test"
    assert out["spool_dir"] == cfg["spool_dir"]
    assert out["mail_root"] == cfg["mail_root"]
    assert set(out["local_domains"]) == set(cfg["local_domains"])
    assert out["limits"]["recipients"] == 100
    assert out["limits"]["message_size"] == 36700160
    assert out["listeners"][0]["address"] == cfg["listeners"][0]["address"]
    # nothing is served by check-config
    assert not port_is_bound(int(cfg["listeners"][0]["address"].rsplit(":", 1)[1]))


def test_check_config_fills_defaults_and_round_trips(tmp_path):
    cfg = {
        "hostname": "mx.example.test",
        "spool_dir": str(tmp_path / "spool"),
        "mail_root": str(tmp_path / "mail"),
        "listeners": [{"address": f"127.0.0.1:{free_port()}", "mode": "smtp"}],
        "local_domains": ["example.test"],
    }
    p = write(tmp_path, cfg)
    r = run("check-config", "--config", str(p))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    lim = out["limits"]
    assert lim["message_size"] == 36700160
    assert lim["recipients"] == 100
    assert lim["connections"] == 1000
    assert lim["connections_per_ip"] == 50
    assert lim["command_timeout_s"] == 300
    assert lim["data_timeout_s"] == 600
    assert lim["errors"] == 20
    # the effective configuration is itself a valid configuration, and stable
    p2 = write(tmp_path, r.stdout, "effective.json")
    r2 = run("check-config", "--config", str(p2))
    assert r2.returncode == 0, r2.stderr
    assert json.loads(r2.stdout) == out


def test_check_config_accepts_comments(tmp_path):
    cfg = good_config(tmp_path)
    text = json.dumps(cfg, indent=2)
    text = ("// postern test config\n/* block\n   comment */\n"
            + text.replace('"log_level"', '// a line comment\n  "log_level"', 1))
    p = write(tmp_path, text)
    r = run("check-config", "--config", str(p))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["hostname"] == "mx.example.test"


def _mutations():
    def set_(path, value):
        def f(cfg):
            d = cfg
            for k in path[:-1]:
                d = d[k]
            d[path[-1]] = value
            return cfg
        return f
    return {
        # name: (mutation, words that must appear in stderr)
        "unknown_top_key": (set_(["bogus_key"], 1), ["bogus_key"]),
        "unknown_limit_key": (set_(["limits", "bogus_limit"], 5), ["bogus_limit"]),
        "wrong_type_int": (set_(["limits", "recipients"], "ten"), ["recipients"]),
        "wrong_type_negative": (set_(["limits", "message_size"], -1), ["message_size"]),
        "wrong_type_list": (set_(["local_domains"], "example.test"), ["local_domains"]),
        "wrong_type_hostname": (set_(["hostname"], 42), ["hostname"]),
        "bad_user_address": (set_(["users"], [{"address": "not an address"}]),
                             ["users", "address"]),
        "bad_alias_target": (set_(["aliases"], {"team@example.test": ["@@bad"]}),
                             ["aliases"]),
        "bad_alias_key": (set_(["aliases"], {"not-an-address": ["alice@example.test"]}),
                          ["aliases"]),
        "user_outside_local_domains": (
            set_(["users"], [{"address": "alice@example.test"},
                             {"address": "carol@elsewhere.test"}]), ["users"]),
        "bad_listener": (set_(["listeners"], [{"address": "127.0.0.1:notaport",
                                                "mode": "smtp"}]), ["listeners"]),
        "bad_listener_mode": (set_(["listeners", 0, "mode"], "gopher"), ["mode"]),
        "bad_log_level": (set_(["log_level"], "chatty"), ["log_level"]),
    }


MUTATIONS = _mutations()


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_bad_config_check_config(tmp_path, name):
    mutate, words = MUTATIONS[name]
    p = write(tmp_path, mutate(good_config(tmp_path)))
    r = run("check-config", "--config", str(p))
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert str(p) in r.stderr, r.stderr
    for w in words:
        assert w in r.stderr, f"{w!r} not named in: {r.stderr!r}"


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_bad_config_serve_exits_2_nothing_bound(tmp_path, name):
    mutate, words = MUTATIONS[name]
    port = free_port()
    cfg = mutate(good_config(tmp_path, port))
    p = write(tmp_path, cfg)
    proc = subprocess.Popen([POSTERN_BIN, "serve", "--config", str(p)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=str(tmp_path))
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        bound = port_is_bound(port)
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"serve kept running with a bad config (port bound: {bound}); "
                    f"stderr: {err!r}")
    assert proc.returncode == 2, (proc.returncode, err)
    assert str(p) in err
    for w in words:
        assert w in err, f"{w!r} not named in: {err!r}"
    assert not port_is_bound(port)


def test_invalid_json_syntax(tmp_path):
    p = write(tmp_path, '{ "hostname": "mx.example.test", ')
    r = run("check-config", "--config", str(p))
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert str(p) in r.stderr


def test_missing_config_file(tmp_path):
    p = tmp_path / "does-not-exist.json"
    r = run("check-config", "--config", str(p))
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert str(p) in r.stderr
    r = run("serve", "--config", str(p))
    assert r.returncode == 2, (r.returncode, r.stderr)


def test_version():
    r = run("--version")
    assert r.returncode == 0, r.stderr
    assert "postern" in r.stdout.lower()
    assert re.search(r"\d+\.\d+", r.stdout), r.stdout


def test_help():
    r = run("help")
    assert r.returncode == 0, r.stderr
    text = r.stdout + r.stderr
    for word in ("serve", "check-config", "--config"):
        assert word in text, f"{word!r} missing from help: {text!r}"


def test_unknown_subcommand():
    r = run("frobnicate")
    assert r.returncode != 0
    assert r.stderr.strip(), "an unknown subcommand must be explained on stderr"


def test_two_listeners_both_serve(make_server):
    p2 = free_port()
    srv = make_server(start=False)
    srv.config["listeners"].append({"address": f"127.0.0.1:{p2}", "mode": "smtp"})
    srv.config_path.write_text(json.dumps(srv.config, indent=2))
    srv.start()
    for port in (srv.port, p2):
        with RawSMTP(port) as c:
            assert c.greeting() == ["mx.example.test ESMTP postern"]
            c.assert_nothing_pending()


def test_serve_without_config_uses_embedded_default(tmp_path):
    """`postern serve` alone: 127.0.0.1:2525, ./var/spool and ./var/mail under
    the working directory, localhost and the machine's hostname as catch-all."""
    if port_is_bound(2525):
        pytest.skip("127.0.0.1:2525 is in use")
    log = open(tmp_path / "stderr.log", "wb")
    proc = subprocess.Popen([POSTERN_BIN, "serve"], cwd=str(tmp_path), stdout=log,
                            stderr=log, stdin=subprocess.DEVNULL)
    try:
        def ready():
            assert proc.poll() is None, (tmp_path / "stderr.log").read_text()
            try:
                with RawSMTP(2525, timeout=2) as c:
                    return c.greeting()
            except OSError:
                return None
        greeting = wait_until(ready, 10, "the default listener on 127.0.0.1:2525")
        assert greeting[0].endswith(" ESMTP postern")
        msg = make_message("default config")
        with RawSMTP(2525) as c:
            c.greeting()
            c.ehlo()
            c.transaction("x@remote.test", ["anyone@localhost"], dot_stuff(msg))
            c.ok("RCPT TO:<x@other.test>", 503, "5.5.1")
            c.ok("MAIL FROM:<x@remote.test>", 250, "2.1.0")
            # The embedded default lets loopback clients relay (issue 4, as
            # Postfix's mynetworks_style = host); RSET so nothing is sent.
            c.ok("RCPT TO:<x@other.test>", 250, "2.1.5")
            c.ok("RSET", 250, "2.0.0")
            c.assert_nothing_pending()
        f = wait_for_files(tmp_path / "var" / "mail" / "localhost" / "anyone" / "new", 1)
        assert split_delivered(f[0].read_bytes())[3] == msg
        assert (tmp_path / "var" / "spool").is_dir()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_env(*args, env_extra, timeout=20):
    env = {k: v for k, v in os.environ.items() if k != "POSTERN_CONFIG"}
    env.update(env_extra)
    return subprocess.run([POSTERN_BIN, *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_every_command_finds_the_config_through_postern_config(tmp_path):
    """--config FILE, else $POSTERN_CONFIG, else /etc/postern/postern.json,
    else the embedded default — the same for check-config, route and queue."""
    cfg = good_config(tmp_path)
    cfg["hostname"] = "from-env.example.test"
    p = write(tmp_path, cfg)
    r = run_env("check-config", env_extra={"POSTERN_CONFIG": str(p)})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["hostname"] == "from-env.example.test"
    # route explain reads the same file: carl is a user only there
    r = run_env("route", "explain", "carl@users.test", env_extra={"POSTERN_CONFIG": str(p)})
    assert r.returncode == 0, r.stdout + r.stderr
    # --config wins over the environment
    other = good_config(tmp_path)
    other["hostname"] = "from-flag.example.test"
    q = write(tmp_path, other, name="other.json")
    r = run_env("check-config", "--config", str(q), env_extra={"POSTERN_CONFIG": str(p)})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["hostname"] == "from-flag.example.test"
    # a POSTERN_CONFIG naming a missing file is a configuration error naming it,
    # for serve too, before any port is bound
    missing = tmp_path / "nope.json"
    for args in (("check-config",), ("serve",), ("queue", "list")):
        r = run_env(*args, env_extra={"POSTERN_CONFIG": str(missing)})
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert str(missing) in r.stderr, (args, r.stderr)
    # empty: as if unset (the embedded default, or /etc/postern/postern.json)
    if not os.path.exists("/etc/postern/postern.json"):
        r = run_env("check-config", env_extra={"POSTERN_CONFIG": ""})
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["listeners"][0]["address"] == "127.0.0.1:2525"


def test_serve_log_format_json_one_object_per_line_with_the_queue_id(tmp_path):
    """`serve --log-format json`: every stderr line is one JSON object; the
    lines about a message carry its queue id (grep ID tells its story)."""
    cfg = good_config(tmp_path)
    port = int(cfg["listeners"][0]["address"].rsplit(":", 1)[1])
    p = write(tmp_path, cfg)
    errlog = tmp_path / "stderr.log"
    with open(errlog, "wb") as log:
        proc = subprocess.Popen([POSTERN_BIN, "serve", "--config", str(p), "--log-format", "json"],
                                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: port_is_bound(port), 10, "the listener")
        msg = make_message("json log")
        with RawSMTP(port) as c:
            c.greeting()
            c.ehlo()
            qid = c.transaction("x@remote.test", ["alice@example.test"], dot_stuff(msg))
            c.ok("QUIT", 221)
        wait_for_files(tmp_path / "mail" / "example.test" / "alice" / "new", 1)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    lines = errlog.read_text().splitlines()
    events = [json.loads(line) for line in lines]  # every line is JSON
    assert all({"time", "pid", "severity", "event"} <= set(e) for e in events), events
    (msg_ev,) = [e for e in events if e["event"] == "message"]
    assert msg_ev["id"] == qid and msg_ev["nrcpt"] == 1 and isinstance(msg_ev["size"], int), msg_ev
    (dlv,) = [e for e in events if e["event"] == "delivery"]
    assert dlv["id"] == qid and dlv["to"] == "alice@example.test", dlv
    assert [e["event"] for e in events if e.get("id") == qid] == ["delivery", "message"] or \
        [e["event"] for e in events if e.get("id") == qid] == ["message", "delivery"]


def test_log_format_must_be_text_or_json(tmp_path):
    r = run("serve", "--config", str(write(tmp_path, good_config(tmp_path))), "--log-format", "xml")
    assert r.returncode == 2
    assert "--log-format is text or json" in r.stderr
