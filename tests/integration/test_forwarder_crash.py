"""kill -9 of the forwarder in the middle of an acked stream: every sample stored exactly once.

Delivery through Kafka is at least once: the forwarder that takes over re-reads every
record since the last commit and writes it again. VictoriaMetrics, run as the stack runs
it (``-dedup.minScrapeInterval=1ms``), keeps one sample per series and timestamp, so its
``/api/v1/export`` holds exactly the samples that were produced: none lost, none twice.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path

import pytest

from kemi_stats.codec import encode_batch
from kemi_stats.kafka import make_producer
from kemi_stats.model import Sample, SampleBatch, Source
from kemi_stats.settings import Settings
from tests.integration.test_forwarder_support import (
    exported_samples,
    metric_value,
    start_forwarder,
    wait_exported,
)
from tests.servers import RunningServer, ServiceProcess

pytestmark = pytest.mark.integration

RESOURCES = 20
METRICS = 10
ROUNDS = 50
TOTAL = RESOURCES * METRICS * ROUNDS  # 10,000 samples in 200 series
ROUND_GAP_S = 0.1  # the stream's pace: the kill lands while records still arrive
WRITTEN = "kemi_forwarder_points_written_total"


def _round(tag: str, r: int, t0: int) -> list[SampleBatch]:
    return [
        SampleBatch(
            f"host:{tag}-{i}", t0 + r * 1000, Source.PUSH,
            [Sample(f"crash_{tag}_{k}", float(r)) for k in range(METRICS)],
        )
        for i in range(RESOURCES)
    ]  # fmt: skip


async def _stream(settings: Settings, topic: str, tag: str) -> None:
    """Produce every round, each acked by Kafka before the next starts."""
    t0 = int(time.time() * 1000) - ROUNDS * 1000
    producer = make_producer(settings)
    await producer.start()
    try:
        for r in range(ROUNDS):
            for batch in _round(tag, r, t0):
                await producer.send(topic, encode_batch(batch), key=batch.key)
            await producer.flush()
            await asyncio.sleep(ROUND_GAP_S)
    finally:
        await producer.stop()


def _wait_written(fw: ServiceProcess, at_least: float, timeout: float = 30.0) -> float:
    deadline = time.monotonic() + timeout
    while (written := metric_value(fw.url, WRITTEN)) < at_least:
        assert time.monotonic() < deadline, f"{written} points written:\n{fw.log_tail()}"
        time.sleep(0.05)
    return written


async def test_kill_9_mid_stream_stores_every_sample_exactly_once(
    settings: Settings, fresh_topic: str, victoria: RunningServer, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    match = f'{{__name__=~"crash_{tag}_.*"}}'
    for name in ("first", "second"):
        (tmp_path / name).mkdir()
    # no commit before the kill: the next forwarder writes again all the first one wrote
    first = start_forwarder(
        settings, victoria.address, fresh_topic, tmp_path / "first",
        forwarder_commit_interval="600", forwarder_batch_lines="40", forwarder_linger_ms="20",
    )  # fmt: skip
    second = None
    try:
        streaming = asyncio.create_task(_stream(settings, fresh_topic, tag))
        written_by_first = await asyncio.to_thread(_wait_written, first, TOTAL / 5)
        first.kill()
        assert not streaming.done(), "the stream ended before the kill: nothing mid-stream"
        await asyncio.wait_for(streaming, timeout=60)

        second = start_forwarder(settings, victoria.address, fresh_topic, tmp_path / "second")
        written_by_second = await asyncio.to_thread(_wait_written, second, TOTAL, 60.0)
        assert written_by_first + written_by_second > TOTAL  # samples were written twice
        assert await asyncio.to_thread(wait_exported, victoria.address, match, TOTAL) == TOTAL
        assert metric_value(second.url, "kemi_forwarder_batches_inflight") == 0
        assert exported_samples(victoria.address, match) == TOTAL
    finally:
        first.stop()
        if second is not None:
            second.stop()
