"""Delivery: apprise to a local receiver, the signed webhook, the siren, retries, restarts."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from gpiozero.pins.mock import MockFactory

from limen.audit import Dispatcher, Event, EventKind, open_audit, open_dispatcher, raise_alarm
from limen.audit.channels import DeliveryFailed, WebhookChannel, sign_webhook, verify_webhook_signature
from limen.audit.keys import WEBHOOK_KEY_NAME, SigningKey, public_b64
from limen.audit.outbox import backoff
from limen.clock import FixedClock
from limen.config import Settings, load_settings

from .conftest import T0, Receiver


def _settings(data_dir: Path, *urls: str) -> Settings:
    return load_settings(data_dir, alert_urls=list(urls))


def _rows(settings: Settings) -> list[dict]:
    conn = sqlite3.connect(settings.data_dir / "audit.db")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM outbox ORDER BY id")]
    finally:
        conn.close()


def _deliveries(log: Any) -> list[dict]:
    return [r for r in log.records() if r["kind"] == "alarm_delivery"]


def test_apprise_json_delivery_reaches_the_local_receiver(data_dir: Path, receiver: Receiver) -> None:
    settings = _settings(data_dir, f"json://127.0.0.1:{receiver.port}/")
    log = open_audit(settings)
    log.append(Event(EventKind.TAMPER, T0, source="tamper:case", reason="case_opened"))
    results = open_dispatcher(settings, log).deliver_due()
    assert [r.delivered for r in results] == [True]
    assert receiver.wait_for(1)
    message = receiver.received[0]["json"]
    assert "tamper" in message["title"] and message["type"] == "failure"
    assert _rows(settings)[0]["status"] == "delivered"
    delivery = _deliveries(log)
    assert len(delivery) == 1 and delivery[0]["outcome"] == "delivered"
    assert "127.0.0.1" not in json.dumps(delivery)  # the URL (it may hold tokens) never enters the trail
    assert log.verify().records == 3
    log.close()


def test_signed_webhook_verifies_with_the_device_public_key(data_dir: Path, receiver: Receiver) -> None:
    settings = _settings(data_dir, f"signed+http://127.0.0.1:{receiver.port}/hook")
    log = open_audit(settings)
    index = raise_alarm(log, "duress", "critical", "duress code used", subject="u1", data={"silent": True})
    assert [r.delivered for r in open_dispatcher(settings, log).deliver_due()] == [True]
    got = receiver.received[0]
    assert got["json"]["alarm_id"] == f"{settings.device_id}:{index}" and got["json"]["rule"] == "duress"
    pub = (settings.keys_dir / f"{WEBHOOK_KEY_NAME}.pub").read_text()
    assert verify_webhook_signature(got["body"], got["headers"], pub)
    assert not verify_webhook_signature(got["body"].replace(b"duress", b"test!!"), got["headers"], pub)
    other = public_b64(Ed25519PrivateKey.generate().public_key())
    assert not verify_webhook_signature(got["body"], got["headers"], other)
    log.close()


def test_webhook_signature_rejects_stale_and_missing_headers() -> None:
    key = SigningKey(Ed25519PrivateKey.generate())
    body = b'{"alarm_id":"x"}'
    headers = sign_webhook(body, key, timestamp=1_000_000)
    assert verify_webhook_signature(body, headers, key.public, now=1_000_010)
    assert not verify_webhook_signature(body, headers, key.public, now=1_000_000 + 3600)
    assert not verify_webhook_signature(body, {}, key.public)
    lower: Mapping[str, str] = {k.lower(): v for k, v in headers.items()}
    assert verify_webhook_signature(body, lower, key.public, now=1_000_000)


def test_siren_sounds_on_gpio_for_tamper(data_dir: Path) -> None:
    settings = _settings(data_dir, "gpio://17")
    factory = MockFactory()
    log = open_audit(settings)
    dispatcher = open_dispatcher(settings, log, pin_factory=factory)
    log.append(Event(EventKind.TAMPER, T0, reason="case_opened"))
    assert [r.delivered for r in dispatcher.deliver_due()] == [True]
    assert any(s.state for s in factory.pin(17).states)
    dispatcher.close()
    assert factory.pin(17).state is False   # silenced on close
    log.close()


def test_siren_stays_silent_on_duress(data_dir: Path) -> None:
    settings = _settings(data_dir, "gpio://17")
    factory = MockFactory()
    log = open_audit(settings)
    dispatcher = open_dispatcher(settings, log, pin_factory=factory)
    raise_alarm(log, "duress", "critical", "duress", data={"silent": True})
    assert dispatcher.deliver_due() == []
    assert not any(s.state for s in factory.pin(17).states)
    dispatcher.close()
    log.close()


def test_service_down_is_retried_with_backoff_and_never_dropped(data_dir: Path, receiver: Receiver) -> None:
    settings = _settings(data_dir, f"signed+http://127.0.0.1:{receiver.port}/hook")
    clock = FixedClock(T0)
    log = open_audit(settings, clock)
    dispatcher = open_dispatcher(settings, log, clock=clock)
    raise_alarm(log, "tamper", "critical", "case opened")
    receiver.status = 503
    for attempt in (1, 2, 3):
        results = dispatcher.deliver_due()
        assert [(r.delivered, r.attempts) for r in results] == [(False, attempt)]
        assert "503" in (results[0].error or "")
        assert dispatcher.deliver_due() == []            # not due again before the backoff
        clock.advance(backoff(attempt) + 0.1)
    receiver.status = 200
    assert [r.delivered for r in dispatcher.deliver_due()] == [True]
    assert len(receiver.received) == 1
    outcomes = [d["outcome"] for d in _deliveries(log)]
    assert outcomes == ["failed", "failed", "failed", "delivered"]
    assert log.verify().records == len(list(log.records()))
    log.close()


def test_unreachable_service_fails_cleanly(data_dir: Path) -> None:
    settings = _settings(data_dir, "signed+http://127.0.0.1:9/hook", "json://127.0.0.1:9/")
    log = open_audit(settings)
    raise_alarm(log, "tamper", "critical", "case opened")
    results = open_dispatcher(settings, log).deliver_due()
    assert len(results) == 2 and not any(r.delivered for r in results)
    assert all(row["status"] == "pending" for row in _rows(settings))
    log.close()


def test_slow_service_times_out(receiver: Receiver, tmp_path: Path) -> None:
    receiver.delay = 2.0
    key = SigningKey(Ed25519PrivateKey.generate())
    channel = WebhookChannel(f"signed+http://127.0.0.1:{receiver.port}/", key, timeout=0.2)
    with pytest.raises(DeliveryFailed):
        channel.send({"rule": "test", "severity": "critical"})


def test_outbox_survives_a_restart(data_dir: Path, receiver: Receiver) -> None:
    settings = _settings(data_dir, f"json://127.0.0.1:{receiver.port}/")
    log = open_audit(settings)
    raise_alarm(log, "tamper", "critical", "case opened")
    log.close()                                           # "power cut" before any delivery
    reopened = open_audit(settings)
    assert [r.delivered for r in open_dispatcher(settings, reopened).deliver_due()] == [True]
    assert receiver.wait_for(1)
    reopened.close()


class _GatedChannel:
    """A channel that blocks in `send` until released: a hung notification service."""

    id = "gated"

    def __init__(self) -> None:
        self.entered, self.release, self.sent = threading.Event(), threading.Event(), 0

    def accepts(self, payload: Mapping[str, Any]) -> bool:
        return True

    def send(self, payload: Mapping[str, Any]) -> None:
        self.entered.set()
        self.release.wait(30)
        self.sent += 1


def test_hung_channel_never_blocks_appends(settings: Settings) -> None:
    log = open_audit(settings)
    gated = _GatedChannel()
    log.monitor.channels = {gated.id: gated}
    dispatcher = Dispatcher(log, {gated.id: gated}).start()
    raise_alarm(log, "tamper", "critical", "case opened")
    assert gated.entered.wait(10)
    done = threading.Event()

    def unlock_path() -> None:
        log.append(Event(EventKind.UNLOCK_ATTEMPT, T0, outcome="accept", reason="granted", data={"method": "pin"}))
        done.set()

    threading.Thread(target=unlock_path, daemon=True).start()
    assert done.wait(10)                 # the append finished while the delivery is still hung
    assert gated.sent == 0
    gated.release.set()
    dispatcher.stop()
    assert gated.sent == 1
    log.close()


def test_background_worker_delivers_promptly(data_dir: Path, receiver: Receiver) -> None:
    settings = _settings(data_dir, f"json://127.0.0.1:{receiver.port}/")
    log = open_audit(settings)
    dispatcher = open_dispatcher(settings, log).start()
    try:
        time.sleep(0.05)
        log.append(Event(EventKind.TAMPER, T0, reason="case_opened"))
        assert receiver.wait_for(1, timeout=20)
    finally:
        dispatcher.stop()
    log.close()


def test_rows_of_a_removed_channel_wait_and_are_reported(data_dir: Path) -> None:
    settings = _settings(data_dir, "json://127.0.0.1:9/")
    log = open_audit(settings)
    raise_alarm(log, "tamper", "critical", "case opened")
    log.close()
    bare = load_settings(data_dir)
    log = open_audit(bare)
    dispatcher = open_dispatcher(bare, log)
    assert dispatcher.deliver_due() == []
    assert len(dispatcher.pending_channels()) == 1
    assert _rows(bare)[0]["status"] == "pending"
    log.close()
