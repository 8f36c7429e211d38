"""Relay over TLS: opportunistic STARTTLS to an MX, tls_policy "encrypt" to a
peer without STARTTLS, and the smarthost with AUTH over STARTTLS and over
implicit TLS (issue 4). The peers are aiosmtpd servers with a certificate the
test makes; nothing leaves loopback."""
import ssl
import subprocess
import threading

import pytest

from conftest import free_port, wait_until
from relay_helpers import dns, relay_env, send, wait_log  # noqa: F401  (fixtures)

USER, PASSWORD = "relayuser", "s3cret-Pa55"


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("cert")
    crt, key = d / "peer.crt", d / "peer.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=peer.test", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True, timeout=60)
    return crt, key


class TlsSink:
    """aiosmtpd with STARTTLS (or implicit TLS) and optional AUTH, recording
    each message with whether it came over TLS and who authenticated."""

    def __init__(self, host, port, cert, *, implicit=False, auth=False, password=PASSWORD):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
        self.messages, self.auth_attempts = [], []
        self.lock = threading.Lock()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                with sink.lock:
                    sink.messages.append({"rcpt_tos": list(envelope.rcpt_tos),
                                          "tls": session.ssl is not None,
                                          "login": session.login_data,
                                          "data": bytes(envelope.original_content or envelope.content)})
                return "250 2.0.0 Ok"

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = (isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode()
                  and auth_data.password == password.encode())
            with sink.lock:
                sink.auth_attempts.append((mechanism, ok))
            if ok:
                return AuthResult(success=True, auth_data=auth_data)
            return AuthResult(success=False, handled=False, message="535 5.7.8 Authentication credentials invalid")

        kw = dict(hostname=host, port=port, server_hostname="peer.test", ready_timeout=10,
                  decode_data=False)
        if auth:
            # aiosmtpd 1.4 counts only STARTTLS as TLS for auth_require_tls,
            # so on an implicit-TLS port it would hide AUTH altogether.
            kw.update(authenticator=authenticator, auth_required=True, auth_require_tls=not implicit)
        if implicit:
            kw["ssl_context"] = ctx
        else:
            kw.update(tls_context=ctx, require_starttls=auth)
        self.controller = Controller(Handler(), **kw)
        self.controller.start()

    def stop(self):
        try:
            self.controller.stop()
        except Exception:
            pass

    def wait(self, n, timeout=20):
        wait_until(lambda: len(self.messages) >= n, timeout, f"{n} message(s) at the TLS sink")
        return self.messages


def test_starttls_is_used_when_the_mx_offers_it(relay_env, cert):
    port = relay_env.port
    relay_env.dns.mx("tls.test", (10, "mx.tls.test"))
    relay_env.dns.a("mx.tls.test", "127.0.0.2")
    sink = TlsSink("127.0.0.2", port, cert)
    try:
        srv = relay_env.postern()
        send(srv, ["bob@tls.test"])
        msgs = sink.wait(1)
        assert msgs[0]["tls"] is True
        assert msgs[0]["rcpt_tos"] == ["bob@tls.test"]
        t = wait_log(srv, "remote_transaction")[0]
        assert t["tls"].strip('"').startswith("TLSv1.")
    finally:
        sink.stop()


def test_encrypt_policy_defers_when_the_peer_has_no_starttls(relay_env):
    relay_env.dns.mx("plain.test", (10, "mx.plain.test"))
    relay_env.dns.a("mx.plain.test", "127.0.0.3")
    sink = relay_env.sink("127.0.0.3")
    srv = relay_env.postern(remote={"tls_policy": "encrypt"},
                            queue={"retry_initial_s": 3600, "retry_max_s": 3600})
    send(srv, ["bob@plain.test"])
    d = wait_log(srv, "delivery", status="deferred")[0]
    assert "4.7.4" in d["detail"]
    assert sink.messages == []
    assert srv.queue_files(), "the message must stay queued"


@pytest.mark.parametrize("implicit", [False, True], ids=["starttls", "implicit"])
def test_smarthost_with_auth(make_server, cert, tmp_path, implicit):
    port = free_port()
    sink = TlsSink("127.0.0.4", port, cert, implicit=implicit, auth=True)
    try:
        pw = tmp_path / "relay.pass"
        pw.write_text(PASSWORD + "\n")
        srv = make_server({
            "relay_networks": ["127.0.0.0/8"],
            "relay": {"smarthost": f"127.0.0.4:{port}", "tls": "implicit" if implicit else "starttls",
                      "username": USER, "password_file": str(pw)},
        })
        send(srv, ["carol@far.test", "dave@elsewhere.test"])
        msgs = sink.wait(2)
        if not implicit:  # on the implicit port every byte is TLS; aiosmtpd flags STARTTLS only
            assert all(m["tls"] for m in msgs)
        assert {r for m in msgs for r in m["rcpt_tos"]} == {"carol@far.test", "dave@elsewhere.test"}
        assert sink.auth_attempts and all(ok for _, ok in sink.auth_attempts)
        srv.wait_queue_empty()
        assert PASSWORD not in srv.log()
    finally:
        sink.stop()


def test_smarthost_with_a_wrong_password_defers_and_keeps_the_message(make_server, cert, tmp_path):
    port = free_port()
    sink = TlsSink("127.0.0.4", port, cert, auth=True)
    try:
        pw = tmp_path / "relay.pass"
        pw.write_text("wrong-password\n")
        srv = make_server({
            "relay_networks": ["127.0.0.0/8"],
            "queue": {"retry_initial_s": 3600, "retry_max_s": 3600},
            "relay": {"smarthost": f"127.0.0.4:{port}", "username": USER, "password_file": str(pw)},
        })
        send(srv, ["carol@far.test"])
        d = wait_log(srv, "delivery", status="deferred", timeout=40)[0]
        assert d["detail"].strip('"').startswith("4")
        assert sink.messages == []
        assert srv.queue_files()
        assert not srv.log_events("dsn"), "an AUTH failure is ours to fix: no bounce"
        assert "wrong-password" not in srv.log()
    finally:
        sink.stop()
