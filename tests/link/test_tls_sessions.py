"""Every connection of the link is a fresh TLS 1.3 handshake (real Mosquitto): no session is resumed, and a
connection older than `LINK_MAX_CONNECTION_S` is replaced by a new one with new keys.

The broker (Mosquitto on OpenSSL) sends TLS 1.3 session tickets (2-hour lifetime) whatever the client says:
`OP_NO_TICKET` on a client context does not stop OpenSSL from taking them.  What keeps every connection's keys its
own is that the link never offers a ticket: paho opens each connection from the context alone, with no session.
"""

from __future__ import annotations

import re
import socket
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from limen import thresholds as T
from limen.link import pki
from limen.link.mqtt import MqttLink
from limen_cloud.cli import push_crl

from .broker import Broker, launch, prepare, start_broker


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from start_broker(tmp_path_factory.mktemp("broker"))


def _ticket(context: ssl.SSLContext, broker: Broker) -> ssl.SSLSession:
    """A TLS 1.3 session ticket from the broker (they come after the handshake), as a client that keeps one would."""
    raw = context.wrap_socket(socket.create_connection((broker.host, broker.port)), server_hostname=broker.host)
    raw.setblocking(False)
    deadline = time.monotonic() + 5
    while (raw.session is None or not raw.session.has_ticket) and time.monotonic() < deadline:
        try:
            raw.recv(1)
        except (ssl.SSLWantReadError, BlockingIOError):
            time.sleep(0.05)
    ticket = raw.session
    raw.close()
    assert ticket is not None and ticket.has_ticket
    return ticket


def _mqtt_session(context: ssl.SSLContext, broker: Broker, session: ssl.SSLSession | None = None) -> bool:
    """Whether the broker answers an MQTT 3.1.1 CONNECT with CONNACK accepted over a TLS connection."""
    try:
        with context.wrap_socket(socket.create_connection((broker.host, broker.port), timeout=5),
                                 server_hostname=broker.host, session=session) as sock:
            sock.sendall(b"\x10\x12\x00\x04MQTT\x04\x02\x00\x3c\x00\x06lock-t")
            return sock.recv(4) == b"\x20\x02\x00\x00"
    except (OSError, ssl.SSLError):
        return False


def _secrets(keylog: Path) -> dict[str, str]:
    """client random → client application traffic secret, one per handshake (NSS key log format)."""
    found = re.findall(r"^CLIENT_TRAFFIC_SECRET_0 ([0-9a-f]+) ([0-9a-f]+)$", keylog.read_text(), re.MULTILINE)
    return dict(found)


def test_the_broker_issues_tickets_but_a_second_connection_from_the_same_context_resumes_nothing(
        broker: Broker) -> None:
    cert, key = broker.client("lock-twice")
    context = pki.client_context(broker.ca_file, cert, key)
    link = MqttLink("lock-twice", context, broker.host, broker.port)
    try:
        for _ in range(2):  # the same client context twice, as a lock reconnects
            link.connect(timeout=5)
            sock = link.client.socket()
            assert isinstance(sock, ssl.SSLSocket) and sock.version() == "TLSv1.3"
            assert not sock.session_reused
            link.close()
    finally:
        link.close()
    # the ticket is there to be had: a client that offers it is resumed (what the link never does)
    ticket = _ticket(context, broker)
    again = context.wrap_socket(socket.create_connection((broker.host, broker.port)), server_hostname=broker.host,
                                session=ticket)
    try:
        assert again.session_reused
    finally:
        again.close()


def test_maintain_after_the_longest_connection_makes_a_new_handshake_with_new_keys(
        broker: Broker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = broker.client("lock-renew")
    context = pki.client_context(broker.ca_file, cert, key)
    keylog = tmp_path / "keys.log"
    context.keylog_filename = str(keylog)  # the test reads each handshake's secrets
    monkeypatch.setattr(T, "LINK_MAX_CONNECTION_S", 0.5)
    link = MqttLink("lock-renew", context, broker.host, broker.port).connect(timeout=5)
    try:
        first = link.client.socket()
        link.maintain()  # younger than the limit: kept
        assert link.client.socket() is first and len(_secrets(keylog)) == 1
        time.sleep(0.6)
        link.maintain()
        second = link.client.socket()
        assert link.connected and second is not first
        assert isinstance(second, ssl.SSLSocket) and not second.session_reused
        secrets = _secrets(keylog)
        assert len(secrets) == 2 and len(set(secrets.values())) == 2  # two handshakes, two client randoms, new keys
    finally:
        link.close()


def test_a_ticket_kept_from_before_a_revocation_does_not_let_the_certificate_back_in(tmp_path: Path) -> None:
    (tmp_path / "broker").mkdir()
    broker = prepare(tmp_path / "broker")
    proc = launch(broker)
    try:
        cert, key = broker.client("lock-t")
        context = pki.client_context(broker.ca_file, cert, key)
        ticket = _ticket(context, broker)  # what a thief holding the key would keep
        assert _mqtt_session(context, broker, ticket)  # (resumable while the certificate is good)
        broker.ca.revoke(broker.cert("lock-t"), datetime.now(UTC))
        pid = tmp_path / "mosquitto.pid"
        pid.write_text(str(proc.pid))
        push_crl(broker.ca.crl(datetime.now(UTC)), broker.dir / "crl.pem", pid)
        deadline = time.monotonic() + 30
        while _mqtt_session(context, broker) and time.monotonic() < deadline:  # Mosquitto reloads in its own time
            time.sleep(0.1)
        assert not _mqtt_session(context, broker)
        assert not _mqtt_session(context, broker, ticket)  # the reload made new ticket keys: a full handshake, refused
    finally:
        proc.terminate()
        proc.wait(10)
