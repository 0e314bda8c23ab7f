"""The cloud names its MQTT 5 Receive Maximum: a burst is handed over at once, not 20 messages a commit.

The bridge acknowledges a message only after the pass that took it committed; Mosquitto hands a client that
names no Receive Maximum at most its `max_inflight_messages` (20) unacknowledged messages, so before this a
1,000-alarm burst reached the cloud in 50 rounds of pass → commit → acknowledgement (docs/cloud.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from limen import thresholds as T
from limen.link import pki
from limen.link.mqtt import Delivery, MqttLink
from limen_cloud.bridge import CloudBridge
from tests.link.broker import CLOUD_ID, Broker, start_broker

BURST = 120  # more than Mosquitto's default window (20), fewer than the cloud's


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from start_broker(tmp_path_factory.mktemp("broker"))


def _unacknowledged_after_burst(broker: Broker, receive_maximum: int) -> int:
    """Messages a persistent, never-acknowledging subscriber holds after a lock published `BURST` of them."""
    got: list[int] = []
    guard = threading.Lock()

    def hold(delivery: Delivery) -> None:  # never acknowledged, as while the bridge's pass is still running
        with guard:
            got.append(delivery.mid)

    cloud = MqttLink(CLOUD_ID, pki.client_context(broker.ca_file, *broker.client(CLOUD_ID)), broker.host,
                     broker.port, subscriptions=("limen/+/events",), session_expiry_s=60, on_delivery=hold,
                     receive_maximum=receive_maximum).connect(timeout=5)
    lock = MqttLink("lock-1", pki.client_context(broker.ca_file, *broker.client("lock-1")), broker.host,
                    broker.port).connect(timeout=5)
    try:
        for k in range(BURST):
            lock.publish("limen/lock-1/events", b'{"n": %d}' % k)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(got) < BURST:
            time.sleep(0.05)
        time.sleep(0.3)  # anything more the broker would hand over arrives now
        return len(got)
    finally:
        lock.close()
        cloud.close()


def test_a_burst_is_handed_over_unacknowledged_up_to_the_receive_maximum(broker: Broker) -> None:
    assert _unacknowledged_after_burst(broker, receive_maximum=T.CLOUD_RECEIVE_MAXIMUM) == BURST


def test_without_one_mosquitto_hands_over_twenty(broker: Broker) -> None:
    # why the bridge names one: the broker's default window, one commit per 20 messages
    assert _unacknowledged_after_burst(broker, receive_maximum=0) == 20


def test_the_bridge_names_its_receive_maximum_on_every_connection(broker: Broker, engine: Engine) -> None:
    bridge = CloudBridge(engine, pki.client_context(broker.ca_file, *broker.client(CLOUD_ID)), broker.host,
                         broker.port, connections=2)
    assert [link.receive_maximum for link in bridge.links] == [T.CLOUD_RECEIVE_MAXIMUM] * 2
    assert T.CLOUD_RECEIVE_MAXIMUM > 20
