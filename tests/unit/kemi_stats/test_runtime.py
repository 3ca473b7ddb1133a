"""The runtime's health pages: liveness never depends on a dependency, readiness does."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from kemi_stats.runtime import ServiceRuntime
from kemi_stats.settings import Settings

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client() -> AsyncIterator[tuple[ServiceRuntime, Client]]:
    runtime = ServiceRuntime("svc", Settings(), 0)
    async with TestClient(TestServer(runtime.app)) as c:
        yield runtime, c


async def test_a_failing_dependency_makes_it_unready_but_alive(
    client: tuple[ServiceRuntime, Client],
) -> None:
    runtime, c = client
    runtime.add_check("tsdb", lambda: (False, "writes failing for 31 s"))
    live = await c.get("/livez")
    assert live.status == 200
    assert (await live.json())["status"] == "ok"
    for path in ("/readyz", "/healthz"):
        ready = await c.get(path)
        assert ready.status == 503, path
        body = await ready.json()
        assert body["status"] == "unhealthy"
        assert body["checks"] == {"tsdb": {"ok": False, "detail": "writes failing for 31 s"}}


async def test_ready_when_every_check_passes(
    client: tuple[ServiceRuntime, Client],
) -> None:
    runtime, c = client
    runtime.add_check("kafka", lambda: (True, "partitions [0, 1]"))
    for path in ("/livez", "/readyz", "/healthz"):
        assert (await c.get(path)).status == 200, path


async def test_a_check_that_raises_is_a_failed_check(
    client: tuple[ServiceRuntime, Client],
) -> None:
    runtime, c = client

    def broken() -> tuple[bool, str]:
        raise RuntimeError("boom")

    runtime.add_check("etcd", broken)
    ready = await c.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["checks"]["etcd"] == {"ok": False, "detail": "check failed: boom"}
    assert (await c.get("/livez")).status == 200
