from datetime import UTC, datetime

from limen.clock import FixedClock
from limen.service.ratelimit import RateLimiter


def test_bucket_empties_then_refills_with_time() -> None:
    clock = FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    limiter = RateLimiter(per_min=6.0, burst=3, global_per_min=600.0, clock=clock)
    assert [limiter.allow("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.allow("a")
    assert 9.0 <= wait <= 10.0  # one token every 10 s
    clock.advance(10.0)
    assert limiter.allow("a") == 0.0
    assert limiter.allow("a") > 0


def test_clients_have_their_own_buckets_but_share_the_global_one() -> None:
    clock = FixedClock(datetime(2026, 1, 5, 9, 0, tzinfo=UTC))
    limiter = RateLimiter(per_min=60.0, burst=2, global_per_min=18.0, clock=clock)  # global burst: 3
    assert limiter.allow("a") == 0.0 and limiter.allow("a") == 0.0
    assert limiter.allow("a") > 0
    assert limiter.allow("b") == 0.0  # b has its own bucket …
    assert limiter.allow("c") > 0     # … but everyone together is capped
