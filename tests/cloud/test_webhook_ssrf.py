"""The community webhook cannot be used to reach the cloud's own machine or its private networks (SSRF)."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any

import pytest

from limen_cloud import notify
from limen_cloud.notify import NOT_REACHED, destination_allowed, parse_allow, post_webhook
from tests.audit.conftest import Receiver

SECRET = "11" * 32


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                                     "100.64.0.1", "0.0.0.0", "224.0.0.1", "::1", "fe80::1", "fc00::1",
                                     "::ffff:127.0.0.1", "::ffff:10.0.0.1", "not an address"])
def test_non_public_destinations_are_refused(address: str) -> None:
    assert not destination_allowed(address)


def test_public_destinations_and_the_operators_allow_list() -> None:
    assert destination_allowed("93.184.216.34") and destination_allowed("2606:2800:220:1::1")
    allow = parse_allow(["10.0.0.0/8", "::1/128"])
    assert destination_allowed("10.9.8.7", allow) and destination_allowed("::1", allow)
    assert not destination_allowed("192.168.1.1", allow)
    with pytest.raises(ValueError, match="CIDR"):
        parse_allow(["10.0.0.0/33"])


def test_a_loopback_receiver_is_not_posted_to_unless_allow_listed(receiver: Receiver) -> None:
    url = f"http://127.0.0.1:{receiver.port}/hook"
    assert post_webhook(url, SECRET, b"{}") == NOT_REACHED
    assert post_webhook(f"http://localhost:{receiver.port}/hook", SECRET, b"{}") == NOT_REACHED
    assert receiver.received == []
    assert post_webhook(url, SECRET, b"{}", parse_allow(["127.0.0.0/8"])) is None
    assert receiver.wait_for(1) and len(receiver.received) == 1


def test_refused_closed_and_silent_destinations_answer_alike() -> None:
    with socket.socket() as s:  # a port nothing listens on, on an allow-listed loopback
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    refused = post_webhook(f"http://10.0.0.1:{closed}/", SECRET, b"{}")
    unreachable = post_webhook(f"http://127.0.0.1:{closed}/", SECRET, b"{}", parse_allow(["127.0.0.0/8"]))
    assert refused == unreachable == NOT_REACHED


def test_the_name_is_resolved_once_and_the_checked_address_is_used(receiver: Receiver,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = socket.getaddrinfo

    def fake(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        calls.append(host)
        if host == "hook.example":  # a name that (here) resolves to the allow-listed loopback, once
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(notify.socket, "getaddrinfo", fake)
    assert post_webhook(f"http://hook.example:{receiver.port}/hook?x=1", SECRET, b"{}",
                        parse_allow(["127.0.0.0/8"])) is None
    assert calls[0] == "hook.example" and set(calls[1:]) <= {"127.0.0.1"}  # then only the checked address
    assert receiver.wait_for(1) and receiver.received[-1]["headers"]["Host"] == f"hook.example:{receiver.port}"


def test_apprise_channels_naming_an_internal_server_are_refused() -> None:
    from limen_cloud.notify import channel_destination_allowed

    for url in ("json://127.0.0.1:8090/", "jsons://localhost/x", "ntfy://10.0.0.2/topic", "xml://[::1]/",
                "mailto://user:pw@192.168.0.10?to=a@b.org"):
        assert not channel_destination_allowed(url), url
    assert channel_destination_allowed("json://127.0.0.1:8090/", parse_allow(["127.0.0.0/8"]))
    assert channel_destination_allowed("json://93.184.216.34/hook")
    assert channel_destination_allowed("tgram://123456789:abcdefg/12345")  # a fixed public service: not a host


def test_https_goes_to_the_checked_address_and_verifies_the_name(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from limen.link import pki

    ca = pki.FleetCA.create("test web CA", datetime.now(UTC))
    (tmp_path / "ca.pem").write_bytes(pki.pem(ca.cert))
    key, cert = ca.issue_server("hook.example", datetime.now(UTC))
    (tmp_path / "s.key").write_bytes(pki.key_pem(key))
    (tmp_path / "s.pem").write_bytes(pki.pem(cert))
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            hits.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(tmp_path / "s.pem", tmp_path / "s.key")
    server.socket = served.wrap_socket(server.socket, server_side=True)
    Thread(target=server.serve_forever, daemon=True).start()
    real = socket.getaddrinfo
    monkeypatch.setattr(notify.socket, "getaddrinfo", lambda host, port, *a, **k: real(
        "127.0.0.1" if host in ("hook.example", "other.example") else host, port, *a, **k))
    trust = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
    local = parse_allow(["127.0.0.0/8"])
    port = server.server_address[1]
    try:
        assert post_webhook(f"https://hook.example:{port}/h", SECRET, b"{}", local, trust) is None
        assert hits == [f"hook.example:{port}"]
        # the certificate names hook.example, not other.example: refused like any failure
        assert post_webhook(f"https://other.example:{port}/h", SECRET, b"{}", local, trust) == NOT_REACHED
        assert post_webhook(f"https://hook.example:{port}/h", SECRET, b"{}", local) == NOT_REACHED  # system CAs
        assert len(hits) == 1
    finally:
        server.shutdown()
        server.server_close()
