"""The link over a real Mosquitto: TLS 1.3 + mutual X.509 only, and a signed command cloud → lock → door."""

from __future__ import annotations

import json
import queue
import ssl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from limen.errors import LinkError
from limen.link import pki
from limen.link.commands import Action
from limen.link.mqtt import LockLink, MqttLink, Topics, alert_reason

from .broker import CLOUD_ID, Broker, expired_window, start_broker
from .conftest import LOCK_ID, LockRig


@pytest.fixture  # one per test: persistent MQTT sessions must not carry a message into the next test
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from start_broker(tmp_path_factory.mktemp("broker"))


def connect(broker: Broker, name: str, context: ssl.SSLContext, **kw: object) -> MqttLink:
    return MqttLink(name, context, broker.host, broker.port, **kw).connect(timeout=5)  # type: ignore[arg-type]


def test_a_provisioned_lock_connects_with_tls_1_3(broker: Broker) -> None:
    """(No resumption on a reconnection, new keys after `LINK_MAX_CONNECTION_S`: test_tls_sessions.py.)"""
    cert, key = broker.client("lock-ok")
    link = connect(broker, "lock-ok", pki.client_context(broker.ca_file, cert, key))
    try:
        sock = link.client.socket()
        assert isinstance(sock, ssl.SSLSocket) and sock.version() == "TLSv1.3"
    finally:
        link.close()


def test_tls_1_2_is_refused(broker: Broker) -> None:
    cert, key = broker.client("lock-tls12")
    ctx = pki.client_context(broker.ca_file, cert, key)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(LinkError):
        connect(broker, "lock-tls12", ctx)


def test_a_certificate_from_another_ca_is_refused(broker: Broker) -> None:
    rogue = pki.FleetCA.create("rogue CA", broker.ca.cert.not_valid_before_utc)
    cert, key = broker.client("lock-rogue", ca=rogue)
    with pytest.raises(LinkError, match="refused the TLS connection: unknown CA"):
        connect(broker, "lock-rogue", pki.client_context(broker.ca_file, cert, key))


def test_a_broker_outside_the_fleet_ca_is_refused_by_the_lock(broker: Broker, tmp_path: Path) -> None:
    cert, key = broker.client("lock-wrong-anchor")
    other = tmp_path / "other-ca.pem"
    other.write_bytes(pki.pem(pki.FleetCA.create("other", broker.ca.cert.not_valid_before_utc).cert))
    with pytest.raises(LinkError):
        connect(broker, "lock-wrong-anchor", pki.client_context(other, cert, key))


def test_an_expired_certificate_is_refused(broker: Broker) -> None:
    start, days = expired_window()
    cert, key = broker.client("lock-expired", days=days, not_before=start)
    with pytest.raises(LinkError, match="refused the TLS connection: certificate expired"):
        connect(broker, "lock-expired", pki.client_context(broker.ca_file, cert, key))


def test_a_revoked_certificate_is_refused(broker: Broker) -> None:
    """The error names the broker's reason (paho tells its TLS alert only to its log; lost with the connection's
    reset, a bare handshake reads it): the owner learns the lock needs a new certificate, not "Unspecified error"."""
    ctx = pki.client_context(broker.ca_file, broker.dir / "revoked-lock.pem", broker.dir / "revoked-lock.key")
    with pytest.raises(LinkError, match="refused the TLS connection: certificate revoked"):
        connect(broker, "revoked-lock", ctx)


def test_a_client_without_a_certificate_is_refused(broker: Broker) -> None:
    with pytest.raises(LinkError, match="refused the TLS connection: no client certificate"):
        connect(broker, "anonymous", pki.client_context(broker.ca_file, None, None))


