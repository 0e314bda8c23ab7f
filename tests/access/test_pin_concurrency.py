"""Argon2id runs at most `PIN_ARGON2_MEMORY_BUDGET_KIB` worth at once, however many PINs arrive together."""

from __future__ import annotations

import threading
import time

import pytest

from limen import thresholds
from limen.access import pins


def test_concurrent_pin_hashes_are_capped_by_the_memory_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    running, peak = [0], [0]
    guard = threading.Lock()

    def slow_hash(*args: object, **kwargs: object) -> bytes:
        with guard:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.02)
        with guard:
            running[0] -= 1
        return bytes(pins.PIN_HASH_BYTES)

    monkeypatch.setattr(pins, "hash_secret_raw", slow_hash)
    threads = [threading.Thread(target=pins.hash_pin, args=("123456", bytes(16))) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert pins.ARGON2_CONCURRENCY * 19_456 <= thresholds.PIN_ARGON2_MEMORY_BUDGET_KIB  # sized at import
    assert 1 < peak[0] <= pins.ARGON2_CONCURRENCY < 16
