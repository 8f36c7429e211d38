"""Disk full: when the spool or the Maildir file system fills, postern answers
452 4.3.1 at MAIL and DATA (limits.min_free_space), keeps every queued message
intact, defers local deliveries with 4.3.1 instead of losing them, and
recovers by itself when space returns.

Each test mounts its own small tmpfs (root only, as in CI) and unmounts it at
the end; nothing here touches the real disk's free space."""

import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import (RawSMTP, dot_stuff, make_message, message_ids_in, wait_for_files,
                      wait_until)

MIB = 1024 * 1024


@pytest.fixture
def small_fs(tmp_path):
    """mount(name, size_mib) -> Path of a fresh tmpfs; all unmounted at the end."""
    mounted = []

    def mount(name, size_mib):
        d = tmp_path / name
        d.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m,mode=0755", "tmpfs", str(d)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root): {r.stderr.strip()}")
        mounted.append(d)
        return d

    yield mount
    for d in reversed(mounted):
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path, leave):
    """Writes path/filler until at most `leave` octets are free; returns the file."""
    filler = Path(path) / "filler"
    with open(filler, "wb") as f:
        chunk = b"\0" * (256 * 1024)
        while free_bytes(path) > leave + len(chunk):
            f.write(chunk)
            f.flush()
        rest = free_bytes(path) - leave
        if rest > 0:
            try:
                f.write(b"\0" * rest)
                f.flush()
            except OSError:
                pass
        os.fsync(f.fileno())
    return filler


def disk_server(make_server, spool, mail_root, **overrides):
    """A server whose spool and Maildirs are on the given directories."""
    cfg = {"spool_dir": str(spool), "mail_root": str(mail_root)}
    cfg.update(overrides)
    srv = make_server(cfg, start=False)
    srv.spool, srv.mail_root = Path(spool), Path(mail_root)  # what the helpers inspect
    return srv.start()


def send_one(port, rcpt, subject):
    """One transaction; returns (mail reply, data reply or None, message)."""
    msg = make_message(subject)
    with RawSMTP(port) as c:
        c.greeting()
        c.ehlo()
        mail = c.cmd("MAIL FROM:<sender@remote.test>")
        if mail[0] != 250:
            c.ok("QUIT", 221)
            return mail, None, msg
        c.ok(f"RCPT TO:<{rcpt}>", 250, "2.1.5")
        code, texts = c.cmd("DATA")
        if code != 354:
            c.ok("QUIT", 221)
            return mail, (code, texts), msg
        c.send(dot_stuff(msg) + b".\r\n")
        end = c.reply()
        c.ok("QUIT", 221)
        return mail, end, msg


def test_mail_refused_with_452_while_the_spool_is_low_and_accepted_again(make_server, small_fs):
    disk = small_fs("disk", 16)
    srv = disk_server(make_server, disk / "spool", disk / "mail",
                      limits={"message_size": 1 * MIB, "min_free_space": 4 * MIB})
    mail, end, msg = send_one(srv.port, "alice@example.test", "before")
    assert mail[0] == 250 and end[0] == 250, (mail, end)

    filler = fill(disk, 2 * MIB)
    # At most one second of cached measurement: poll with a deadline.
    def refused():
        with RawSMTP(srv.port) as c:
            c.greeting()
            c.ehlo()
            code, texts = c.cmd("MAIL FROM:<sender@remote.test>")
            c.ok("QUIT", 221)
            return (code, texts) == (452, ["4.3.1 Error: insufficient system storage"])
    wait_until(refused, 10, "MAIL refused with 452 4.3.1")
    assert "event=storage result=low" in srv.log()
    # A transaction already past MAIL is refused at DATA.
    with RawSMTP(srv.port) as c:
        c.greeting()
        c.ehlo()
        c.ok("RSET", 250)
        c.ok("MAIL FROM:<sender@remote.test>", 452, "4.3.1")
        c.ok("NOOP", 250)
    files_before = sorted(p.name for p in srv.new("alice@example.test").iterdir())
    assert len(files_before) == 1

    filler.unlink()
    def accepted():
        mail, end, _ = send_one(srv.port, "alice@example.test", "after")
        return mail[0] == 250 and end is not None and end[0] == 250
    wait_until(accepted, 10, "mail accepted again once space returned")
    assert "event=storage result=ok" in srv.log()
    files = wait_for_files(srv.new("alice@example.test"), 2)
    assert len(files) == 2
    assert srv.alive()


