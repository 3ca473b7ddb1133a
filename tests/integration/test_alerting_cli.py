"""The issue's CLI examples, as written, produce rules the evaluator loads; `receiver test`
sends a signed payload to a real receiver and reports the answer."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from alerting.evaluator.engine import Engine
from alerting.silences import SilenceSet
from demo.receiver import RecordingReceiver
from kemi_stats.cli.main import cli
from kemi_stats.registry.models import Receiver
from kemi_stats.registry.store import Registry
from kemi_stats.settings import Settings

pytestmark = pytest.mark.integration

SECRET = "s3cret-of-at-least-16-bytes"


def run(settings: Settings, *args: str) -> str:
    env = {"KEMI_ETCD_ENDPOINT": settings.etcd_endpoint, "KEMI_ETCD_PREFIX": settings.etcd_prefix}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_issue_examples_load_into_the_evaluator(settings: Settings, registry: Registry) -> None:
    run(settings, *["receiver", "add", "ops-hook", "--url", "https://hooks.example/kemi", "--secret", SECRET, "--timeout", "5s"])  # fmt: skip
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
    rcv = await RecordingReceiver(secret=SECRET).start()
    try:
        url = f"http://127.0.0.1:{rcv.port}/services/T0/B0/SECRETPATH?token=TOPSECRET"
        await asyncio.to_thread(
            run, settings, "receiver", "add", "hook", "--url", url, "--secret", SECRET
        )
        out = await asyncio.to_thread(run, settings, "receiver", "test", "hook")
        assert "answered HTTP 200" in out
        (req,) = rcv.requests
        assert req.signature_ok and req.json["version"] == "1" and req.json["test"] is True
        assert req.idempotency_key in out
        assert req.path == "/services/T0/B0/SECRETPATH" and req.headers["webhook-id"]
        assert f"http://127.0.0.1:{rcv.port}/…" in out and "SECRETPATH" not in out
        assert "TOPSECRET" not in out

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


def test_weak_secrets_are_refused_on_write_and_marked_in_the_list(
    settings: Settings, registry: Registry, tmp_path: Path
) -> None:
    env = {"KEMI_ETCD_ENDPOINT": settings.etcd_endpoint, "KEMI_ETCD_PREFIX": settings.etcd_prefix}

    def invoke(*args: str) -> tuple[int, str]:
        """Exit code and the error (main() prints a KemiError as one line; here it is raised)."""
        result = CliRunner().invoke(cli, list(args), env=env)
        return result.exit_code, result.output + str(result.exception or "")

    url = "https://u:p@hooks.example.com/services/T0/B0/XXXX"
    code, out = invoke("receiver", "add", "short", "--url", url, "--secret", "S3CRET")
    assert code == 1 and "--secret must have at least 16 bytes, this one has 6" in out
    assert "\n" not in out.strip() and not registry.exists("receiver", "short")
    code, out = invoke("receiver", "add", "none", "--url", url)
    assert code == 1 and "--secret is required" in out
    whsec = "whsec_" + base64.b64encode(b"k" * 12).decode()  # 12 bytes, 22 characters
    code, out = invoke("receiver", "add", "small", "--url", url, "--secret", whsec)
    assert code == 1 and "this one has 12" in out

    # stored before the rule: still loads, is listed as weak, must get a secret when changed
    registry.put("receiver", "legacy", Receiver(url=url, secret="S3CRET"))
    run(settings, "receiver", "add", "good", "--url", url, "--secret", SECRET)
    run(settings, "receiver", "add", "am", "--alertmanager-url", "http://am-1:9093")
    listed = run(settings, "receiver", "list")
    lines = {line.split()[0]: line for line in listed.splitlines()[1:]}
    assert "weak secret" in lines["legacy"]
    assert "weak secret" not in lines["good"] and "weak secret" not in lines["am"]
    assert "https://hooks.example.com/…" in lines["legacy"] and "http://am-1:9093" in lines["am"]
    shown = run(settings, "receiver", "show", "legacy")
    for leak in ("u:p", "services", "S3CRET"):
        assert leak not in listed and leak not in shown
    code, out = invoke("receiver", "update", "legacy", "--timeout", "3s")
    assert code == 1 and "stored secret is weak" in out and "--secret" in out
    run(settings, "receiver", "update", "legacy", "--secret", SECRET, "--timeout", "3s")
    assert registry.get("receiver", "legacy").doc.timeout == 3.0

    # a file made from `show` output carries the redacted URL: the stored one is kept
    show_file = tmp_path / "legacy.yaml"
    show_file.write_text(shown.replace("timeout: 5s", "timeout: 4s"))
    run(settings, "receiver", "update", "legacy", "--file", str(show_file), "--secret", SECRET)
    doc = registry.get("receiver", "legacy").doc
    assert doc.url == url and doc.secret == SECRET and doc.timeout == 4.0
