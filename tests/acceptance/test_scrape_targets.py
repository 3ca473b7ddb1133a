"""A /metrics scrape target on ``kemi-stats up``, added with the CLI as the README says.

A prometheus_client exporter on loopback is scraped every second by the poll workers;
its series are stored under the target's resource id with the right kinds, a ``rate()``
derived metric over its ``_total`` counter yields the exporter's rate, and stopping the
exporter gives ``up=0`` with the reason.
"""

from __future__ import annotations

import uuid

import pytest

from tests.acceptance.conftest import BUSY_RATE as RATE
from tests.acceptance.conftest import Stack
from tests.acceptance.test_platform import eventually, query
from tests.prom_peers import Exporter

pytestmark = pytest.mark.acceptance


async def test_a_scraped_exporter_is_stored_rated_and_reported_down(
    stack: Stack, busy_exporter: Exporter
) -> None:
    t = uuid.uuid4().hex[:6]
    rid = f"scrape-{t}:shop"
    stack.kemi("target", "add", f"shop-{t}", "--scrape-url",
               f"http://{busy_exporter.address}/metrics", "--interval", "1s", "--deadline", "1s",
               "--resource-id", rid, "--label", "team=pay")  # fmt: skip
    shown = stack.kemi("target", "show", f"shop-{t}").stdout
    assert f"http://{busy_exporter.address}/metrics" in shown
    bad = stack.kemi("target", "add", f"bad-{t}", "--host", "127.0.0.1", ok=False)
    assert bad.returncode != 0 and "credential" in bad.stderr
    stack.kemi("derived", "add", f"shop_rps_{t}", "--expr", "rate(app_requests_total)")

    series = await eventually(lambda: query(stack, "app_requests_total", rid), 60)
    assert series[0]["labels"]["path"] == "/checkout" and series[0]["labels"]["team"] == "pay"
    rps = await eventually(lambda: query(stack, f"shop_rps_{t}", rid), 60)
    # the rate over one 1 s scrape interval: within the exporter's 0.1 s steps and jitter
    assert rps[0]["points"][-1][1] == pytest.approx(RATE, rel=0.3)
    up = await query(stack, "up", rid)
    assert up[0]["points"][-1][1] == 1

    busy_exporter.stop()

    async def down() -> list[dict[str, object]]:
        errors = await query(stack, "scrape_error", rid, since="1m")
        return [e for e in errors if e["labels"].get("reason") == "connection"]  # type: ignore[union-attr]

    await eventually(down, 30)


async def test_the_platform_scrapes_its_own_services(stack: Stack) -> None:
    """``kemi-stats up`` registers every service's /metrics; their series are stored."""
    listed = stack.kemi("target", "list", "-o", "json").stdout
    services = ("poller-scheduler", "poller", "aggregator", "calculator", "alert-evaluator",
                "notifier", "forwarder")  # fmt: skip
    for name in services:
        assert f"kemi-self-{name}" in listed

    async def all_up() -> bool:
        for name in services:
            up = await query(stack, "up", f"kemi:{name}", since="2m")
            if not up or up[0]["points"][-1][1] != 1:
                return False
        return True

    await eventually(all_up, 2 * 15 + 20, every=2)
    polls = await query(stack, "kemi_poller_polls_total", "kemi:poller", since="2m")
    assert {s["labels"]["result"] for s in polls} >= {"ok"}
    assert all(s["labels"]["component"] == "poller" for s in polls)
