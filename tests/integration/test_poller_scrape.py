"""Scrape targets through the poll path as real processes: scheduler -> poll-jobs ->
worker -> metrics.raw, against prometheus_client exporters on loopback."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from kemi_stats.model import MetricKind, SampleBatch, Source
from kemi_stats.registry.models import Target
from tests.integration.test_poller_pipeline import Pipeline, pipeline
from tests.prom_peers import Exporter
from tests.tls import self_signed, server_context

pytestmark = pytest.mark.integration
__all__ = ["pipeline"]

INTERVAL = 2.0


def _value(batch: SampleBatch, metric: str) -> float | int:
    return next(s.value for s in batch.samples if s.metric == metric)


def _reason(batch: SampleBatch) -> str:
    return next((s.labels["reason"] for s in batch.samples if s.metric == "scrape_error"), "")


def _scrape_target(url: str, **fields: object) -> Target:
    return Target(scrape_url=url, interval=INTERVAL, deadline=INTERVAL, **fields)  # type: ignore[arg-type]


async def test_a_scrape_target_is_stored_with_kinds_and_goes_down_with_a_reason(
    pipeline: Pipeline,
) -> None:
    exporter = Exporter()
    exporter.requests.labels("/checkout").inc(5)
    exporter.temperature.set(21.5)
    exporter.latency.observe(0.5)
    url = f"http://{exporter.address}/metrics"
    pipeline.registry.put("target", "app", _scrape_target(
        url, resource_id="app:shop", labels={"team": "pay"}))  # fmt: skip
    pipeline.start("poller.scheduler", "scheduler")
    pipeline.start("poller.worker", "worker")
    try:
        await pipeline.wait_for(lambda: pipeline.of("app:shop"), 20, "the first scrape")
        batch = pipeline.of("app:shop")[-1]
        assert batch.source is Source.SCRAPE
        assert batch.labels == {"team": "pay", "target": "app"}
        kinds = {
            (s.metric, tuple(sorted(s.labels.items()))): (s.value, s.kind) for s in batch.samples
        }
        assert kinds[("app_requests_total", (("path", "/checkout"),))] == (
            5.0, MetricKind.FLOAT_COUNTER)  # fmt: skip
        assert kinds[("app_temperature_celsius", ())] == (21.5, MetricKind.GAUGE)
        assert kinds[("app_latency_seconds_bucket", (("le", "1.0"),))] == (
            1.0, MetricKind.FLOAT_COUNTER)  # fmt: skip
        assert kinds[("app_latency_seconds_count", ())][1] is MetricKind.FLOAT_COUNTER
        # counter + created, gauge, 3 buckets + count + sum + created
        assert _value(batch, "up") == 1 and _value(batch, "scrape_samples") == 9
        assert 0 < _value(batch, "scrape_duration_seconds") < INTERVAL
    finally:
        exporter.stop()
    stopped = time.monotonic()
    await pipeline.wait_for(
        lambda: any(_value(b, "up") == 0 for b in pipeline.of("app:shop", stopped)),
        INTERVAL + 3,
        "up=0 after the exporter stopped",
    )
    down = next(b for b in pipeline.of("app:shop", stopped) if _value(b, "up") == 0)
    assert _reason(down) == "connection"
    assert {s.metric for s in down.samples} == {
        "up", "scrape_error", "scrape_duration_seconds", "scrape_samples"}  # fmt: skip


async def test_bearer_token_wrong_token_and_sample_limit(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    exporter = Exporter(authorization="Bearer s3cret-token")
    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_text("s3cret-token\n")
    bad.write_text("wrong")
    url = f"http://{exporter.address}/metrics"
    reg = pipeline.registry
    reg.put("target", "authed", _scrape_target(url, bearer_token_file=str(good)))
    reg.put("target", "wrong", _scrape_target(url, bearer_token_file=str(bad)))
    reg.put("target", "limited", _scrape_target(url, bearer_token_file=str(good), sample_limit=3))
    reg.put("target", "nofile", _scrape_target(url, bearer_token_file=str(tmp_path / "none")))
    pipeline.start("poller.scheduler", "scheduler")
    pipeline.start("poller.worker", "worker")
    names = ("authed", "wrong", "limited", "nofile")
    try:
        await pipeline.wait_for(lambda: all(pipeline.of(n) for n in names), 20, "all scraped")
    finally:
        exporter.stop()
    assert _value(pipeline.of("authed")[0], "up") == 1
    assert [(_value(pipeline.of(n)[0], "up"), _reason(pipeline.of(n)[0])) for n in names[1:]] == [
        (0, "http_status"), (0, "sample_limit"), (0, "config")]  # fmt: skip


async def test_a_large_page_sent_in_pieces_is_read_to_its_end() -> None:
    """A page arrives in many TCP reads; the scrape reads all of it, never part of it."""
    from aiohttp import web

    from kemi_stats.codec import decode_batch
    from kemi_stats.stack.servers import free_port
    from poller.scrape import Scraper

    lines = "".join(f'big_series{{n="{i}"}} {i}.5\n' for i in range(20_000)).encode()

    async def metrics(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await resp.prepare(request)
        for start in range(0, len(lines), 7_919):  # pieces that cut lines and values
            await resp.write(lines[start : start + 7_919])
            await asyncio.sleep(0)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    scraper = Scraper()
    try:
        target = _scrape_target(f"http://127.0.0.1:{port}/metrics")
        for _ in range(2):  # read in full, then line by line
            scraped = await scraper.scrape("big", target, 1_700_000_000_000, 1)
            batch = decode_batch(scraped.value)
            values = sorted(s.value for s in batch.samples if s.metric == "big_series")
            assert values == [i + 0.5 for i in range(20_000)] and scraped.exposed == 20_000
    finally:
        await scraper.close()
        await runner.cleanup()


async def test_an_https_exporter_with_a_private_ca(tmp_path: Path) -> None:

    from aiohttp import web

    from kemi_stats.codec import decode_batch
    from kemi_stats.errors import KemiError
    from kemi_stats.stack.servers import free_port
    from poller.scrape import Scraper

    cert, key = self_signed(tmp_path)
    context = server_context(cert, key)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(text="secure_thing 1\n", content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
    scraper = Scraper()
    url = f"https://127.0.0.1:{port}/metrics"
    try:
        scraped = await scraper.scrape("tls", _scrape_target(url, ca_file=str(cert)), 1, 1)
        assert [s.metric for s in decode_batch(scraped.value).samples][-1] == "secure_thing"
        with pytest.raises(KemiError) as caught:
            await scraper.scrape("tls2", _scrape_target(url), 1, 1)
        assert caught.value.reason == "tls"  # type: ignore[attr-defined]
    finally:
        await scraper.close()
        await runner.cleanup()


async def test_basic_auth_with_the_password_in_a_file(tmp_path: Path) -> None:
    import base64

    from kemi_stats.codec import decode_batch
    from kemi_stats.errors import KemiError
    from poller.scrape import Scraper

    exporter = Exporter(authorization="Basic " + base64.b64encode(b"kemi:pa ss").decode())
    password = tmp_path / "password"
    password.write_text("pa ss\n")
    url = f"http://{exporter.address}/metrics"
    scraper = Scraper()
    try:
        target = _scrape_target(url, basic_user="kemi", basic_password_file=str(password))
        scraped = await scraper.scrape("basic", target, 1, 1)
        metrics = {s.metric for s in decode_batch(scraped.value).samples}
        assert {"up", "app_temperature_celsius", "app_latency_seconds_count"} <= metrics
        password.write_text("wrong")  # read at each scrape: a changed file applies at once
        with pytest.raises(KemiError) as caught:
            await scraper.scrape("basic", target, 1, 1)
        assert caught.value.reason == "http_status"  # type: ignore[attr-defined]
    finally:
        await scraper.close()
        exporter.stop()