def test_a_signed_command_travels_cloud_to_lock_to_door(broker: Broker, rig: LockRig) -> None:
    cert, key = broker.client(LOCK_ID)
    lock = LockLink(LOCK_ID, pki.client_context(broker.ca_file, cert, key), broker.host, broker.port,
                    rig.link).connect(timeout=5)
    results: queue.Queue[bytes] = queue.Queue()
    ccert, ckey = broker.client(CLOUD_ID)
    cloud = connect(broker, CLOUD_ID, pki.client_context(broker.ca_file, ccert, ckey),
                    subscriptions=(Topics(LOCK_ID).result,), on_message=lambda t, p: results.put(p))
    rig.clock.at = rig.clock.at.now(rig.clock.at.tzinfo)  # the link stamps commands with the wall clock
    try:
        time.sleep(0.2)  # both subscriptions in place
        for payload in (rig.signed(Action.UNLOCK, key=None, device="phone"), rig.signed(Action.UNLOCK, device="x")):
            cloud.publish(Topics(LOCK_ID).cmd, payload)
        first, second = (json.loads(results.get(timeout=10)) for _ in range(2))
    finally:
        cloud.close()
        lock.close()
    rig.settle()
    assert first["executed"] and first["reason"] == "granted"
    assert not second["executed"] and second["reason"] == "unknown_device"
    assert not rig.door.is_locked


def test_a_command_sent_during_a_short_drop_out_arrives_on_reconnect(broker: Broker, rig: LockRig) -> None:
    cert, key = broker.client("lock-dropout")
    rig.verifier.lock_id = "lock-dropout"
    LockLink("lock-dropout", pki.client_context(broker.ca_file, cert, key), broker.host, broker.port,
             rig.link).connect(timeout=5).close()  # the session stays at the broker
    ccert, ckey = broker.client(CLOUD_ID)
    results: queue.Queue[bytes] = queue.Queue()
    cloud = connect(broker, CLOUD_ID, pki.client_context(broker.ca_file, ccert, ckey),
                    subscriptions=(Topics("lock-dropout").result,), on_message=lambda t, p: results.put(p))
    rig.clock.at = rig.clock.at.now(rig.clock.at.tzinfo)
    try:
        time.sleep(0.2)
        cloud.publish(Topics("lock-dropout").cmd, rig.signed(Action.LOCK, lock="lock-dropout"))
        lock = LockLink("lock-dropout", pki.client_context(broker.ca_file, cert, key), broker.host, broker.port,
                        rig.link).connect(timeout=5)
        try:
            outcome = json.loads(results.get(timeout=10))
        finally:
            lock.close()
    finally:
        cloud.close()
    assert outcome["executed"] and outcome["action"] == "lock"


def test_the_fleet_broker_drops_a_packet_over_its_limit_and_takes_a_restore_sized_one(broker: Broker) -> None:
    """`max_packet_size` from `limen-cloud broker-config`: a lock cannot flood the broker with one huge message,
    and the largest restore (a backup of LINK_MAX_BACKUP_BYTES in base64) still fits."""
    from limen import thresholds as T

    cert, key = broker.client("lock-big")
    link = connect(broker, "lock-big", pki.client_context(broker.ca_file, cert, key))
    try:
        link.publish("limen/lock-big/backup", b"x" * (T.LINK_MAX_BACKUP_BYTES * 4 // 3 + 4096), timeout=20)
        with pytest.raises(LinkError):
            link.publish("limen/lock-big/backup", b"x" * (T.LINK_MAX_BROKER_PACKET_BYTES + 1), timeout=3)
    finally:
        link.close()


def test_only_the_alerts_name_is_taken_from_pahos_log_lines() -> None:
    """paho's lines also name client ids and topics: nothing but the alert's reason is kept."""
    assert alert_reason("failed to receive on socket: [SSL: SSLV3_ALERT_CERTIFICATE_REVOKED] sslv3 alert certificate "
                        "revoked (_ssl.c:2580)") == "certificate revoked"
    assert alert_reason("[SSL: TLSV1_ALERT_DECRYPT_ERROR] tlsv1 alert decrypt error") == "TLS alert decrypt error"
    assert alert_reason("Sending CONNECT (u0, p0) client_id=b'front-door'") is None
