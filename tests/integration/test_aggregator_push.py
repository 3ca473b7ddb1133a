"""The aggregator as a real process against the real broker and etcd: what clients see.

One aggregator (module scope) writes to a topic of its own; tests tell their
records apart by resource id.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import hashlib
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import orjson
import pytest
from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS

from agent import Agent, Pusher
from kemi_stats.model import MetricKind, SampleBatch
from kemi_stats.registry.models import Counters, Token
from kemi_stats.registry.store import Registry
from kemi_stats.stack.servers import http_ok
from kemi_stats.topics import TopicSpec, ensure_topics
from tests.servers import RunningServer, ServiceProcess, service_env
from tests.topic_reader import read_batches

pytestmark = pytest.mark.integration

SECRET = "s3cret-" + uuid.uuid4().hex
OTHER_SECRET = "other-" + uuid.uuid4().hex


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass
class AggregatorProcess(ServiceProcess):
    """``start`` waits on ``url + "/healthz"``: on the admin port when there is one."""

    admin_port: int | None = None

    @property
    def url(self) -> str:
        port = self.port if self.admin_port is None else self.admin_port
        return f"http://127.0.0.1:{port}"


class Aggregator:
    def __init__(
        self,
        proc: ServiceProcess,
        topic: str,
        registry: Registry,
        kafka: str,
        client_ssl: ssl.SSLContext | None = None,
    ) -> None:
        self.proc = proc
        self.topic = topic
        self.registry = registry
        self.kafka = kafka
        #: HTTPS to the push port with this context (None: plain HTTP)
        self.client_ssl = client_ssl

    @property
    def url(self) -> str:
        """The push listener."""
        scheme = "http" if self.client_ssl is None else "https"
        return f"{scheme}://127.0.0.1:{self.proc.port}"

    async def post(
        self, path: str, body: bytes, token: str | None = SECRET, **headers: str
    ) -> tuple[int, dict[str, str], bytes]:
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        json = path.startswith("/api/v1/")
        headers.setdefault(
            "Content-Type", "application/json" if json else "text/plain; charset=utf-8"
        )
        async with (
            aiohttp.ClientSession() as session,
            session.post(
                self.url + path, data=body, headers=headers, ssl=self.client_ssl or True
            ) as resp,
        ):
            return resp.status, dict(resp.headers), await resp.read()

    async def records(
        self, resource_ids: set[str], want: int, wait: float = 20.0
    ) -> list[SampleBatch]:
        """Batches of ``resource_ids`` on the topic, waiting until ``want`` are there (or ``wait``)."""
        return await read_batches(
            self.kafka, self.topic, want, wait, keep=lambda b: b.resource_id in resource_ids
        )


@contextlib.contextmanager
def running_aggregator(
    kafka: RunningServer,
    etcd: RunningServer,
    log_dir: Path,
    *,
    client_ssl: ssl.SSLContext | None = None,
    admin_port: int | None = None,
    **settings: str,
) -> Iterator[Aggregator]:
    """An aggregator process on a topic and registry prefix of its own, accepting pushes.

    Tokens: ``ops`` (SECRET, any resource) and ``tenant`` (OTHER_SECRET, ``host:tenant-``);
    ``settings`` are further ``KEMI_*`` settings (``aggregator_max_samples="10"``).
    ``client_ssl``: push over HTTPS trusting it (give the TLS settings, and an
    ``admin_port``: the start waits on ``/healthz`` over plain HTTP).
    """
    prefix = f"/kemi-agg-{uuid.uuid4().hex[:8]}/"
    topic = f"test.agg.{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka.address, (TopicSpec(topic, 3),))
    registry = Registry(etcd.address, prefix)
    registry.create("token", "ops", Token(hash=_hash(SECRET), resource_prefix=""))
    registry.create(
        "token", "tenant", Token(hash=_hash(OTHER_SECRET), resource_prefix="host:tenant-")
    )
    env = service_env(
        kafka_bootstrap=kafka.address,
        etcd_endpoint=etcd.address,
        etcd_prefix=prefix,
        aggregator_topic=topic,
        **settings,
    )
    if admin_port is not None:
        env["KEMI_AGGREGATOR_ADMIN_PORT"] = str(admin_port)
    log_path = log_dir / "aggregator.log"
    proc = AggregatorProcess("aggregator", env, log_path, admin_port=admin_port).start()
    agg = Aggregator(proc, topic, registry, kafka.address, client_ssl)
    try:
        asyncio.run(wait_accepting(agg))
        yield agg
    finally:
        proc.stop()
        registry.close()


@pytest.fixture(scope="module")
def aggregator(
    kafka: RunningServer, etcd: RunningServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Aggregator]:
    log_dir = tmp_path_factory.mktemp("aggregator")
    with running_aggregator(kafka, etcd, log_dir, aggregator_max_body_bytes=str(8 << 20)) as agg:
        yield agg


async def wait_accepting(agg: Aggregator) -> None:
    """Until the aggregator's producer is up (a push of nothing is 204 right away)."""
    deadline = time.monotonic() + 30
    body = orjson.dumps({"resource_id": "host:warmup", "metrics": {"up": 1}})
    while time.monotonic() < deadline:
        status, _, text = await agg.post("/api/v1/push", body)
        if status == 204:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(
        f"aggregator never accepted a push: {status} {text!r}\n{agg.proc.log_tail()}"
    )


