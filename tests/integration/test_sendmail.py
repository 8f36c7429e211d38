"""`postern sendmail` (issue 9): the sendmail(1) interface for local
programs. The message goes durably into <spool_dir>/pickup/ whether the
server runs or not; the server's pickup service queues it from there.

Each test runs the real binary as a local program would: message on stdin
(bare LF line ends), exit status per sysexits.h. Tests run as root; the
unprivileged cases run the command as `nobody` through setpriv, with the
spool in a directory nobody can reach (not pytest's 0700 tmp_path).
"""

import os
import re
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import (HOSTNAME, POSTERN_BIN, Server, port_is_bound, wait_for_files,
                      wait_until)

PICKUP_NAME = re.compile(r"^[0-9a-f]{16}\.[0-9a-f]{16}$")
AS_NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def sendmail(server, args, message=b"", prog=None, as_nobody=False, config=True):
    argv = [prog or POSTERN_BIN] + ([] if prog else ["sendmail"])
    if config:
        argv += ["--config", str(server.config_path)]
    argv += list(args)
    if as_nobody:
        argv = AS_NOBODY + argv
    return subprocess.run(argv, input=message, capture_output=True, timeout=30,
                          cwd="/")


def drop_file(path, data):
    """Writes a file whole, then renames it into place (the server never
    sees it half-written, as with sendmail's own atomic_write)."""
    tmp = path.parent / (".tmp." + path.name)
    tmp.write_bytes(data)
    os.rename(tmp, path)


# The same, run as nobody: python3 -c WRITE_AS_SCRIPT PATH TEXT
WRITE_AS_SCRIPT = ("import os, sys; t = os.path.join(os.path.dirname(sys.argv[1]), '.tmp.x'); "
                   "open(t, 'x').write(sys.argv[2]); os.rename(t, sys.argv[1])")


def pickup_files(server):
    d = server.spool / "pickup"
    return sorted(p for p in d.iterdir() if p.is_file()) if d.is_dir() else []


def pickup_events(server, result, count=1):
    """The pickup log lines with this result, once there are count of them
    (the line follows the delivery: local mail is delivered in the commit)."""
    def have():
        evs = [e for e in server.log_events("pickup") if e.get("result") == result]
        return evs if len(evs) >= count else None
    return wait_until(have, 10, f"{count} pickup event(s) with result={result}")


def header_section(data):
    return data.split(b"\r\n\r\n", 1)[0]


def field(data, name):
    """The unfolded bodies of every field called name in the header section."""
    out = []
    for line in re.sub(rb"\r\n[ \t]", b" ", header_section(data)).split(b"\r\n"):
        k, _, v = line.partition(b":")
        if k.strip().lower() == name.lower().encode():
            out.append(v.strip().decode())
    return out


def assert_crlf_only(data):
    assert b"\n" not in data.replace(b"\r\n", b""), data[:400]
    assert b"\r" not in data.replace(b"\r\n", b""), data[:400]


@pytest.fixture
def open_root():
    """A directory local users can pass through (0755), for the spool."""
    d = Path(tempfile.mkdtemp(prefix="postern-sendmail-"))
    d.chmod(0o755)
    servers = []
    yield d, servers
    for s in servers:
        s.stop()
    shutil.rmtree(d, ignore_errors=True)


def test_server_down_then_up_explicit_recipients(make_server):
    server = make_server(start=False)
    assert not server.spool.exists()
    msg = (b"Subject: local mail\n"
           b"Bcc: secret@example.test\n"
           b"\n"
           b"line one\n"
           b"..leading dots stay\n"
           b"last line\n")
    p = sendmail(server, ["-F", "Root Admin", "alice@example.test"], msg)
    assert p.returncode == 0, p.stderr
    assert p.stderr == b""
    # The server is down: the message waits, durable, in pickup/ (mode 3733).
    files = pickup_files(server)
    assert len(files) == 1 and PICKUP_NAME.match(files[0].name), files
    assert stat.S_IMODE((server.spool / "pickup").stat().st_mode) == 0o3733
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o640
    head, _, body = files[0].read_bytes().partition(b"\n")
    assert b'"version":1' in head and b'"alice@example.test"' in head
    assert body.startswith(b"Subject: local mail\r\n")

    server.start()
    (f,) = wait_for_files(server.new("alice@example.test"), 1)
    data = f.read_bytes()
    assert_crlf_only(data)
    sender = f"root@{HOSTNAME}"
    assert data.startswith(f"Return-Path: <{sender}>\r\n".encode()), data[:200]
    assert field(data, "From") == [f'"Root Admin" <{sender}>']
    assert len(field(data, "Date")) == 1
    (mid,) = field(data, "Message-ID")
    assert re.fullmatch(rf"<[0-9a-f]{{16}}@{re.escape(HOSTNAME)}>", mid)
    assert field(data, "Bcc") == []
    (received,) = field(data, "Received")
    assert received.startswith("from local user root (uid 0) by " + HOSTNAME + " (postern) with local id ")
    assert data.endswith(b"\r\n\r\nline one\r\n..leading dots stay\r\nlast line\r\n")
    wait_until(lambda: not pickup_files(server), 10, "pickup/ to be empty")
    (ev,) = pickup_events(server, "queued")
    assert ev["login"] == "root" and ev["uid"] == "0" and ev["nrcpt"] == "1"
    assert mid == f"<{ev['id']}@{HOSTNAME}>"


