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


def test_silences_the_amtool_way(settings: Settings, registry: Registry) -> None:
    out = run(settings, "silence", "add", "alertname=cpu-high", "resource=~host:web-.*",
              "--duration", "2h", "--comment", "disk swap")  # fmt: skip
    sid = out.split()[1]
    doc = registry.get("silence", sid).doc
    assert [str(m) for m in doc.match] == ["alertname=cpu-high", "resource=~host:web-.*"]
    assert doc.reason == "disk swap" and doc.created_by  # the user running the command
    old = run(settings, "silence", "add", "--match", "resource=host:db-1", "--duration", "1h",
              "--reason", "old names", "--created-by", "kim")  # fmt: skip
    old_id = old.split()[1]
    assert registry.get("silence", old_id).doc.created_by == "kim"

    silences = SilenceSet()
    silences.update({e.name: e.doc for e in registry.list("silence")})
    web = {"alertname": "cpu-high", "resource": "host:web-07"}
    assert silences.covers(web, time.time())
    assert not silences.covers({**web, "alertname": "disk-full"}, time.time())

    assert run(settings, "silence", "expire", old_id) == f"silence {old_id} expired\n"
    silences.update({e.name: e.doc for e in registry.list("silence")})
    assert not silences.covers({"resource": "host:db-1"}, time.time())
    listed = run(settings, "silence", "list")
    assert sid in listed and old_id not in listed
    assert old_id in run(settings, "silence", "list", "--all")

    env = {"KEMI_ETCD_ENDPOINT": settings.etcd_endpoint, "KEMI_ETCD_PREFIX": settings.etcd_prefix}
    bad = CliRunner().invoke(cli, ["silence", "add", "resource~web"], env=env)
    assert bad.exit_code == 2
    assert "matcher 'resource~web' is invalid" in bad.output
    missing = CliRunner().invoke(cli, ["silence", "expire", "nope"], env=env)
    assert missing.exit_code == 1 and "silence nope does not exist" in missing.output
