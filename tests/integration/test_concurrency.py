"""200 concurrent clients x 10 messages: every message delivered exactly once."""

import collections
import smtplib
import threading
import traceback

from conftest import message_ids_in, make_message, split_delivered, wait_until

CLIENTS = 200
PER_CLIENT = 10


def test_200_clients_10_messages_each(make_server):
    srv = make_server({"limits": {"connections_per_ip": 300, "connections": 1000}})
    barrier = threading.Barrier(CLIENTS)
    errors = []
    sent = {}                     # message-id -> (recipient, bytes)
    lock = threading.Lock()

    def client(t):
        try:
            s = smtplib.SMTP("127.0.0.1", srv.port, local_hostname=f"c{t}.test", timeout=120)
            try:
                s.ehlo()
                barrier.wait(timeout=120)      # all 200 sessions open at once
                for k in range(PER_CLIENT):
                    mid = f"c{t}-m{k}@concurrency.test"
                    rcpt = ("alice@example.test", "bob@example.test",
                            f"t{t}@catchall.test")[(t + k) % 3]
                    msg = make_message(f"client {t} message {k}", [f"t={t} k={k}"], msgid=mid)
                    refused = s.sendmail(f"c{t}@remote.test", [rcpt], msg)
                    assert refused == {}
                    with lock:
                        sent[mid] = (rcpt, msg)
            finally:
                try:
                    s.quit()
                except smtplib.SMTPException:
                    pass
        except BaseException:
            with lock:
                errors.append(f"client {t}: {traceback.format_exc()}")
            barrier.abort()

    threads = [threading.Thread(target=client, args=(t,), daemon=True) for t in range(CLIENTS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=200)
    assert not any(th.is_alive() for th in threads), "client threads did not finish"
    assert not errors, f"{len(errors)} client errors; first:\n{errors[0]}"
    assert len(sent) == CLIENTS * PER_CLIENT

    total = CLIENTS * PER_CLIENT
    wait_until(lambda: len(srv.all_delivered()) >= total, 180,
               f"{total} delivered files", interval=0.2)
    srv.wait_queue_empty(60)
    files = srv.all_delivered()
    assert len(files) == total, f"{len(files)} files for {total} messages"

    seen = collections.Counter()
    for f in files:
        ids = message_ids_in(f)
        assert len(ids) == 1, (f, ids)
        mid = ids[0]
        seen[mid] += 1
        rcpt, msg = sent[mid]
        local, domain = rcpt.split("@")
        assert f.parent.parent == srv.mail_root / domain / local, (f, rcpt)
        assert split_delivered(f.read_bytes())[3] == msg, f
    dup = [m for m, n in seen.items() if n != 1]
    assert not dup, f"delivered more than once: {dup[:10]}"
    assert set(seen) == set(sent)
    assert srv.alive()
