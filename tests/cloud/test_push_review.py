"""Review findings on the egress guard: a push endpoint cannot reach an internal address through an environment
proxy (the proxy resolves the name, so the guard saw only the proxy), nor through IPv6 forms that embed an
internal IPv4 address (6to4, NAT64, IPv4-compatible) or the deprecated site-local block."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from limen_cloud import notify
from limen_cloud.notify import NOT_REACHED, destination_allowed, load_or_create_vapid, parse_allow, send_push

INTERNAL_NAME = "push.internal.test"


class Proxy:
    """A TCP listener that records what an HTTP proxy client asks it (a CONNECT line), then closes."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port, self.asked = self.sock.getsockname()[1], []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    self.asked.append(conn.recv(1024).split(b"\r\n")[0].decode())

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def proxy() -> Iterator[Proxy]:
    p = Proxy()
    yield p
    p.close()


def test_an_environment_proxy_does_not_carry_a_push_to_an_internal_name(
        proxy: Proxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = notify._resolve

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:  # the name is internal
        return real("10.0.0.7" if host == INTERNAL_NAME else host, port, *args, **kwargs)

    monkeypatch.setattr(notify, "_resolve", resolve)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    info = {"endpoint": f"https://{INTERNAL_NAME}/push/abc", "keys": {
        "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
        "auth": "tBHItJI5svbpez7KI4CCXg"}}
    vapid = load_or_create_vapid(tmp_path / "vapid.key")
    error = send_push(info, b"{}", vapid, "mailto:ops@example.org", parse_allow(["127.0.0.1/32"]))
    assert error == NOT_REACHED
    assert proxy.asked == []  # nothing asked the proxy to connect to the internal name


@pytest.mark.parametrize("address", [
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a00:7::1",  # 6to4 of 10.0.0.7
    "::7f00:1",  # IPv4-compatible 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (cloud metadata)
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "fec0::1",  # site-local (deprecated, still routed on some networks)
])
def test_ipv6_forms_of_internal_addresses_are_refused(address: str) -> None:
    assert not destination_allowed(address)


def test_public_addresses_in_those_forms_stay_allowed() -> None:
    assert destination_allowed("64:ff9b::5db8:d822")  # NAT64 of 93.184.216.34
    assert destination_allowed("2a00:1450:4001:82b::200e")
    assert destination_allowed("93.184.216.34")


def test_a_datagram_channel_given_a_name_cannot_reach_an_internal_address() -> None:
    """apprise's rsyslog:// sends with sock.sendto((name, port)): the name resolves in C, past the guard's
    getaddrinfo; the save-time check does not know the scheme either."""
    from limen.audit.channels import AppriseChannel, DeliveryFailed
    from limen_cloud.notify import egress_guard

    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    server.settimeout(1)
    port = server.getsockname()[1]
    try:
        with egress_guard(()), pytest.raises(DeliveryFailed):
            AppriseChannel(f"rsyslog://localhost:{port}").send(
                {"severity": "critical", "rule": "x", "reason": "r", "device_id": "d", "alarm_id": 1, "at": "t"})
        with pytest.raises(TimeoutError):
            server.recvfrom(4096)  # nothing reached the internal listener
        with egress_guard(parse_allow(["127.0.0.1/32"])):  # control: an allow-listed literal is reached
            AppriseChannel(f"rsyslog://127.0.0.1:{port}").send(
                {"severity": "critical", "rule": "x", "reason": "r", "device_id": "d", "alarm_id": 1, "at": "t"})
        assert server.recvfrom(4096)[0]
    finally:
        server.close()
