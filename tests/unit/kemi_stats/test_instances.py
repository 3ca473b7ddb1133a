"""Service instance registrations: the document, the keys, reading them back, etcd being down."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket

import orjson
import pytest
from aiokafka import TopicPartition

from kemi_stats.assignments import Assignments
from kemi_stats.cli.services_cmd import partitions_cell, uptime_cell
from kemi_stats.registry.instances import (
    Instance,
    InstanceRegistration,
    advertised_host,
    describe,
    instance_id,
    instance_key,
    parse_instances,
    services_prefix,
)
from kemi_stats.settings import Settings
from kemi_stats.stack.servers import free_port

PREFIX = "/kemi/"


def _doc(name: str = "notifier", instance: str = "host-1", **changes: object) -> Instance:
    data: dict[str, object] = {
        "name": name,
        "instance": instance,
        "host": "host",
        "pid": 1,
        "version": "0.1.0",
        "started_at": "2026-01-01T00:00:00Z",
        "health_url": "http://host:9105/healthz",
        "metrics_url": "http://host:9105/metrics",
        **changes,
    }
    return Instance.model_validate(data)


def test_keys() -> None:
    assert services_prefix(PREFIX) == "/kemi/services/"
    assert services_prefix(PREFIX, "poller") == "/kemi/services/poller/"
    assert instance_key(PREFIX, "poller", "h-12") == "/kemi/services/poller/h-12"


def test_instance_id_is_host_and_pid_safe_for_a_key() -> None:
    assert instance_id("web-1.example.com", 42) == "web-1.example.com-42"
    assert instance_id("odd/host name", 7) == "odd_host_name-7"


def test_document_of_this_process() -> None:
    settings = Settings(http_host="127.0.0.1")
    doc = describe("forwarder", settings, 9106)
    assert doc.name == "forwarder"
    assert doc.instance == instance_id()
    assert doc.host == socket.gethostname()
    assert doc.health_url == "http://127.0.0.1:9106/healthz"
    assert doc.metrics_url == "http://127.0.0.1:9106/metrics"
    assert doc.partitions == {}
    assert doc.version
    stored = orjson.loads(doc.to_json())
    assert set(stored) == {"name", "instance", "host", "pid", "version", "started_at",
                           "health_url", "metrics_url", "partitions"}  # fmt: skip
    assert Instance.model_validate(stored) == doc


def test_https_and_ipv6_urls() -> None:
    doc = describe("console", Settings(http_host="::1"), 9107, tls=True)
    assert doc.health_url == "https://[::1]:9107/healthz"


def test_advertised_host() -> None:
    assert advertised_host(Settings(http_host="10.0.0.5")) == "10.0.0.5"
    assert advertised_host(Settings(http_host="0.0.0.0")) == socket.gethostname()
    assert advertised_host(Settings(http_host="::")) == socket.gethostname()
    assert advertised_host(Settings(http_host="0.0.0.0", advertise_host="svc.lan")) == "svc.lan"


def test_urls_with_credentials_are_refused() -> None:
    with pytest.raises(ValueError, match="user info"):
        _doc(health_url="http://user:pw@host:1/healthz")


def test_parse_skips_and_reports_bad_entries() -> None:
    good = _doc("notifier", "a-1", partitions={"kemi.alerts": [0, 2]})
    other = _doc("forwarder", "b-2")
    rows = [
        (instance_key(PREFIX, "notifier", "a-1"), good.to_json()),
        (instance_key(PREFIX, "notifier", "junk-1"), b"{not json"),
        (instance_key(PREFIX, "notifier", "half-1"), b'{"name": "notifier"}'),
        (instance_key(PREFIX, "notifier", "c-3"), _doc("notifier", "other-9").to_json()),
        (instance_key(PREFIX, "forwarder", "b-2"), other.to_json()),
    ]
    listing = parse_instances(PREFIX, rows)
    assert [(d.name, d.instance) for d in listing.instances] == [
        ("forwarder", "b-2"),
        ("notifier", "a-1"),
    ]
    assert listing.instances[1].partitions == {"kemi.alerts": [0, 2]}
    assert len(listing.problems) == 3
    assert all(": skipped: " in p for p in listing.problems)
    assert listing.problems[0].startswith("/kemi/services/notifier/junk-1: ")
    assert "other-9" in listing.problems[2]
    only = parse_instances(PREFIX, rows, service="forwarder")
    assert [d.instance for d in only.instances] == ["b-2"] and not only.problems


def test_unknown_fields_are_ignored() -> None:
    data = orjson.loads(_doc().to_json()) | {"zone": "eu-1"}
    listing = parse_instances(PREFIX, [(instance_key(PREFIX, "notifier", "host-1"),
                                        orjson.dumps(data))])  # fmt: skip
    assert len(listing.instances) == 1 and not listing.problems


def test_assignments_follow_rebalances() -> None:
    board = Assignments()
    calls: list[int] = []
    board.on_change(lambda: calls.append(1))

    class Owner:
        pass

    a, b = Owner(), Owner()
    board.update(a, {TopicPartition("t", 2), TopicPartition("t", 0)})
    board.update(b, {TopicPartition("t", 1), TopicPartition("u", 0)})
    assert board.snapshot() == {"t": [0, 1, 2], "u": [0]}
    board.update(a, {TopicPartition("t", 0), TopicPartition("t", 2)})  # no change: no call
    assert len(calls) == 2
    board.update(a, ())
    assert board.snapshot() == {"t": [1], "u": [0]}
    del b
    assert board.snapshot() == {}  # a consumer that is gone holds nothing


def test_cells() -> None:
    assert partitions_cell({}) == "-"
    assert partitions_cell({"b": [5, 0, 1, 2], "a": [3]}) == "a[3] b[0-2,5]"
    assert uptime_cell(8.7) == "8s"
    assert uptime_cell(367) == "6m7s"
    assert uptime_cell(2 * 86400 + 3 * 3600 + 9) == "2d3h"
    assert _doc().uptime(dt.datetime(2026, 1, 1, 0, 1, tzinfo=dt.UTC)) == 60.0


async def test_etcd_down_never_stops_the_service_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = Settings(etcd_endpoint=f"127.0.0.1:{free_port()}", registration_ttl=3)
    reg = InstanceRegistration(settings, describe("notifier", settings, 9105))
    with caplog.at_level(logging.WARNING, "kemi_stats.instances"):
        reg.start()
        await asyncio.sleep(2.5)  # three attempts at least (every TTL/3 = 1 s)
        await asyncio.wait_for(reg.stop(), 5)
    lines = [r.getMessage() for r in caplog.records if r.name == "kemi_stats.instances"]
    assert len(lines) == 1, lines
    assert reg.key in lines[0] and "failed" in lines[0]
    assert not reg.registered


async def test_health_states() -> None:
    from aiohttp import web

    from kemi_stats.cli.services_cmd import _all_health

    bodies = {
        "/ok/healthz": (200, {"instance": "a-1", "status": "ok"}),
        "/bad/healthz": (503, {"instance": "a-1", "checks": {"kafka": {"ok": False,
                                                                       "detail": "down"}}}),
        "/other/healthz": (200, {"instance": "a-2", "status": "ok"}),
    }  # fmt: skip

    async def page(request: web.Request) -> web.Response:
        status, body = bodies[request.path]
        return web.json_response(body, status=status)

    app = web.Application()
    app.router.add_get("/{kind}/healthz", page)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        base = f"http://127.0.0.1:{port}"
        docs = [
            _doc(instance="a-1", health_url=f"{base}/{k}/healthz") for k in ("ok", "bad", "other")
        ]
        docs.append(_doc(health_url=f"http://127.0.0.1:{free_port()}/healthz"))
        assert await _all_health(docs) == [
            "ok",
            "failing: kafka: down",
            "unreachable (its port answers as a-2)",
            "unreachable",
        ]
    finally:
        await runner.cleanup()
