"""Token buckets: one process's, and those every worker of an aggregator shares."""

from __future__ import annotations

from pathlib import Path

from aggregator.ratelimit import RateLimiter, SharedBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_holds_one_second_and_refuses_with_the_wait_when_empty() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    assert limiter.admit("t", 100, 250) is None  # a full bucket admits, then is in debt
    assert limiter.admit("t", 100, 1) == 2  # -150 refills above zero in 1.5 s
    clock.now += 2
    assert limiter.admit("t", 100, 1) is None
    assert limiter.admit("other", 100, 1) is None  # each token has its own


def test_workers_sharing_the_file_share_each_tokens_limit(tmp_path: Path) -> None:
    """Two processes' limiters on one file: what one admits, the other sees spent."""
    clock = Clock()
    first = RateLimiter(clock, SharedBuckets(tmp_path / "rates"))
    second = RateLimiter(clock, SharedBuckets(tmp_path / "rates"))
    assert first.admit("t", 100, 100) is None
    assert second.admit("t", 100, 1) == 1  # empty: the first worker spent it
    clock.now += 1.0
    assert second.admit("t", 100, 60) is None
    assert first.admit("t", 100, 60) is None  # 40 left: admitted, into debt
    assert second.admit("t", 100, 1) == 1
    assert first.admit("u", 10, 1) is None and second.admit("u", 10, 1) is None


def test_a_full_table_limits_the_tokens_left_over_in_each_process(tmp_path: Path) -> None:
    clock = Clock()
    buckets = SharedBuckets(tmp_path / "rates", slots=2)
    limiter = RateLimiter(clock, buckets)
    for name in ("a", "b", "c"):
        assert limiter.admit(name, 10, 10) is None
    assert buckets.full
    assert limiter.admit("c", 10, 1) == 1  # still limited, in this process