def test_dash_t_reads_to_cc_bcc_removes_bcc_and_the_dot_line_ends_input(make_server):
    server = make_server(start=False)
    msg = (b"From: Someone <someone@example.test>\n"
           b"To: Alice <alice@example.test>\n"
           b"Cc: team-of-one: bob@example.test;\n"
           b"Bcc: carl@users.test,\n"
           b" (hidden) carl@users.test\n"
           b"Subject: extracted\n"
           b"\n"
           b"before the dot\n"
           b".\n"
           b"never read\n")
    p = sendmail(server, ["-t"], msg)
    assert p.returncode == 0, p.stderr
    server.start()
    for rcpt in ("alice@example.test", "bob@example.test", "carl@users.test"):
        (f,) = wait_for_files(server.new(rcpt), 1)
        data = f.read_bytes()
        assert_crlf_only(data)
        assert field(data, "Bcc") == []
        assert field(data, "From") == ["Someone <someone@example.test>"]  # kept as written
        assert field(data, "To") == ["Alice <alice@example.test>"]
        assert len(field(data, "Message-ID")) == 1 and len(field(data, "Date")) == 1
        assert data.endswith(b"\r\n\r\nbefore the dot\r\n"), data[-80:]
    # One message, three recipients, no "for" clause (privacy).
    (ev,) = pickup_events(server, "queued")
    assert ev["nrcpt"] == "3"


def test_dash_i_keeps_the_dot_line_and_a_running_server_takes_it_at_once(make_server):
    server = make_server()
    p = sendmail(server, ["-oi", "alice@example.test"], b"Subject: i\n\na\n.\nb\n")
    assert p.returncode == 0, p.stderr
    (f,) = wait_for_files(server.new("alice@example.test"), 1, timeout=10)
    assert f.read_bytes().endswith(b"\r\n\r\na\r\n.\r\nb\r\n")
    # Text with no header at all becomes a body.
    p = sendmail(server, ["-i", "alice@example.test"], b"just text\n")
    assert p.returncode == 0, p.stderr
    files = wait_for_files(server.new("alice@example.test"), 2, timeout=10)
    data = [x.read_bytes() for x in files if x != f][0]
    assert data.endswith(b"\r\n\r\njust text\r\n")
    assert field(data, "From") == [f"root@{HOSTNAME}"]


def test_invoked_through_a_sendmail_symlink(make_server, tmp_path):
    server = make_server()
    link = tmp_path / "bin" / "sendmail"
    link.parent.mkdir()
    link.symlink_to(POSTERN_BIN)
    p = sendmail(server, ["-oi", "-oem", "-odi", "-v", "bob@example.test"], b"Subject: via symlink\n\nhi\n",
                 prog=str(link))
    assert p.returncode == 0, p.stderr
    (f,) = wait_for_files(server.new("bob@example.test"), 1, timeout=10)
    assert field(f.read_bytes(), "Subject") == ["via symlink"]
    p = sendmail(server, ["-bp"], prog=str(link))
    assert p.returncode == 64 and b"not supported" in p.stderr, p.stderr


@pytest.mark.parametrize("args,status,words", [
    (["-x", "alice@example.test"], 64, b"unknown option '-x'"),
    (["--frobnicate", "alice@example.test"], 64, b"unknown option '--frobnicate'"),
    (["-f"], 64, b"needs a value"),
    ([], 64, b"no recipients given"),
    (["not an address!"], 65, b"not an address"),
    (["-t"], 65, b"no recipients"),
    (["-f", "a b c", "alice@example.test"], 65, b"-f: not an address"),
])
def test_usage_and_data_errors_have_sysexits_statuses(make_server, args, status, words):
    server = make_server(start=False)
    p = sendmail(server, args, b"Subject: x\n\nbody\n")
    assert p.returncode == status, p.stderr
    assert words in p.stderr, p.stderr
    assert pickup_files(server) == []


