"""A fault inside the lock while it runs a command: refused and audited, the link stays up (real Mosquitto)."""

from __future__ import annotations

import json
import queue
import time
from collections.abc import Iterator

import pytest

from limen.audit.event import EventKind
from limen.link import pki
from limen.link.commands import Action
from limen.link.mqtt import LockLink, MqttLink, Topics

from .broker import CLOUD_ID, Broker, start_broker
from .conftest import LOCK_ID, LockRig


@pytest.fixture  # one per test: persistent MQTT sessions must not carry a message into the next test
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from start_broker(tmp_path_factory.mktemp("broker"))


def test_an_exception_while_running_a_command_is_refused_audited_and_the_link_lives(
        broker: Broker, rig: LockRig, monkeypatch: pytest.MonkeyPatch) -> None:
    def jammed_driver() -> None:
        raise RuntimeError("motor driver not answering")

    monkeypatch.setattr(rig.controller, "lock", jammed_driver)  # not a LimenError: it used to escape into paho
    cert, key = broker.client(LOCK_ID)
    lock = LockLink(LOCK_ID, pki.client_context(broker.ca_file, cert, key), broker.host, broker.port,
                    rig.link).connect(timeout=5)
    results: queue.Queue[bytes] = queue.Queue()
    ccert, ckey = broker.client(CLOUD_ID)
    cloud = MqttLink(CLOUD_ID, pki.client_context(broker.ca_file, ccert, ckey), broker.host, broker.port,
                     subscriptions=(Topics(LOCK_ID).result,), on_message=lambda t, p: results.put(p)).connect(5)
    rig.clock.at = rig.clock.at.now(rig.clock.at.tzinfo)  # the link stamps commands with the wall clock
    try:
        time.sleep(0.2)
        cloud.publish(Topics(LOCK_ID).cmd, rig.signed(Action.LOCK))
        failed = json.loads(results.get(timeout=10))
        cloud.publish(Topics(LOCK_ID).cmd, rig.signed(Action.UNLOCK))  # the same connection still serves
        opened = json.loads(results.get(timeout=10))
        assert lock.mqtt.connected
    finally:
        cloud.close()
        lock.close()
    assert failed == {"executed": False, "action": None, "reason": "internal_error", "counter": None,
                      "device": None, "data": {}}
    refusals = [e for e in rig.sink.events if e.kind is EventKind.REMOTE_COMMAND and e.reason == "internal_error"]
    assert len(refusals) == 1 and refusals[0].outcome == "refused" and refusals[0].data["error"] == "RuntimeError"
    assert "motor driver" not in json.dumps(failed)  # the fault's text stays on the lock
    assert opened["executed"] and opened["reason"] == "granted"
