"""InfluxDB's own clients, unchanged, against the aggregator: ping, health, query, write.

InfluxDB 1.x's Python client (``influxdb``: the password carries the token) and
influxdb-client (2.x API) are the real packages, talking to a real aggregator process.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from urllib.parse import urlsplit

import aiohttp
import pytest
from influxdb import InfluxDBClient as InfluxV1Client
from influxdb.exceptions import InfluxDBClientError
from influxdb_client import InfluxDBClient

from tests.integration.test_aggregator_push import SECRET, Aggregator, aggregator

pytestmark = pytest.mark.integration
__all__ = ["aggregator"]  # the module-scoped aggregator process


def v1_client(agg: Aggregator, password: str = SECRET) -> InfluxV1Client:
    url = urlsplit(agg.url)
    return InfluxV1Client(
        host=url.hostname, port=url.port, username="telegraf", password=password, database="kemi"
    )


async def test_head_and_get_ping_answer_204_with_a_version(aggregator: Aggregator) -> None:
    async with aiohttp.ClientSession() as session:
        for method in ("HEAD", "GET"):
            async with session.request(method, aggregator.url + "/ping") as resp:
                assert resp.status == 204
                assert resp.headers["X-Influxdb-Version"].startswith("kemi-stats-")


def test_influxdb_v1_client_pings_creates_its_database_and_writes(aggregator: Aggregator) -> None:
    host = f"v1c-{uuid.uuid4().hex[:8]}"
    client = v1_client(aggregator)
    assert client.ping().startswith("kemi-stats-")
    client.create_database("kemi")  # succeeds and does nothing
    assert client.get_list_database() == []
    now_s = int(time.time())
    points = [
        {"measurement": "cpu", "tags": {"host": host, "cpu": "cpu0"},
         "fields": {"usage_user": 12.5}, "time": now_s},
        {"measurement": "net", "tags": {"host": host, "interface": "eth0"},
         "fields": {"bytes_recv": 1234}, "time": now_s},
    ]  # fmt: skip
    assert client.write_points(points, time_precision="s") is True
    (batch,) = asyncio.run(aggregator.records({host}, 1))
    assert batch.time_ms == now_s * 1000
    samples = {s.metric: s for s in batch.samples}
    assert samples["cpu_usage_user"].value == 12.5 and samples["cpu_usage_user"].labels == {
        "cpu": "cpu0"
    }
    # net bytes_recv is one of the built-in Telegraf counters
    assert samples["net_bytes_recv"].kind.name == "COUNTER64"


def test_influxdb_v1_client_errors_are_clear(aggregator: Aggregator) -> None:
    with pytest.raises(InfluxDBClientError) as info:
        v1_client(aggregator).query("SELECT * FROM cpu")
    assert info.value.code == 400
    assert "only ingests" in str(info.value.content)
    with pytest.raises(InfluxDBClientError) as info:
        v1_client(aggregator, password="wrong").write_points(
            [{"measurement": "m", "tags": {"host": "h"}, "fields": {"v": 1}}]
        )
    assert info.value.code == 401


def test_influxdb_client_ping_health_and_version(aggregator: Aggregator) -> None:
    with InfluxDBClient(url=aggregator.url, token=SECRET, org="kemi") as client:
        assert client.ping() is True
        assert client.version().startswith("kemi-stats-")
        health = client.health()
        assert health.status == "pass"
        assert {c.name for c in health.checks} == {"registry", "kafka"}
