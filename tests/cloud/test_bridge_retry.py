"""A batch the database refused is retried in place (a later message must not overtake it), then left unacked."""

from __future__ import annotations

import ssl

import pytest
from sqlalchemy import Engine

from limen.link.mqtt import Delivery
from limen_cloud import bridge as bridge_module
from limen_cloud.bridge import CloudBridge


def test_a_failed_batch_is_retried_before_anything_else_and_given_up_after_the_bound(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bridge_module.time, "sleep", lambda s: None)
    bridge = CloudBridge(engine, ssl.create_default_context(), "127.0.0.1", 1)
    calls: list[list[tuple[str, bytes]]] = []
    failures = [2]

    def flaky(messages: list[tuple[str, bytes]], redelivered: list[bool] | None = None) -> None:
        calls.append(messages)
        if failures[0] > 0:
            failures[0] -= 1
            raise RuntimeError("database is locked")

    monkeypatch.setattr(bridge, "process", flaky)
    batch = [Delivery("limen/a/events", b"{}", 1, 1), Delivery("limen/a/events", b"{}", 2, 1)]
    assert bridge._process_retrying(batch)
    assert len(calls) == 3 and all(c == [(d.topic, d.payload) for d in batch] for c in calls)
    failures[0] = 100
    calls.clear()
    assert not bridge._process_retrying(batch)
    assert len(calls) == bridge_module.INGEST_TRIES
