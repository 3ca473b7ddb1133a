"""The shared consumer loop with a stand-in consumer: pausing while busy, stale records."""

from __future__ import annotations

import time
from typing import Any

from aiokafka import TopicPartition

from kemi_stats.consumer import ConsumerLoop

TP0 = TopicPartition("t", 0)
TP1 = TopicPartition("t", 1)


class _Record:
    def __init__(self, offset: int, timestamp: int | None = None) -> None:
        self.offset = offset
        self.value = b""
        self.timestamp = int(time.time() * 1000) if timestamp is None else timestamp


class FakeConsumer:
    """Hands out scripted fetches; paused partitions get nothing, like aiokafka's fetcher."""

    def __init__(self, assigned: set[TopicPartition]) -> None:
        self.assigned = set(assigned)
        self.paused: set[TopicPartition] = set()
        self.ready: dict[TopicPartition, list[_Record]] = {}
        self.commits: list[dict[Any, int]] = []
        #: an assignment a rebalance brings during the next getmany
        self.rebalance: set[TopicPartition] | None = None

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused |= set(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused -= set(tps)

    def reassign(self, assigned: set[TopicPartition]) -> None:
        """What a rebalance does: a new assignment starts unpaused."""
        self.assigned = set(assigned)
        self.paused &= self.assigned
        self.paused -= assigned

    async def getmany(self, timeout_ms: int = 0, max_records: int | None = None) -> Any:
        if self.rebalance is not None:
            self.reassign(self.rebalance)
            self.rebalance = None
        out = {tp: recs for tp, recs in self.ready.items() if recs and tp not in self.paused}
        for tp in out:
            self.ready[tp] = []
        return out

    async def commit(self, offsets: dict[Any, int]) -> None:
        self.commits.append(dict(offsets))


def _loop(consumer: FakeConsumer, busy: list[bool]) -> ConsumerLoop:
    return ConsumerLoop(
        consumer,  # type: ignore[arg-type]
        ["t"],
        group="g",
        commit_interval=0.0,
        busy=lambda: busy[0],
    )


async def test_busy_pauses_every_partition_held_now_and_never_drops_what_it_fetches() -> None:
    consumer = FakeConsumer({TP0})
    busy = [True]
    loop = _loop(consumer, busy)
    assert await loop.fetch() == {}
    assert consumer.paused == {TP0}
    consumer.rebalance = {TP0, TP1}  # during the next poll: TP1 comes unpaused
    consumer.ready[TP1] = [_Record(7)]
    got = await loop.fetch()
    assert [r.offset for r in got[TP1]] == [7]  # handed over, not dropped
    assert await loop.fetch() == {}
    assert consumer.paused == {TP0, TP1}
    busy[0] = False
    consumer.ready[TP0] = [_Record(3)]
    assert [r.offset for r in (await loop.fetch())[TP0]] == [3]
    assert consumer.paused == set()


async def test_records_fetched_before_a_revocation_are_left_to_the_new_owner() -> None:
    consumer = FakeConsumer({TP0})
    loop = _loop(consumer, [False])
    consumer.ready[TP0] = [_Record(10), _Record(11)]
    records = await loop.fetch()
    first = loop.begin(TP0, records[TP0][0].offset)
    await loop._revoked({TP0})  # before the second record was handed over
    stale = loop.begin(TP0, records[TP0][1].offset)
    consumer.ready[TP0] = [_Record(10), _Record(11)]  # assigned again, read again
    again = await loop.fetch()
    redo = [loop.begin(TP0, r.offset) for r in again[TP0]]
    first()
    stale()
    redo[1]()
    assert loop.tracker.to_commit() == {}
    redo[0]()
    assert loop.tracker.to_commit() == {TP0: 12}


def _lag(group: str) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value("kemi_consumer_lag_seconds", {"group": group, "topic": "t"})
    assert value is not None
    return value


async def test_lag_is_the_age_of_the_oldest_record_fetched_until_a_fetch_comes_back_empty() -> None:
    consumer = FakeConsumer({TP0, TP1})
    loop = _loop(consumer, [False])
    assert _lag("g") == 0.0
    now_ms = int(time.time() * 1000)
    consumer.ready[TP0] = [_Record(1, now_ms - 30_000), _Record(2, now_ms - 1_000)]
    consumer.ready[TP1] = [_Record(5, now_ms - 12_000)]
    await loop.fetch()
    assert 30.0 <= _lag("g") < 32.0  # records wait 30 s for this group
    await loop.fetch()  # nothing more: caught up
    assert _lag("g") == 0.0


async def test_a_consumer_that_keeps_up_fetches_once_per_interval_and_a_backlog_at_once() -> None:
    consumer = FakeConsumer({TP0})
    loop = ConsumerLoop(consumer, ["t"], group="g", fetch_interval=0.5)  # type: ignore[arg-type]
    started = time.monotonic()
    consumer.ready[TP0] = [_Record(0)]
    await loop.fetch(max_records=2)  # not full: the next fetch waits for the interval
    consumer.ready[TP0] = [_Record(1), _Record(2)]
    await loop.fetch(max_records=2)  # full: a backlog, followed at once
    assert 0.5 <= time.monotonic() - started < 0.9
    consumer.ready[TP0] = [_Record(3)]
    await loop.fetch(max_records=2)
    assert time.monotonic() - started < 0.9


async def test_a_loop_done_being_busy_leaves_partitions_the_service_holds_paused() -> None:
    consumer = FakeConsumer({TP0, TP1})
    busy = [True]
    loop = _loop(consumer, busy)
    await loop.fetch()
    assert consumer.paused == {TP0, TP1}
    loop.held.add(TP1)  # a first read still deciding where TP1 starts
    consumer.ready[TP1] = [_Record(3)]
    busy[0] = False
    assert await loop.fetch() == {}
    assert consumer.paused == {TP1}
