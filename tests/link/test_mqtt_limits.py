"""The lock takes no MQTT packet over `LINK_LOCK_MAX_PACKET_BYTES`: it names the limit in its CONNECT (a real
Mosquitto then drops larger messages for it) and, against a broker sending one anyway, drops the connection
before the packet's body is read (paho-mqtt buffers any packet whole: review, a 200 MB PUBLISH took a lock
process from 85 to 687 MB), audits it, and reconnects."""

from __future__ import annotations

import json
import queue
import resource
import socket
import ssl
import struct
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from limen import thresholds as T
from limen.audit.event import EventKind
from limen.link import pki
from limen.link.commands import Action, max_wire_bytes
from limen.link.mqtt import LockLink, MqttLink, Topics, _BoundedClient

from .broker import CLOUD_ID, Broker, start_broker
from .conftest import LOCK_ID, LockRig

BIG = 200 << 20  # the declared size of the hostile packet (MQTT allows up to 256 MB - 1)


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


# ------------------------------------------------------------------ the hook inside paho (pins its internals)

class FeedSocket:
    """Stands in for paho's socket: hands out `data`, records every read size; then 'no data yet'."""

    def __init__(self, data: bytes) -> None:
        self.data, self.reads = data, []  # type: ignore[var-annotated]

    def close(self) -> None:
        pass

    def recv(self, n: int) -> bytes:
        self.reads.append(n)
        if not self.data:
            raise BlockingIOError
        out, self.data = self.data[:n], self.data[n:]
        return out


def bounded(limit: int) -> _BoundedClient:
    client = _BoundedClient(CallbackAPIVersion.VERSION2, client_id="pin", protocol=MQTTProtocolVersion.MQTTv5)
    client.max_packet_bytes = limit
    return client


def test_paho_reads_the_header_through_the_hook_before_the_body() -> None:
    """Fails if a paho-mqtt upgrade moves the hook: `_packet_read` must read the fixed header byte by byte through
    `_sock_recv`, with `_in_packet` telling the declared length before the first body read."""
    assert callable(getattr(paho.Client, "_sock_recv", None)) and callable(getattr(paho.Client, "_packet_read", None))
    assert {"have_remaining", "remaining_count", "remaining_length"} <= set(bounded(0)._in_packet)

    client = bounded(1000)
    sock = FeedSocket(b"\x30" + varint(BIG) + b"A" * 64)
    client._sock = sock  # type: ignore[assignment]
    assert client._packet_read() == MQTTErrorCode.MQTT_ERR_CONN_LOST
    assert sock.reads == [1] * 5  # the command byte and four length bytes: not one byte of the body
    assert client.oversized == 1 + 4 + BIG and client._in_packet["packet"] == b""

    at_limit = bounded(1000)  # a packet of exactly the limit (1 + 2 + 997 bytes) is read
    sock = FeedSocket(b"\x30" + varint(997) + b"A" * 64)
    at_limit._sock = sock  # type: ignore[assignment]
    assert at_limit._packet_read() == MQTTErrorCode.MQTT_ERR_AGAIN  # read on: the rest of its body is to come
    assert sock.reads[:4] == [1, 1, 1, 997] and at_limit.oversized is None
    assert len(at_limit._in_packet["packet"]) == 64


def test_the_lock_limit_takes_the_largest_restore_and_stays_under_the_fleet_broker_s() -> None:
    topic = len(Topics("l" * 64).cmd)
    largest = 1 + 4 + 2 + topic + 2 + 64 + max_wire_bytes(attachment=True)  # header, topic, id, properties, payload
    assert largest <= T.LINK_LOCK_MAX_PACKET_BYTES < T.LINK_MAX_BROKER_PACKET_BYTES


# ------------------------------------------------------------------ a hostile broker (fake, TLS)

