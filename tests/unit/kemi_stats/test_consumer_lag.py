"""A consumer group's lag in seconds, from the records it works on (``kemi_consumer_lag_seconds``)."""

from __future__ import annotations

import time

from prometheus_client import REGISTRY

from kemi_stats.consumer.lag import LagClock


def _lag(group: str) -> float:
    value = REGISTRY.get_sample_value("kemi_consumer_lag_seconds", {"group": group, "topic": "raw"})
    assert value is not None
    return value


def test_a_take_of_old_records_leaves_the_lag_growing_until_a_take_reaches_the_present() -> None:
    clock = LagClock("takes", "raw")
    now_ms = time.time() * 1000
    clock.take_began(now_ms - 20_000, now_ms - 15_000)
    clock.take_done()
    assert 20.0 <= _lag("takes") < 22.0  # behind: the next take holds older records still
    clock.take_began(now_ms - 3_000, now_ms - 100)
    assert 3.0 <= _lag("takes") < 5.0  # while the take is worked on
    clock.take_done()
    assert _lag("takes") == 0.0  # it reached records of now: caught up


def test_records_without_a_timestamp_do_not_move_the_lag() -> None:
    clock = LagClock("untimed", "raw")
    clock.fetched(-1)
    assert _lag("untimed") == 0.0


def test_a_consumer_in_takes_is_caught_up_when_no_take_comes() -> None:
    clock = LagClock("quiet", "raw", quiet_after=0.05)
    now_ms = time.time() * 1000
    clock.take_began(now_ms - 20_000, now_ms - 15_000)  # the last of a backlog
    assert _lag("quiet") >= 20.0  # in hand: however long it takes
    clock.take_done()
    assert _lag("quiet") >= 20.0  # the next take may still hold older records
    time.sleep(0.1)
    assert _lag("quiet") == 0.0  # no take since: nothing is left to take
