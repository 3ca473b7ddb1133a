"""The issue's CLI examples, as written, produce rules the evaluator loads; `receiver test`
sends a signed payload to a real receiver and reports the answer."""

from __future__ import annotations

import asyncio
import time

import pytest
from click.testing import CliRunner

from alerting.evaluator.engine import Engine
from alerting.silences import SilenceSet
from demo.receiver import RecordingReceiver
from kemi_stats.cli.main import cli
from kemi_stats.registry.store import Registry
from kemi_stats.settings import Settings

pytestmark = pytest.mark.integration


def run(settings: Settings, *args: str) -> str:
    env = {"KEMI_ETCD_ENDPOINT": settings.etcd_endpoint, "KEMI_ETCD_PREFIX": settings.etcd_prefix}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_issue_examples_load_into_the_evaluator(settings: Settings, registry: Registry) -> None:
    run(settings, *["receiver", "add", "ops-hook", "--url", "https://hooks.example/kemi", "--secret", "S3CRET", "--timeout", "5s"])  # fmt: skip
    run(settings, *["rule", "add", "cpu-high", "--metric", "cpu_usage_pct", "--match", "site=pangyo", "--above", "90", "--for", "2m", "--clear-below", "80", "--clear-for", "1m", "--severity", "critical", "--receiver", "ops-hook"])  # fmt: skip
    run(settings, "rule", "add", "sw-silent", "--metric", "snmp_up", "--match", "resource=~'net:.*'",
        "--below", "1", "--no-data", "3m", "--severity", "warning", "--receiver", "ops-hook")  # fmt: skip
    run(settings, "silence", "add", "--match", "resource=host:web-01", "--duration", "2h",
        "--reason", "disk swap")  # fmt: skip
    engine = Engine()
    engine.set_rules({e.name: e.doc for e in registry.list("rule")})
    assert engine.invalid_rules == {}
    cpu = engine.rules["cpu-high"].timing
    assert (cpu.for_ms, cpu.clear_for_ms, cpu.fire(91), cpu.clear(79), cpu.clear(85)) == (
        120_000, 60_000, True, True, False,
    )  # fmt: skip
    silent = engine.rules["sw-silent"]
    assert silent.timing.no_data_ms == 180_000
    assert silent.selector.matches("net:core-sw-3", {"resource": "net:core-sw-3"})
    silences = SilenceSet()
    silences.update({e.name: e.doc for e in registry.list("silence")})
    assert silences.covers({"resource": "host:web-01"}, time.time())


async def test_receiver_test_sends_a_signed_payload(settings: Settings, registry: Registry) -> None:
    rcv = await RecordingReceiver(secret="S3CRET").start()
    try:
        await asyncio.to_thread(
            run, settings, "receiver", "add", "hook", "--url", rcv.url, "--secret", "S3CRET"
        )
        out = await asyncio.to_thread(run, settings, "receiver", "test", "hook")
        assert "answered HTTP 200" in out
        (req,) = rcv.requests
        assert req.signature_ok and req.json["version"] == "1" and req.json["test"] is True
        assert req.idempotency_key in out

        rcv.respond = lambda r: 503
        env = {
            "KEMI_ETCD_ENDPOINT": settings.etcd_endpoint,
            "KEMI_ETCD_PREFIX": settings.etcd_prefix,
        }
        result = await asyncio.to_thread(
            CliRunner().invoke, cli, ["receiver", "test", "hook"], env=env
        )
        assert result.exit_code == 1 and "HTTP 503 would be retried" in result.output
    finally:
        await rcv.stop()
