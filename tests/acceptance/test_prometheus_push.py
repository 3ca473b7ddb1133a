"""Prometheus remote-writes a loopback exporter to ``kemi-stats up``, as the README says.

Debian's ``prometheus`` scrapes a prometheus_client exporter every second and
remote-writes with a bearer token created by the CLI; the series are stored under the
template's resource id, ``kemi-stats query`` reads them, and a ``rate()`` derived
metric over a ``_total`` counter yields the exporter's rate.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.acceptance.conftest import BUSY_RATE as RATE
from tests.acceptance.conftest import Stack
from tests.acceptance.test_platform import eventually, query
from tests.prom_peers import Exporter, prometheus

pytestmark = pytest.mark.acceptance


async def test_prometheus_remote_write_is_stored_queryable_and_rated(
    stack: Stack, busy_exporter: Exporter, tmp_path: Path
) -> None:
    t = uuid.uuid4().hex[:6]
    out = stack.kemi("token", "create", f"prom-{t}", "--resource-prefix", f"prom-{t}:",
                     "--resource-template", f"prom-{t}:{{instance|noport}}").stdout  # fmt: skip
    secret = stack.secret(out.rsplit(":", 1)[1].strip())
    stack.kemi("derived", "add", f"app_rps_{t}", "--expr", "rate(app_requests_total)")
    rid = f"prom-{t}:127.0.0.1"
    url = stack.url("aggregator") + "/api/v1/write"
    with prometheus(tmp_path, busy_exporter.address, "shop", url, secret):
        series = await eventually(lambda: query(stack, "app_requests_total", rid), 60)
        assert series[0]["labels"]["path"] == "/checkout" and series[0]["labels"]["job"] == "shop"
        rps = await eventually(lambda: query(stack, f"app_rps_{t}", rid), 60)
    # the rate over one 1 s scrape interval: within the exporter's 0.1 s steps and jitter
    assert rps[0]["points"][-1][1] == pytest.approx(RATE, rel=0.3)