def test_data_refused_with_452_when_space_runs_out_during_the_transaction(make_server, small_fs):
    disk = small_fs("disk", 16)
    srv = disk_server(make_server, disk / "spool", disk / "mail",
                      limits={"message_size": 1 * MIB, "min_free_space": 4 * MIB})
    with RawSMTP(srv.port) as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<sender@remote.test>", 250, "2.1.0")
        c.ok("RCPT TO:<bob@example.test>", 250, "2.1.5")
        filler = fill(disk, 2 * MIB)
        time.sleep(1.1)  # let the one-second measurement cache expire (not an assertion)
        c.ok("DATA", 452, "4.3.1")
        c.ok("RSET", 250)
        filler.unlink()
    assert srv.all_delivered() == []
    assert srv.incoming_files() == []


def test_a_full_spool_at_end_of_data_gets_452_and_leaves_nothing_behind(make_server, small_fs):
    """With the threshold off, the write itself fails: ENOSPC is answered
    452 4.3.1 after the final dot, and no partial file stays in the spool."""
    disk = small_fs("disk", 8)
    srv = disk_server(make_server, disk / "spool", disk / "mail",
                      limits={"message_size": 4 * MIB, "min_free_space": 0})
    filler = fill(disk, 256 * 1024)
    body = [("x" * 998) for _ in range(1500)]  # ~1.5 MB: does not fit
    msg = make_message("too big for the disk", body_lines=body)
    with RawSMTP(srv.port) as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<sender@remote.test>", 250, "2.1.0")
        c.ok("RCPT TO:<alice@example.test>", 250, "2.1.5")
        c.ok("DATA", 354)
        c.send(dot_stuff(msg) + b".\r\n")
        code, texts = c.reply()
        assert (code, texts[0][:5]) == (452, "4.3.1"), (code, texts)
        c.ok("NOOP", 250)
    assert srv.incoming_files() == []
    assert srv.all_delivered() == []
    filler.unlink()
    mail, end, small = send_one(srv.port, "alice@example.test", "fits now")
    assert mail[0] == 250 and end[0] == 250, (mail, end)
    (f,) = wait_for_files(srv.new("alice@example.test"), 1)
    assert f.read_bytes().endswith(small)
    assert srv.alive()


def test_a_full_maildir_defers_with_431_and_delivers_once_space_returns(make_server, small_fs):
    spool = small_fs("spool", 32)
    mail_fs = small_fs("mailfs", 4)
    srv = disk_server(make_server, spool / "q", mail_fs / "m",
                      limits={"message_size": 2 * MIB, "min_free_space": 0},
                      queue={"retry_initial_s": 1, "retry_max_s": 1})
    filler = fill(mail_fs, 64 * 1024)
    body = [("y" * 900) for _ in range(400)]  # ~360 KB: the Maildir cannot take it
    msg = make_message("deferred local", body_lines=body)
    with RawSMTP(srv.port) as c:
        c.greeting()
        c.ehlo()
        c.ok("MAIL FROM:<sender@remote.test>", 250, "2.1.0")
        c.ok("RCPT TO:<alice@example.test>", 250, "2.1.5")
        c.ok("DATA", 354)
        c.send(dot_stuff(msg) + b".\r\n")
        c.expect(250, "2.0.0")   # durable in the spool, which has room
    wait_until(lambda: "4.3.1 maildir: No space left on device" in srv.log(), 10,
               "a deferral with 4.3.1 logged")
    assert srv.queue_files() != [], "the message stays queued"
    assert srv.all_delivered() == []
    filler.unlink()
    def delivered():
        return any(msg in p.read_bytes() for p in srv.new("alice@example.test").iterdir())
    wait_until(delivered, 20, "the deferred message delivered after space returned")
    srv.wait_queue_empty()
    copies = [p for p in srv.new("alice@example.test").iterdir() if msg in p.read_bytes()]
    assert len(copies) == 1, copies
    assert srv.alive()
