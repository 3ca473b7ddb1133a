"""Prometheus and vmagent remote-write to a real aggregator; bad bodies are refused whole.

Each test gives its peer a token of its own whose template puts a unique prefix on the
resource id (``rw-<tag>:{instance|noport}``), so records are told apart on the topic.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import aiohttp
import cramjam
import pytest

from aggregator.proto import remote_pb2 as pb
from kemi_stats.model import MetricKind, SampleBatch
from kemi_stats.registry.models import Token
from tests.integration.test_aggregator_push import Aggregator, aggregator
from tests.prom_peers import Exporter, prometheus, vmagent
from tests.servers import RunningServer

pytestmark = pytest.mark.integration
__all__ = ["aggregator"]  # the module-scoped aggregator process

Peer = Callable[[Path, str, str, str, str], AbstractContextManager[RunningServer]]


@pytest.fixture
def exporter() -> Iterator[Exporter]:
    exp = Exporter()
    exp.requests.labels("/checkout").inc(5)
    exp.temperature.set(21.5)
    yield exp
    exp.stop()


def peer_token(agg: Aggregator) -> tuple[str, str]:
    """A token writing ``rw-<tag>:<instance without port>``: (secret, resource id prefix)."""
    tag = uuid.uuid4().hex[:6]
    secret = f"rw-{tag}-" + uuid.uuid4().hex
    agg.registry.create(
        "token",
        f"rw-{tag}",
        Token(hash=hashlib.sha256(secret.encode()).hexdigest(),
              resource_template=f"rw-{tag}:{{instance|noport}}"),
    )  # fmt: skip
    return secret, f"rw-{tag}:127.0.0.1"


async def until_records(
    agg: Aggregator, rid: str, want: set[str], within: float
) -> list[SampleBatch]:
    """Batches of ``rid`` until every metric of ``want`` was seen (or ``within`` seconds)."""
    deadline = time.monotonic() + within
    seen: list[SampleBatch] = []
    while time.monotonic() < deadline:
        seen = await agg.records({rid}, 10_000, wait=2.0)
        if want <= {s.metric for b in seen for s in b.samples}:
            return seen
    raise AssertionError(f"not all of {want} on the topic: {[b.samples for b in seen][:3]}")


@pytest.mark.parametrize("peer", [prometheus, vmagent], ids=["prometheus", "vmagent"])
def test_peer_remote_writes_under_the_template_id_with_kinds(
    aggregator: Aggregator, exporter: Exporter, peer: Peer, tmp_path: Path
) -> None:
    secret, rid = peer_token(aggregator)
    url = aggregator.url + "/api/v1/write"
    with peer(tmp_path, exporter.address, "shop", url, secret):
        batches = asyncio.run(
            until_records(
                aggregator, rid, {"app_requests_total", "app_temperature_celsius", "up"}, 60
            )
        )
    samples = {s.metric: s for b in batches for s in b.samples}
    total = samples["app_requests_total"]
    assert total.kind is MetricKind.FLOAT_COUNTER and total.value == 5.0
    assert total.labels == {"job": "shop", "path": "/checkout"}  # instance named the resource
    assert samples["app_temperature_celsius"].kind is MetricKind.GAUGE
    assert samples["app_temperature_celsius"].value == 21.5
    assert samples["up"].value == 1.0


async def test_malformed_bodies_are_400_and_write_nothing(aggregator: Aggregator) -> None:
    host = f"rw-bad-{uuid.uuid4().hex[:6]}"
    req = pb.WriteRequest()
    ts = req.timeseries.add()
    ts.labels.add(name="__name__", value="up")
    ts.labels.add(name="instance", value=f"{host}:9100")
    ts.samples.add(value=1, timestamp=int(time.time() * 1000))
    good = bytes(cramjam.snappy.compress_raw(req.SerializeToString()))
    headers = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
               "X-Prometheus-Remote-Write-Version": "0.1.0"}  # fmt: skip
    for bad in (good[:-5], bytes(cramjam.snappy.compress_raw(b"\x0a\xff\xff\xff"))):
        status, _, text = await aggregator.post("/api/v1/write", bad, **headers)
        assert status == 400, text
    # a series without a name is dropped and counted, the rest is written
    nameless = req.timeseries.add()
    nameless.labels.add(name="instance", value=f"{host}:9100")
    nameless.samples.add(value=2, timestamp=int(time.time() * 1000))
    body = bytes(cramjam.snappy.compress_raw(req.SerializeToString()))
    status, _, text = await aggregator.post("/api/v1/write", body, **headers)
    assert status == 204, text
    (batch,) = await aggregator.records({host}, 1)
    assert [s.metric for s in batch.samples] == ["up"]
    async with (
        aiohttp.ClientSession() as session,
        session.get(aggregator.url + "/metrics") as resp,
    ):
        text = await resp.text()
    assert (
        'kemi_aggregator_points_dropped_total{endpoint="remote_write",reason="no_metric_name",token="ops"}'
        in text
    )