def test_message_size_limit_and_config_errors(make_server, tmp_path):
    server = make_server({"limits": {"message_size": 1024}}, start=False)
    p = sendmail(server, ["alice@example.test"], b"Subject: big\n\n" + b"x" * 100 + b"\n" * 20 + b"y\n" * 600)
    assert p.returncode == 65 and b"message too large" in p.stderr, p.stderr
    p = sendmail(server, ["alice@example.test"], b"Subject: long\n\n" + b"z" * 999 + b"\n")
    assert p.returncode == 65 and b"longer than 998" in p.stderr, p.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"sendmail": {"trusted_users": "root"}}')
    p = subprocess.run([POSTERN_BIN, "sendmail", "--config", str(bad), "alice@example.test"],
                       input=b"x\n", capture_output=True, timeout=30)
    assert p.returncode == 78, p.stderr
    assert b"sendmail.trusted_users: expected an array of login names" in p.stderr
    assert pickup_files(server) == []


def test_check_config_prints_trusted_users(make_server):
    server = make_server({"sendmail": {"trusted_users": ["root", "mailman"]}}, start=False)
    p = subprocess.run([POSTERN_BIN, "check-config", "--config", str(server.config_path)],
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    import json
    assert json.loads(p.stdout)["sendmail"] == {"trusted_users": ["root", "mailman"]}
    default = make_server(start=False, name="default")
    p = subprocess.run([POSTERN_BIN, "check-config", "--config", str(default.config_path)],
                       capture_output=True, timeout=30)
    assert json.loads(p.stdout)["sendmail"] == {"trusted_users": ["root"]}


def test_trusted_root_may_set_the_sender(make_server):
    server = make_server()
    p = sendmail(server, ["-f", "<list-bounces@example.test>", "-F", "The List", "alice@example.test"],
                 b"Subject: from a list\n\nhi\n")
    assert p.returncode == 0, p.stderr
    (f,) = wait_for_files(server.new("alice@example.test"), 1, timeout=10)
    data = f.read_bytes()
    assert data.startswith(b"Return-Path: <list-bounces@example.test>\r\n")
    assert field(data, "From") == ['"The List" <list-bounces@example.test>']


def test_unprivileged_user_submits_but_may_not_set_the_sender(open_root):
    root, servers = open_root
    server = Server(root / "srv")
    servers.append(server)
    server.start()
    # An unprivileged user may submit (pickup/ is 3733) ...
    p = sendmail(server, ["alice@example.test"], b"Subject: from nobody\n\nhi\n", as_nobody=True)
    assert p.returncode == 0, p.stderr
    (f,) = wait_for_files(server.new("alice@example.test"), 1, timeout=10)
    data = f.read_bytes()
    assert data.startswith(f"Return-Path: <nobody@{HOSTNAME}>\r\n".encode())
    assert "from local user nobody (uid 65534)" in field(data, "Received")[0]
    # ... but not list the pickup directory, nor the queue.
    p = subprocess.run(AS_NOBODY + ["ls", str(server.spool / "pickup")], capture_output=True)
    assert p.returncode != 0
    # -f to another sender: refused by sendmail (EX_NOPERM), nothing written.
    p = sendmail(server, ["-f", "boss@example.test", "alice@example.test"], b"Subject: forged\n\nx\n",
                 as_nobody=True)
    assert p.returncode == 77, p.stderr
    assert b"may not set the sender" in p.stderr
    # -f with one's own address is fine.
    p = sendmail(server, ["-f", f"nobody@{HOSTNAME}", "alice@example.test"], b"Subject: own\n\nx\n",
                 as_nobody=True)
    assert p.returncode == 0, p.stderr
    wait_for_files(server.new("alice@example.test"), 2, timeout=10)


def test_a_forged_pickup_file_is_quarantined_by_the_server(open_root):
    """nobody writes a pickup file by hand (not through sendmail), claiming
    to be root with a forged sender: the server believes the file's owner."""
    root, servers = open_root
    server = Server(root / "srv")
    servers.append(server)
    server.start()
    pickup = server.spool / "pickup"
    forged = ('{"version":1,"sender":"boss@example.test","recipients":["alice@example.test"],'
              '"uid":0,"login":"root","time":1,"full_name":""}\nSubject: forged\r\n\r\nx\r\n')
    name = "0123456789abcdef.0123456789abcdef"
    script = WRITE_AS_SCRIPT
    p = subprocess.run(AS_NOBODY + ["/usr/bin/python3", "-c", script, str(pickup / name), forged],
                       capture_output=True)
    assert p.returncode == 0, p.stderr
    wait_until(lambda: (pickup / "corrupt" / name).exists(), 10, "the forged file in pickup/corrupt/")
    (ev,) = pickup_events(server, "quarantined")
    assert "uid 0 in the file, owner uid 65534" in ev["reason"]
    # The same lie with the right uid still may not set the sender.
    forged2 = forged.replace('"uid":0,"login":"root"', '"uid":65534,"login":"nobody"')
    name2 = "0123456789abcdef.fedcba9876543210"
    p = subprocess.run(AS_NOBODY + ["/usr/bin/python3", "-c", script, str(pickup / name2), forged2],
                       capture_output=True)
    assert p.returncode == 0, p.stderr
    wait_until(lambda: (pickup / "corrupt" / name2).exists(), 10, "the second forged file in corrupt/")
    assert any("not in sendmail.trusted_users" in e.get("reason", "")
               for e in pickup_events(server, "quarantined", 2))
    assert server.all_delivered() == []
    assert server.alive() and port_is_bound(server.port)


def test_corrupt_pickup_files_are_moved_aside_and_the_server_goes_on(make_server):
    server = make_server()
    pickup = server.spool / "pickup"
    drop_file(pickup / "0000000000000001.aaaaaaaaaaaaaaaa", b"not a pickup file at all")
    drop_file(pickup / "0000000000000002.bbbbbbbbbbbbbbbb",
              b'{"version":9,"sender":"","recipients":["a@b.test"],"uid":0,"login":"root","time":1}\nx\r\n')
    drop_file(pickup / "stray-name", b"whatever")
    os.symlink("/etc/passwd", pickup / "0000000000000003.cccccccccccccccc")
    wait_until(lambda: len(list((pickup / "corrupt").iterdir())) == 4, 10, "four files in pickup/corrupt/")
    assert pickup_files(server) == []
    reasons = sorted(e["reason"].strip('"') for e in pickup_events(server, "quarantined", 4))
    assert reasons == ["malformed", "symbolic link", "unexpected file name", "unsupported version"], reasons
    assert server.alive() and port_is_bound(server.port)
    # And mail still flows.
    p = sendmail(server, ["alice@example.test"], b"Subject: after\n\nok\n")
    assert p.returncode == 0, p.stderr
    wait_for_files(server.new("alice@example.test"), 1, timeout=10)


def test_a_remote_recipient_is_queued_for_relay(make_server):
    """Local submission may relay, like an authenticated client: the remote
    recipient is queued (DNS points nowhere here, so it stays queued)."""
    from conftest import free_port
    server = make_server({"dns": {"servers": [f"127.0.0.1:{free_port()}"]},
                          "queue": {"retry_initial_s": 3600, "retry_max_s": 7200, "delay_warning_s": 0}})
    p = sendmail(server, ["someone@remote.test"], b"Subject: out\n\nbye\n")
    assert p.returncode == 0, p.stderr
    wait_until(lambda: server.queue_files(), 10, "a queue entry")
    p = subprocess.run([POSTERN_BIN, "queue", "list", "--json", "--config", str(server.config_path)],
                       capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    import json
    (entry,) = json.loads(p.stdout)["entries"]
    assert entry["sender"] == f"root@{HOSTNAME}"
    assert [r["address"] for r in entry["recipients"]] == ["someone@remote.test"]


class NobodyServer(Server):
    """postern serve run as nobody, as contrib/systemd/postern.service runs
    it as its own unprivileged user: spool and mail root belong to nobody."""

    def start(self, timeout=10):
        import subprocess as sp
        self.generation += 1
        self._log = open(self.log_path, "ab")
        self._out = open(self.out_path, "ab")
        self.proc = sp.Popen(AS_NOBODY + [POSTERN_BIN, "serve", "--config", str(self.config_path)],
                             stdin=sp.DEVNULL, stdout=self._out, stderr=self._log, cwd="/")
        self.expect_dead = False
        self.wait_ready(timeout)
        return self


def test_an_unprivileged_server_reads_what_root_and_others_submit(open_root):
    """root submits first, with the server never run: sendmail makes
    pickup/ for the spool's owner (nobody); the server, running as nobody,
    then reads root's file through the directory's group, and later ones."""
    root, servers = open_root
    # The suite's certificate is root's: nobody's server makes its own.
    server = NobodyServer(root / "srv", {"tls": {"certificate": None, "private_key": None}})
    servers.append(server)
    for d in (server.spool, server.mail_root):
        d.mkdir(mode=0o700)
        os.chown(d, 65534, 65534)
    p = sendmail(server, ["alice@example.test"], b"Subject: from root, server never ran\n\nhi\n")
    assert p.returncode == 0, p.stderr
    pickup = server.spool / "pickup"
    st = pickup.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (65534, 65534, 0o3733)
    (f,) = pickup_files(server)
    st = f.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 65534, 0o640)
    server.start()
    wait_for_files(server.new("alice@example.test"), 1, timeout=10)
    p = sendmail(server, ["alice@example.test"], b"Subject: root again\n\nhi\n")
    assert p.returncode == 0, p.stderr
    wait_for_files(server.new("alice@example.test"), 2, timeout=10)
    wait_until(lambda: not pickup_files(server), 10, "pickup/ to be empty")
    assert [e for e in server.log_events("pickup") if e.get("result") != "queued"] == []
