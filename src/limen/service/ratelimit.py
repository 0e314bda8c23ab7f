"""In-memory token buckets: one per client plus one for everyone, for login and unlock endpoints.

Kept in memory on purpose: a restart forgets the buckets, but the access
engine's own keypad and biometric lockouts are persisted in SQLite, so a
restart never resets the lockout that protects the door.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from limen.clock import Clock, SystemClock

MAX_CLIENTS = 10_000  # buckets kept; the least recently seen client is forgotten first


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """`allow(client)` → 0.0 when the request may go on, else the seconds to wait (Retry-After).

    A request takes one token from the client's bucket (`burst` tokens,
    refilled at `per_min` a minute) and one from the global bucket.
    Thread-safe.
    """

    def __init__(self, per_min: float, burst: int, global_per_min: float, clock: Clock | None = None) -> None:
        self.rate = per_min / 60.0
        self.burst = float(burst)
        self.global_rate = global_per_min / 60.0
        self.global_burst = max(float(burst), global_per_min / 6.0)  # ten seconds' worth
        self.clock = clock or SystemClock()
        self._clients: OrderedDict[str, _Bucket] = OrderedDict()
        self._global = _Bucket(self.global_burst, self.clock.monotonic())
        self._lock = threading.Lock()

    def allow(self, client: str) -> float:
        now = self.clock.monotonic()
        with self._lock:
            bucket = self._clients.pop(client, None) or _Bucket(self.burst, now)
            self._clients[client] = bucket
            while len(self._clients) > MAX_CLIENTS:
                self._clients.popitem(last=False)
            _refill(bucket, self.rate, self.burst, now)
            _refill(self._global, self.global_rate, self.global_burst, now)
            if bucket.tokens < 1.0:
                return (1.0 - bucket.tokens) / self.rate
            if self._global.tokens < 1.0:
                return (1.0 - self._global.tokens) / self.global_rate
            bucket.tokens -= 1.0
            self._global.tokens -= 1.0
            return 0.0


def _refill(bucket: _Bucket, rate: float, cap: float, now: float) -> None:
    bucket.tokens = min(cap, bucket.tokens + (now - bucket.at) * rate)
    bucket.at = now
