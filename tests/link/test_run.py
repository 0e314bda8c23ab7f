"""`limen link run` as a process: provisioned by the CLI, it takes a signed command and forwards its audit trail."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from limen.link import pki
from limen.link.commands import Action, Command, sign
from limen.link.mqtt import MqttLink, Topics
from tests.cli.test_access_cli import OWNER_PIN, limen

from .broker import CLOUD_ID, Broker, start_broker

LOCK = "limen-lock"  # the default device id, the CN of the lock's certificate


@pytest.fixture  # one per test: persistent MQTT sessions must not carry a message into the next test
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from start_broker(tmp_path_factory.mktemp("broker"))


def provision(d: Path, tmp: Path, broker: Broker, phone: Ed25519PrivateKey) -> None:
    assert limen(d, "users", "add", "Olga", new_pin=OWNER_PIN).exit_code == 0
    assert limen(d, "access", "set", "--as", "Olga", "require_pin_for_remote=false").exit_code == 0
    pub = tmp / "phone.pub"
    pub.write_bytes(phone.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    assert limen(d, "link", "pair-device", "olga-phone", "--public-key", str(pub), "--as", "Olga").exit_code == 0
    assert limen(d, "link", "csr", "--out", str(tmp / "lock.csr")).exit_code == 0
    (tmp / "lock.pem").write_bytes(pki.pem(broker.ca.issue((tmp / "lock.csr").read_bytes(), datetime.now(UTC))))
    installed = limen(d, "link", "install-cert", str(tmp / "lock.pem"), "--ca", str(broker.ca_file))
    assert installed.exit_code == 0, installed.output


def test_link_run_takes_commands_and_forwards_evidence(broker: Broker, tmp_path: Path) -> None:
    d = tmp_path / "data"
    phone = Ed25519PrivateKey.generate()
    provision(d, tmp_path, broker, phone)
    received: queue.Queue[tuple[str, bytes]] = queue.Queue()
    cloud = MqttLink(CLOUD_ID, pki.client_context(broker.ca_file, *broker.client(CLOUD_ID)), broker.host,
                     broker.port, subscriptions=(Topics(LOCK).result, Topics(LOCK).events, f"limen/{LOCK}/ha/#"),
                     on_message=lambda t, p: received.put((t, p))).connect(timeout=5)
    env = {**os.environ, "LIMEN_DATA_DIR": str(d), "LIMEN_LINK_BROKER": f"{broker.host}:{broker.port}",
           "LIMEN_LINK_CLOUD_MAY_LOCK": "true"}  # Home Assistant's LOCK below runs only where unsigned locks may
    proc = subprocess.Popen([sys.executable, "-m", "limen", "link", "run", "--homeassistant"], env=env,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        started: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: started.put(proc.stdout.readline() if proc.stdout else ""),
                         daemon=True).start()
        assert "link up" in started.get(timeout=120)
        cmd = Command(LOCK, Action.UNLOCK, 1, datetime.now(UTC) + timedelta(seconds=120), "olga-phone")
        cloud.publish(Topics(LOCK).cmd, sign(cmd, phone).to_bytes())
        result, kinds, states = None, set(), []

        def take() -> None:
            nonlocal result, kinds
            topic, payload = received.get(timeout=60)
            if topic == f"limen/{LOCK}/ha/state":
                states.append(payload.decode())
            elif topic == Topics(LOCK).result:
                result = json.loads(payload)
            elif topic == Topics(LOCK).events:
                kinds |= {r["kind"] for r in json.loads(payload)["records"]}

        while result is None or "unlock_attempt" not in kinds or "UNLOCKED" not in states:
            take()
        assert result["executed"] and result["reason"] == "granted"
        cloud.publish(f"limen/{LOCK}/ha/set", b"LOCK")  # Home Assistant locks it again
        while states[-1] != "LOCKED":
            take()
    finally:
        cloud.close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
