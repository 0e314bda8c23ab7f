"""The bridge's refusals are bounded: counters by kind and a ring of the last `CLOUD_REFUSED_RECENT` reasons, so a
certificate holder sending garbage cannot grow the cloud's memory; the tests' list-like uses keep working."""

from __future__ import annotations

import logging
import ssl

import pytest
from sqlalchemy import Engine

from limen import thresholds as T
from limen_cloud.bridge import CloudBridge, Refusal, Refusals


def test_the_refusals_keep_counters_by_kind_and_only_the_last_reasons(engine: Engine,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    bridge = CloudBridge(engine, ssl.create_default_context(), "127.0.0.1", 1)
    n = 5 * T.CLOUD_REFUSED_RECENT
    caplog.set_level(logging.WARNING, "limen_cloud.bridge")
    for k in range(0, n, 50):  # garbage in passes of 50, as the workers take them
        bridge.process([("limen/evil-lock/events", f"garbage {j}".encode()) for j in range(k, k + 50)])
    bridge.process([("limen/evil-lock/events", b"x" * (T.CLOUD_MAX_EVENTS_BYTES + 1)),
                    ("limen/evil-lock/result", b"{}"), ("elsewhere/evil-lock/events", b"{}")])
    assert len(bridge.refused) == T.CLOUD_REFUSED_RECENT  # the ring, not every refusal
    assert bridge.refused.total == n + 3
    counts = bridge.refused.counts
    assert counts[Refusal.MALFORMED] == n and counts[Refusal.OVERSIZED] == 1
    assert counts[Refusal.UNKNOWN_LOCK] == 1 and counts[Refusal.UNKNOWN_TOPIC] == 1
    assert bridge.refused[-1] == "unknown topic" and "never saw" in bridge.refused[-2]
    assert "oversized" in bridge.refused[-3] and f"garbage {n - 1}" not in bridge.refused[-4]  # (no payload echoed)
    assert "evil-lock" in bridge.refused[0]
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("refused a message")]
    assert len(lines) == n + 3 and "(oversized)" in lines[-3] and "'limen/evil-lock/events' (malformed)" in lines[0]


def test_the_list_like_uses_of_refused() -> None:
    refused = Refusals(recent=3)
    assert refused == [] and not refused and len(refused) == 0
    for k in range(5):
        refused.add(Refusal.MALFORMED, f"r{k}")
    assert refused == ["r2", "r3", "r4"] and refused[-1] == "r4" and refused[1:] == ["r3", "r4"]
    assert any("r3" in r for r in refused) and refused.total == 5 and refused.counts[Refusal.MALFORMED] == 5
