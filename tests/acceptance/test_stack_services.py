"""``kemi-stats services`` lists every service of a running ``kemi-stats up``, healthy, and
a killed one drops out within its lease's TTL."""

from __future__ import annotations

import os
import signal
import time

import orjson
import pytest

from kemi_stats.catalogue import available_services
from tests.acceptance.conftest import Stack

pytestmark = pytest.mark.acceptance


def test_services_lists_every_service_of_the_stack(stack: Stack) -> None:
    expected = {s.name for s in available_services()}
    deadline = time.monotonic() + 60
    while True:
        rows = orjson.loads(stack.kemi("services", "-o", "json").stdout)
        healthy = {r["name"] for r in rows if r["health"] == "ok"}
        if expected <= healthy or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert expected <= healthy, rows
    by_name = {r["name"]: r for r in rows if r["health"] == "ok"}
    # consumers say which partitions they hold; the push endpoint consumes nothing
    assert by_name["poller"]["partitions"].get("kemi.poll-jobs")
    assert by_name["aggregator"]["partitions"] == {}
    ports = {n: int(r["health_url"].rsplit(":", 1)[1].split("/")[0]) for n, r in by_name.items()}
    assert all(ports[n] == stack.ports[n] for n in expected), ports


def test_a_killed_service_drops_out_within_its_ttl(stack: Stack) -> None:
    ttl = int(stack.env["KEMI_REGISTRATION_TTL"])
    rows = orjson.loads(stack.kemi("services", "--service", "forwarder", "-o", "json").stdout)
    assert len(rows) == 1, rows
    killed = rows[0]["instance"]
    os.kill(rows[0]["pid"], signal.SIGKILL)
    started = time.monotonic()
    while killed in _instances(stack) and time.monotonic() - started < ttl + 10:
        time.sleep(0.5)
    gone_after = time.monotonic() - started
    assert killed not in _instances(stack)
    # the lease, plus etcd's second-granular expiry and a CLI start on a busy machine
    assert gone_after <= ttl + 4, gone_after
    # the supervisor restarted it: a new instance registers itself
    stack.wait_up("forwarder")
    deadline = time.monotonic() + 30
    while not _instances(stack) - {killed} and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _instances(stack) - {killed}


def _instances(stack: Stack) -> set[str]:
    rows = orjson.loads(stack.kemi("services", "--service", "forwarder", "-o", "json").stdout)
    return {r["instance"] for r in rows}
