"""Hostile input against a real aggregator: bounded work per request, no 5xx, nothing half-written.

The aggregator here runs with smaller request limits (1,000 resources, 250,000 samples)
so the tests stay light; the defaults admit far more. Records are split at the default
1,000,000 bytes.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import uuid
from collections.abc import Iterator

import aiohttp
import orjson
import pytest

from kemi_stats.codec import MAX_RECORD_BYTES, encode_batch
from kemi_stats.stack.servers import http_ok
from tests.integration.malformed_bodies import corpus
from tests.integration.test_aggregator_push import SECRET, Aggregator, running_aggregator
from tests.servers import RunningServer
from tests.topic_reader import read_batches

pytestmark = pytest.mark.integration

AUTH = {"Authorization": f"Bearer {SECRET}"}
NOW_S = int(time.time())
MAX_SAMPLES = 250_000

#: bodies that are malformed in part: the protocol answers 2xx and counts what it left out
#: (remote_write and OTLP senders drop a batch refused whole, good series with it)
PARTLY_ACCEPTED = frozenset({
    "rw-label-value-5000", "rw-label-value-nul", "rw-metric-name-5000", "rw-no-name",
    "rw-nan-value", "otlp-json-label-value-5000", "otlp-json-nested-objects",
})  # fmt: skip


@pytest.fixture(scope="module")
def aggregator(
    kafka: RunningServer, etcd: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Aggregator]:
    with running_aggregator(
        kafka,
        etcd,
        tmp_path_factory.mktemp("aggregator-limits"),
        aggregator_max_resources="1000",
        aggregator_max_samples=str(MAX_SAMPLES),
    ) as agg:
        yield agg


async def _post(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, bytes, float]:
    started = time.perf_counter()
    async with session.post(url, data=body, headers={**AUTH, **headers}) as resp:
        return resp.status, await resp.read(), time.perf_counter() - started


def _lines(resource: str, series: int) -> bytes:
    return "\n".join(
        f"disk,host={resource},part=p{i:07d} used={i} {NOW_S}" for i in range(series)
    ).encode()


async def _marker(agg: Aggregator, resource: str) -> None:
    """A push after the ones under test: once it is on the topic, so is all before it."""
    status, _, text = await agg.post(
        "/api/v1/push", orjson.dumps({"resource_id": resource, "metrics": {"up": 1}})
    )
    assert status == 204, text


def test_a_resource_over_one_record_is_split_and_written_whole(aggregator: Aggregator) -> None:
    resource = f"host:split-{uuid.uuid4().hex[:6]}"
    series = 220_000  # a 12 MB body, about 7.5 MB of samples: eight records

    async def scenario() -> None:
        body = _lines(resource, series)
        status, _, text = await aggregator.post("/api/v2/write?precision=s", body)
        assert status == 204, text
        batches = await aggregator.records({resource}, want=8, wait=60)
        assert len(batches) >= 8
        assert all(len(encode_batch(b)) <= MAX_RECORD_BYTES for b in batches)
        parts = {s.labels["part"] for b in batches for s in b.samples}
        assert len(parts) == series
        assert sum(len(b.samples) for b in batches) == series

    asyncio.run(scenario())


def test_a_body_over_a_cap_gets_413_and_nothing_is_written(aggregator: Aggregator) -> None:
    tag = uuid.uuid4().hex[:6]
    many_resources = "\n".join(f"cpu,host=cap-{tag}-{i} v=1 {NOW_S}" for i in range(1001))
    many_samples = _lines(f"cap-{tag}-samples", MAX_SAMPLES + 1)
    marker = f"host:cap-{tag}-marker"

    async def scenario() -> None:
        status, _, text = await aggregator.post(
            "/api/v2/write?precision=s", many_resources.encode()
        )
        assert status == 413, text
        body = orjson.loads(text)
        assert body["message"].startswith(
            "resources: 1001, over the limit of 1000 (KEMI_AGGREGATOR_MAX_RESOURCES)"
        )
        status, _, text = await aggregator.post("/api/v2/write?precision=s", many_samples)
        assert status == 413, text
        assert orjson.loads(text)["message"].startswith(
            f"samples: {MAX_SAMPLES + 1}, over the limit of {MAX_SAMPLES}"
        )
        await _marker(aggregator, marker)
        written = await read_batches(
            aggregator.kafka, aggregator.topic, 1, keep=lambda b: tag in b.resource_id
        )
        assert [b.resource_id for b in written] == [marker]

    asyncio.run(scenario())


def test_gzip_members_are_bounded_and_a_small_push_is_not_held_up(
    aggregator: Aggregator,
) -> None:
    members = gzip.compress(b"cpu,host=gz v=1\n") * 200_000
    # a large body parses on a thread: a small push meanwhile answers first
    big = _lines(f"host:big-{uuid.uuid4().hex[:6]}", 99_000)
    small = orjson.dumps({"resource_id": "host:small", "metrics": {"up": 1}})
    gz = {"Content-Type": "text/plain", "Content-Encoding": "gzip"}

    async def scenario() -> None:
        url = aggregator.url
        async with aiohttp.ClientSession() as session:
            status, text, took = await _post(session, url + "/api/v2/write", members, gz)
            assert status == 413, text
            assert b"gzip members: more than 100" in text
            print(f"200,000 gzip members refused in {took * 1000:.0f} ms")
            assert took < 1.0
            big_push = asyncio.create_task(
                _post(
                    session, url + "/api/v2/write?precision=s", big, {"Content-Type": "text/plain"}
                )
            )
            await asyncio.sleep(0.05)
            done: list[str] = []
            small_status, _, small_took = await _post(
                session, url + "/api/v1/push", small, {"Content-Type": "application/json"}
            )
            done.append("small")
            big_status, big_text, big_took = await big_push
            done.append("big")
            print(f"small push {small_took * 1000:.0f} ms while a 99,000-line body took "
                  f"{big_took * 1000:.0f} ms")  # fmt: skip
            assert small_status == 204
            assert big_status == 204, big_text
            assert small_took < big_took
            assert small_took < 1.0

    asyncio.run(scenario())


def test_no_malformed_body_gets_a_5xx_or_hangs(aggregator: Aggregator) -> None:
    cases = corpus()
    assert len(cases) >= 100

    async def scenario() -> list[str]:
        problems: list[str] = []
        async with aiohttp.ClientSession() as session:
            for name, path, headers, body in cases:
                status, text, took = await _post(session, aggregator.url + path, body, headers)
                expected_2xx = name in PARTLY_ACCEPTED
                if status >= 500 or (status < 400) != expected_2xx:
                    problems.append(f"{name}: {status} {text[:200]!r}")
                if took > 1.0:
                    problems.append(f"{name}: took {took:.2f} s")
        return problems

    problems = asyncio.run(scenario())
    assert problems == [], "\n".join(problems)
    assert http_ok(aggregator.url + "/healthz")
    # no last-resort 500 was logged while refusing them
    assert " ERROR " not in aggregator.proc.log_tail(100_000)


def test_refusals_name_the_line_and_the_problem(aggregator: Aggregator) -> None:
    long_value = "v" * 5000

    async def scenario() -> None:
        refusals = {
            b"cpu,host=a v=" + b"9" * 5000 + b"i": "5000 digits is outside 64 bits",
            b"cpu,host=a v=1 " + b"9" * 5000: "timestamp of 5000 digits is outside int64",
            b"cpu,host=a,kemi_kind=counter v=1e300": "counter value 1e+300 is beyond 64 bits",
            f"cpu,host=a,site={long_value} v=1".encode(): "is 5000 characters long (at most 4096)",
            b"cpu,host=a,site=x\x00y v=1": "contains control characters",
        }
        for body, words in refusals.items():
            status, _, text = await aggregator.post(
                "/api/v2/write?precision=s", b"cpu,host=ok v=1\n" + body
            )
            assert status == 400, text
            doc = orjson.loads(text)
            assert doc["line"] == 2
            assert words in doc["message"], doc["message"]
        status, _, text = await aggregator.post("/api/v1/push", b"[" * 600 + b"]" * 600)
        assert status == 400, text
        assert "nested too deep" in orjson.loads(text)["message"]

    asyncio.run(scenario())