def read_packet(s: ssl.SSLSocket) -> tuple[int, bytes]:
    def exactly(n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("closed")
            buf += chunk
        return buf

    head = exactly(1)[0]
    mult, n = 1, 0
    while True:
        b = exactly(1)[0]
        n += (b & 127) * mult
        mult *= 128
        if not b & 128:
            break
    return head, exactly(n)


def publish_packet(topic: str, payload: bytes) -> bytes:
    var = len(topic).to_bytes(2, "big") + topic.encode() + b"\x00"  # QoS 0, no properties
    return b"\x30" + varint(len(var) + len(payload)) + var + payload


class HostileBroker:
    """Connection 1: after the lock subscribed, one PUBLISH declaring `BIG` bytes, streamed until the lock hangs
    up.  Later connections: `then` is delivered, and what the lock publishes is kept."""

    def __init__(self, tmp: Path, then: bytes) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "broker")])
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(1).not_valid_before(now.replace(year=now.year - 1))
                .not_valid_after(now.replace(year=now.year + 1)).sign(key, hashes.SHA256()))
        (tmp / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (tmp / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(tmp / "c.pem", tmp / "k.pem")
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.then = then
        self.connects: list[bytes] = []
        self.accepted = 0
        self.streamed = 0
        self.published: queue.Queue[tuple[str, bytes]] = queue.Queue()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._session, args=(raw, self.accepted), daemon=True).start()
            self.accepted += 1

    def _session(self, raw: socket.socket, number: int) -> None:
        try:
            with self.ctx.wrap_socket(raw, server_side=True) as s:
                _, connect = read_packet(s)
                self.connects.append(connect)
                s.sendall(b"\x20\x03\x00\x00\x00")  # CONNACK: success, no properties
                subscribed = 0
                while True:
                    kind, body = read_packet(s)
                    if kind == 0x82:  # SUBSCRIBE: granted QoS 1
                        s.sendall(b"\x90\x04" + body[:2] + b"\x00\x01")
                        subscribed += 1
                        if subscribed == 2:  # cmd and head
                            if number == 0:
                                self._flood(s)
                                return
                            s.sendall(self.then)
                    elif kind >> 4 == 3:  # the lock's PUBLISH (QoS 1): keep it, acknowledge it
                        size = int.from_bytes(body[:2], "big")
                        topic, rest = body[2:2 + size].decode(), body[2 + size:]
                        pid, props = rest[:2], rest[2]
                        self.published.put((topic, rest[3 + props:]))
                        s.sendall(b"\x40\x02" + pid)
                    elif kind == 0xC0:
                        s.sendall(b"\xd0\x00")
                    elif kind == 0xE0:
                        return
        except (OSError, ConnectionError):
            return

    def _flood(self, s: ssl.SSLSocket) -> None:
        topic = Topics(LOCK_ID).cmd.encode()
        var = len(topic).to_bytes(2, "big") + topic + b"\x00"
        s.sendall(b"\x30" + varint(len(var) + BIG) + var)
        chunk = b"A" * (1 << 20)
        self.streamed = len(var)
        while self.streamed < BIG:
            s.sendall(chunk)  # fails once the lock hung up
            self.streamed += len(chunk)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def hostile(tmp_path: Path, rig: LockRig) -> Iterator[HostileBroker]:
    rig.clock.at = datetime.now(UTC)  # the link stamps commands with the wall clock
    broker = HostileBroker(tmp_path, publish_packet(Topics(LOCK_ID).cmd, rig.signed(Action.UNLOCK)))
    yield broker
    broker.close()


def test_a_broker_s_oversized_packet_drops_the_connection_unread_and_the_lock_comes_back(
        hostile: HostileBroker, rig: LockRig) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    lock = LockLink(LOCK_ID, ctx, "127.0.0.1", hostile.port, rig.link)
    try:
        lock.connect(timeout=5)
        deadline = time.monotonic() + 20
        while lock.mqtt.connected:
            assert time.monotonic() < deadline, "the lock kept reading the oversized packet"
            time.sleep(0.02)
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak) / 1024
        assert grown_mb < 32, f"peak RSS grew {grown_mb:.0f} MB"
        assert hostile.streamed < 32 << 20  # the lock hung up long before the declared 200 MB
        limit = struct.pack("!BI", 0x27, T.LINK_LOCK_MAX_PACKET_BYTES)  # Maximum Packet Size in its CONNECT
        assert limit in hostile.connects[0]
        deadline = time.monotonic() + 5
        while not [e for e in rig.sink.events if e.kind is EventKind.REMOTE_COMMAND]:
            assert time.monotonic() < deadline, "the drop was not audited"
            time.sleep(0.02)
        (dropped,) = [e for e in rig.sink.events if e.kind is EventKind.REMOTE_COMMAND]
        assert (dropped.outcome, dropped.reason) == ("refused", "oversized")
        assert dropped.data["bytes"] > BIG and dropped.data["limit"] == T.LINK_LOCK_MAX_PACKET_BYTES

        lock.mqtt.maintain()  # what the link loop does at its next pass: reconnect
        topic, result = hostile.published.get(timeout=10)
        outcome = json.loads(result)
        assert topic == Topics(LOCK_ID).result and outcome["executed"] and outcome["reason"] == "granted"
    finally:
        lock.close()
    rig.settle()
    assert not rig.door.is_locked


# ------------------------------------------------------------------ an honest broker (real Mosquitto)

@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from start_broker(tmp_path_factory.mktemp("broker"))


def test_mosquitto_drops_for_the_lock_what_is_over_its_limit_and_delivers_a_restore(broker: Broker) -> None:
    got: queue.Queue[int] = queue.Queue()
    lock = MqttLink(LOCK_ID, pki.client_context(broker.ca_file, *broker.client(LOCK_ID)), broker.host, broker.port,
                    subscriptions=(Topics(LOCK_ID).cmd,), on_message=lambda t, p: got.put(len(p)),
                    max_packet_bytes=T.LINK_LOCK_MAX_PACKET_BYTES).connect(timeout=5)
    cloud = MqttLink(CLOUD_ID, pki.client_context(broker.ca_file, *broker.client(CLOUD_ID)), broker.host,
                     broker.port).connect(timeout=5)
    try:
        time.sleep(0.2)  # the subscription in place
        restore = max_wire_bytes(attachment=True)
        for size in (restore, T.LINK_LOCK_MAX_PACKET_BYTES + 1, 10):  # the middle one the broker itself takes
            cloud.publish(Topics(LOCK_ID).cmd, b"x" * size, timeout=20)
        assert [got.get(timeout=20), got.get(timeout=20)] == [restore, 10]
        assert lock.connected
    finally:
        cloud.close()
        lock.close()