def _rid() -> str:
    return f"host:t-{uuid.uuid4().hex[:10]}"


async def test_agent_pushes_proc_metrics(aggregator: Aggregator) -> None:
    rid = _rid()
    async with Pusher(aggregator.url, SECRET) as pusher:
        agent = Agent(pusher, rid, interval=0.2, labels={"site": "pangyo"})
        agent.collect()
        await asyncio.sleep(0.2)
        result = await agent.push_once()
    assert result.status == 204, result
    batches = await aggregator.records({rid}, 1)
    assert len(batches) == 1
    batch = batches[0]
    names = {s.metric for s in batch.samples}
    assert {"cpu_usage_pct", "mem_available_bytes", "load1"} <= names
    assert any(s.metric == "net_rx_bytes" and s.kind is MetricKind.COUNTER64 for s in batch.samples)
    assert all(s.labels.get("site") == "pangyo" for s in batch.samples)
    assert abs(batch.time_ms - time.time() * 1000) < 10_000


def test_influxdb_client_write_api(aggregator: Aggregator) -> None:
    host = f"influx-{uuid.uuid4().hex[:8]}"
    t0 = int(time.time()) - 5
    points = [
        Point("cpu").tag("host", host).tag("cpu", "cpu0").field("usage_user", 12.5)
        .field("usage_system", 3).time(t0, WritePrecision.S),
        Point("net").tag("host", host).tag("interface", "eth0").tag("kemi_kind", "counter")
        .field("bytes_recv", 123456789).time(t0 + 1, WritePrecision.S),
        Point("system").tag("host", host).field("uptime_format", "3 days").field("load1", 0.5)
        .time((t0 + 2) * 1_000_000_000, WritePrecision.NS),
    ]  # fmt: skip
    with InfluxDBClient(url=aggregator.url, token=SECRET, org="kemi") as client:
        client.write_api(write_options=SYNCHRONOUS).write(bucket="kemi", record=points)
    batches = asyncio.run(aggregator.records({host}, 3))
    by_time = {b.time_ms: b for b in batches}
    assert sorted(by_time) == [t0 * 1000, (t0 + 1) * 1000, (t0 + 2) * 1000]
    cpu = {s.metric: s for s in by_time[t0 * 1000].samples}
    assert cpu["cpu_usage_user"].value == 12.5
    assert cpu["cpu_usage_system"].value == 3
    assert cpu["cpu_usage_user"].kind is MetricKind.GAUGE
    assert cpu["cpu_usage_user"].labels == {"cpu": "cpu0"}
    (net,) = by_time[(t0 + 1) * 1000].samples
    assert (net.metric, net.value, net.kind) == ("net_bytes_recv", 123456789, MetricKind.COUNTER64)
    assert net.labels == {"interface": "eth0"}
    (load,) = by_time[(t0 + 2) * 1000].samples  # the string field was dropped, as documented
    assert load.metric == "system_load1"


async def test_v1_write_with_precision_and_gzip(aggregator: Aggregator) -> None:
    host = f"v1-{uuid.uuid4().hex[:8]}"
    now_ms = int(time.time() * 1000)
    body = gzip.compress(
        f"mem,host={host} used=1i {now_ms}\nmem,host={host} used=2i {now_ms + 1}\n".encode()
    )
    status, _, text = await aggregator.post(
        "/write?precision=ms&db=telegraf", body, token=None, **{"Content-Encoding": "gzip"},
        Authorization="Token " + SECRET,
    )  # fmt: skip
    assert status == 204, text
    batches = await aggregator.records({host}, 2)
    assert sorted(b.time_ms for b in batches) == [now_ms, now_ms + 1]


