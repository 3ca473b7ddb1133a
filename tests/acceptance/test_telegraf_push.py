"""A newcomer's first day: Telegraf's requests, byte for byte, against ``kemi-stats up``.

Telegraf is not installable on every test machine, so these tests send exactly the
requests its ``outputs.influxdb_v2`` and ``outputs.influxdb`` (v1) plugins send (their
READMEs: paths, query parameters, headers, gzip, the v1 ``CREATE DATABASE`` call),
with a token created as the README says.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import time
import uuid
from urllib.parse import urlencode

import aiohttp
import pytest
import yaml

from tests.acceptance.conftest import Stack
from tests.acceptance.test_platform import eventually, query

pytestmark = pytest.mark.acceptance

TELEGRAF_HEADERS = {"User-Agent": "Telegraf/1.30.0 Go/1.22.1", "Content-Encoding": "gzip"}


def telegraf_body(host: str, t_ns: int, bytes_recv: int) -> bytes:
    """What Telegraf's cpu, mem and net inputs produce for one host in one interval."""
    return (
        f"cpu,cpu=cpu-total,host={host} usage_user=12.5,usage_system=3.25,usage_idle=84.25 {t_ns}\n"
        f"mem,host={host} used=4123456000i,available=12000000000i,used_percent=25.5 {t_ns}\n"
        f"net,host={host},interface=eth0 bytes_recv={bytes_recv}i,bytes_sent=1000i,"
        f"packets_recv=10i,err_in=0i,drop_in=0i {t_ns}\n"
    ).encode()


async def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as r,
    ):
        return r.status, await r.text()


def create_token(stack: Stack, name: str) -> str:
    out = stack.kemi("token", "create", name, "--resource-prefix", "host:",
                     "--resource-template", "host:{host}").stdout  # fmt: skip
    return stack.secret(out.rsplit(":", 1)[1].strip())


async def test_telegraf_v2_push_is_stored_under_host_ids_and_rates_work(stack: Stack) -> None:
    t = uuid.uuid4().hex[:6]
    host = f"web-{t}"
    name = f"telegraf-{t}"
    secret = create_token(stack, name)
    shown = yaml.safe_load(stack.kemi("token", "show", name).stdout)[name]
    assert shown["resource_template"] == "host:{host}" and shown["resource_prefix"] == "host:"
    stack.kemi("derived", "add", f"net_in_bps_{t}", "--expr", "rate(net_bytes_recv) * 8")
    await asyncio.sleep(3)  # the calculator picks the definition up live

    url = (
        stack.url("aggregator")
        + "/api/v2/write?"
        + urlencode({"bucket": "telegraf", "org": "kemi"})
    )
    headers = {**TELEGRAF_HEADERS, "Authorization": f"Token {secret}",
               "Content-Type": "text/plain; charset=utf-8"}  # fmt: skip
    t0 = time.time_ns()
    status, text = await post(url, gzip.compress(telegraf_body(host, t0, 1_000_000)), headers)
    assert status == 204, text

    # shown by `kemi-stats query NAME` with its default step within 5 s
    pushed = time.monotonic()
    series = await eventually(lambda: query(stack, "cpu_usage_user", f"host:{host}"), 5, 0.5)
    assert time.monotonic() - pushed < 5
    assert series[0]["labels"]["cpu"] == "cpu-total" and "host" not in series[0]["labels"]
    assert series[0]["points"][-1][1] == 12.5

    await asyncio.sleep(5)
    t1 = time.time_ns()
    status, text = await post(url, gzip.compress(telegraf_body(host, t1, 1_500_000)), headers)
    assert status == 204, text
    expected = 500_000 * 8 / ((t1 - t0) / 1e9)
    rate = await eventually(lambda: query(stack, f"net_in_bps_{t}", f"host:{host}"), 60)
    assert rate[0]["points"][-1][1] == pytest.approx(expected, rel=0.01)


async def test_telegraf_v1_creates_its_database_and_writes_with_basic_auth(stack: Stack) -> None:
    t = uuid.uuid4().hex[:6]
    name = f"telegraf-v1-{t}"
    secret = create_token(stack, name)
    basic = "Basic " + base64.b64encode(f"telegraf:{secret}".encode()).decode()
    base = stack.url("aggregator")
    status, text = await post(
        base + "/query",
        urlencode({"q": 'CREATE DATABASE "telegraf"'}).encode(),
        {"Authorization": basic, "Content-Type": "application/x-www-form-urlencoded",
         "User-Agent": TELEGRAF_HEADERS["User-Agent"]},
    )  # fmt: skip
    assert (status, text) == (200, '{"results":[{"statement_id":0}]}')
    headers = {
        **TELEGRAF_HEADERS,
        "Authorization": basic,
        "Content-Type": "text/plain; charset=utf-8",
    }
    url = base + "/write?" + urlencode({"db": "telegraf"})
    status, text = await post(
        url, gzip.compress(telegraf_body(f"db-{t}", time.time_ns(), 5)), headers
    )
    assert status == 204, text
    series = await eventually(lambda: query(stack, "mem_used_percent", f"host:db-{t}"), 10, 0.5)
    assert series[0]["points"][-1][1] == 25.5

    # the template changes live: a host tag alone no longer names a resource
    stack.kemi("token", "update", name, "--resource-template", "host:{hostname}")

    async def refused() -> str | None:
        body = gzip.compress(telegraf_body(f"db-{t}", time.time_ns(), 6))
        status, text = await post(url, body, headers)
        return text if status == 400 else None

    text = await eventually(refused, 10, 0.5)
    assert "line 1" in text and "no tag 'hostname'" in text