async def test_curl_data_binary_is_line_protocol(aggregator: Aggregator) -> None:
    """``curl --data-binary`` without a Content-Type sends form-urlencoded, as InfluxDB allows."""
    host = f"curl-{uuid.uuid4().hex[:8]}"
    now_s = int(time.time())
    status, _, text = await aggregator.post(
        "/api/v2/write?precision=s", f"cpu,host={host} usage=3.5 {now_s}".encode(),
        **{"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert status == 204, text
    (batch,) = await aggregator.records({host}, 1)
    assert batch.time_ms == now_s * 1000 and batch.samples[0].value == 3.5


async def test_refusals_are_clear_and_write_nothing(aggregator: Aggregator) -> None:
    rid = _rid()
    host = rid.removeprefix("host:")
    now_ns = time.time_ns()
    good = f"cpu,host={host} v=1 {now_ns}\n"
    cases: list[tuple[str, str, bytes, dict[str, str], str | None, int]] = [
        ("no token", "/api/v2/write", good.encode(), {}, None, 401),
        ("unknown token", "/api/v2/write", good.encode(), {}, "nope", 401),
        ("bad line", "/api/v2/write", (good + "cpu,host=x v=abc\n").encode(), {}, SECRET, 400),
        ("NaN", "/api/v2/write", (good + f"cpu,host={host} v=NaN\n").encode(), {}, SECRET, 400),
        ("inf", "/api/v2/write", (good + f"cpu,host={host} v=inf\n").encode(), {}, SECRET, 400),
        ("future", "/api/v2/write", (good + f"cpu,host={host} v=1 {now_ns * 2}\n").encode(), {}, SECRET, 400),
        ("utf-8", "/api/v2/write", good.encode() + b"cpu,host=x v=1 \xff\n", {}, SECRET, 400),
        ("truncated gzip", "/api/v2/write", gzip.compress(good.encode() * 50)[:-30],
         {"Content-Encoding": "gzip"}, SECRET, 400),
        ("not gzip", "/api/v2/write", good.encode(), {"Content-Encoding": "gzip"}, SECRET, 400),
        ("brotli", "/api/v2/write", good.encode(), {"Content-Encoding": "br"}, SECRET, 415),
        ("xml", "/api/v1/push", b"<x/>", {"Content-Type": "application/xml"}, SECRET, 415),
        ("json NaN", "/api/v1/push", b'{"resource_id": "%s", "metrics": {"a": NaN}}' % rid.encode(),
         {"Content-Type": "application/json"}, SECRET, 400),
        ("json 1e999", "/api/v1/push", b'{"resource_id": "%s", "metrics": {"a": 1e999}}' % rid.encode(),
         {"Content-Type": "application/json"}, SECRET, 400),
        ("json future", "/api/v1/push",
         orjson.dumps({"resource_id": rid, "time": time.time() + 86400, "metrics": {"a": 1}}),
         {"Content-Type": "application/json"}, SECRET, 400),
        ("prefix", "/api/v1/push", orjson.dumps({"resource_id": rid, "metrics": {"a": 1}}),
         {"Content-Type": "application/json"}, OTHER_SECRET, 403),
        ("100k tags", "/api/v2/write",
         (f"cpu,host={host}," + ",".join(f"t{i}=v" for i in range(100_000)) + " v=1\n").encode(),
         {}, SECRET, 400),
    ]  # fmt: skip
    for name, path, body, headers, token, want in cases:
        status, _, text = await aggregator.post(path, body, token=token, **headers)
        assert status == want, f"{name}: {status} {text!r}"
        doc = orjson.loads(text)
        assert doc["message"], name
        if want == 400:
            assert "line" in doc or "path" in doc or "gzip" in doc["message"], f"{name}: {doc}"
    # the clear message names the line, the value and what was expected
    status, _, text = await aggregator.post(
        "/api/v2/write", (good + good + "cpu,host=x v=abc\n").encode()
    )
    doc = orjson.loads(text)
    assert (doc["line"], doc["value"]) == (3, "abc") and "float" in doc["expected"]
    assert http_ok(aggregator.url + "/healthz")
    assert await aggregator.records({rid, host}, 0, wait=2.0) == []


async def test_huge_bodies_get_413_and_the_process_stays_healthy(aggregator: Aggregator) -> None:
    # 100 MB with a Content-Length is refused before it is read
    async with aiohttp.ClientSession() as session:
        big = b"cpu,host=big v=1\n" * (100_000_000 // 17)

        async def chunks() -> object:
            for i in range(0, len(big), 1 << 20):
                yield big[i : i + (1 << 20)]

        async with session.post(
            aggregator.url + "/api/v2/write", data=chunks(),
            headers={"Authorization": f"Bearer {SECRET}"},
        ) as resp:  # fmt: skip
            assert resp.status == 413
        # a gzip bomb: 100 MB of line protocol in a small gzip body
        bomb = gzip.compress(big)
        async with session.post(
            aggregator.url + "/api/v2/write", data=bomb,
            headers={"Authorization": f"Bearer {SECRET}", "Content-Encoding": "gzip"},
        ) as resp:  # fmt: skip
            assert resp.status == 413
            assert "decompressed" in (await resp.json())["message"]
    assert http_ok(aggregator.url + "/healthz")


async def test_tokens_change_without_restart(aggregator: Aggregator) -> None:
    secret = "live-" + uuid.uuid4().hex
    name = f"live-{uuid.uuid4().hex[:6]}"
    rid = _rid()
    body = orjson.dumps({"resource_id": rid, "metrics": {"a": 1}})
    assert (await aggregator.post("/api/v1/push", body, token=secret))[0] == 401
    aggregator.registry.create("token", name, Token(hash=_hash(secret), resource_prefix="host:"))
    deadline = time.monotonic() + 10
    while (status := (await aggregator.post("/api/v1/push", body, token=secret))[0]) == 401:
        assert time.monotonic() < deadline, "token not picked up"
        await asyncio.sleep(0.1)
    assert status == 204
    aggregator.registry.update("token", name, Token(hash=_hash(secret), resource_prefix="net:"))
    deadline = time.monotonic() + 10
    while (status := (await aggregator.post("/api/v1/push", body, token=secret))[0]) == 204:
        assert time.monotonic() < deadline, "prefix change not picked up"
        await asyncio.sleep(0.1)
    assert status == 403
    aggregator.registry.delete("token", name)
    deadline = time.monotonic() + 10
    while (status := (await aggregator.post("/api/v1/push", body, token=secret))[0]) != 401:
        assert time.monotonic() < deadline, "token removal not picked up"
        await asyncio.sleep(0.1)


async def test_counter_sets_change_without_restart(aggregator: Aggregator) -> None:
    """A `counters` entry in the registry turns a line-protocol field into a counter, live."""
    name = f"app-{uuid.uuid4().hex[:6]}"
    metric = f"{name.replace('-', '_')}_hits"

    async def kind_of_a_push() -> MetricKind:
        host = f"cs-{uuid.uuid4().hex[:8]}"
        body = f"{name.replace('-', '_')},host={host} hits=5i".encode()
        status, _, text = await aggregator.post("/api/v2/write", body)
        assert status == 204, text
        (batch,) = await aggregator.records({host}, 1)
        return batch.samples[0].kind

    assert await kind_of_a_push() is MetricKind.GAUGE
    aggregator.registry.create("counters", name, Counters(metrics=[metric]))
    deadline = time.monotonic() + 10
    while (kind := await kind_of_a_push()) is MetricKind.GAUGE:
        assert time.monotonic() < deadline, "counter set not picked up"
    assert kind is MetricKind.COUNTER64
    aggregator.registry.delete("counters", name)
    deadline = time.monotonic() + 10
    while await kind_of_a_push() is not MetricKind.GAUGE:
        assert time.monotonic() < deadline, "counter set removal not picked up"


async def test_rate_limit_answers_429_with_retry_after(aggregator: Aggregator) -> None:
    secret = "rl-" + uuid.uuid4().hex
    name = f"rl-{uuid.uuid4().hex[:6]}"
    aggregator.registry.create("token", name, Token(hash=_hash(secret), rate_limit=5))
    rid = _rid()
    body = orjson.dumps({"resource_id": rid, "metrics": {f"m{i}": i for i in range(20)}})
    deadline = time.monotonic() + 10
    while (status := (await aggregator.post("/api/v1/push", body, token=secret))[0]) == 401:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    assert status == 204  # the first request may overdraw the bucket ...
    status, headers, _ = await aggregator.post("/api/v1/push", body, token=secret)
    assert status == 429  # ... then the token waits until it has paid it back
    assert int(headers["Retry-After"]) >= 1


async def test_self_metrics_count_accepted_rejected(aggregator: Aggregator) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.get(aggregator.url + "/metrics") as resp,
    ):
        text = await resp.text()
    assert "kemi_aggregator_samples_accepted_total" in text
    assert 'kemi_aggregator_requests_rejected_total{reason="unauthorized",token=""}' in text
    assert "kemi_aggregator_kafka_available 1.0" in text


def test_openapi_document_is_served(aggregator: Aggregator, tmp_path: Path) -> None:
    import urllib.request

    with urllib.request.urlopen(aggregator.url + "/openapi.json", timeout=5) as resp:
        doc = orjson.loads(resp.read())
    assert {"/api/v1/push", "/api/v2/write", "/write"} <= set(doc["paths"])
