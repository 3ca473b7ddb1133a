"""Alerts into Alertmanager: Debian's prometheus-alertmanager as a real process, its own webhook
to a recording receiver, and the Alertmanager webhook format checked field by field."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from click.testing import CliRunner

from alerting.notifier.send import DeliveryError, WebhookSender
from demo.receiver import RecordingReceiver
from kemi_stats.cli.main import cli
from kemi_stats.registry.models import Receiver, Rule, Silence
from kemi_stats.registry.store import Registry
from kemi_stats.settings import Settings
from kemi_stats.stack.process import spawn, stop_pid, wait_until
from kemi_stats.stack.servers import free_port, http_ok
from tests.alerting_rules import cpu_rule
from tests.integration.alerting_support import MIN, Alerts, Samples, wait_ready
from tests.servers import ServiceProcess
from tests.tls import self_signed, server_context

pytestmark = pytest.mark.integration

# Alertmanager's webhook payload and alert fields, from its documentation (version 4)
AM_WEBHOOK_FIELDS = {
    "version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels",
    "commonLabels", "commonAnnotations", "externalURL", "alerts",
}  # fmt: skip
AM_ALERT_FIELDS = {
    "status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"
}  # fmt: skip


class Alertmanager:
    """prometheus-alertmanager on a free loopback port, clustering off, its webhook to ``hook``."""

    def __init__(self, tmp: Path, hook: str) -> None:
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        if binary is None:  # a failure, not a skip: the test extra installs it
            raise RuntimeError("prometheus-alertmanager is not installed (scripts/install test)")
        self.port = free_port()
        config = {
            "route": {"receiver": "rec", "group_by": ["alertname"], "group_wait": "0s",
                      "group_interval": "1s", "repeat_interval": "1h"},
            "receivers": [{"name": "rec", "webhook_configs": [
                {"url": hook, "send_resolved": True}]}],
        }  # fmt: skip
        (tmp / "am.yml").write_text(yaml.safe_dump(config))
        self.proc = spawn(
            [binary, f"--config.file={tmp / 'am.yml'}", f"--storage.path={tmp / 'am-data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address=",
             "--log.level=warn"],
            tmp / "alertmanager.log",
        )  # fmt: skip
        self.log = tmp / "alertmanager.log"
        if not wait_until(lambda: http_ok(f"{self.url}/-/ready"), 30):
            raise RuntimeError(f"alertmanager did not start: {self.log.read_text()[-2000:]}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alerts(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=5) as resp:
            return list(json.loads(resp.read()))

    def stop(self) -> None:
        stop_pid(self.proc.pid)


@pytest.fixture
async def am_hook() -> AsyncIterator[RecordingReceiver]:
    rcv = await RecordingReceiver().start()
    yield rcv
    await rcv.stop()


@pytest.fixture
def alertmanager(tmp_path: Path, am_hook: RecordingReceiver) -> Iterator[Alertmanager]:
    am = Alertmanager(tmp_path, am_hook.url)
    yield am
    am.stop()


@pytest.fixture
async def services(alerting_env: dict[str, str], tmp_path: Path) -> AsyncIterator[ServiceProcess]:
    """The evaluator and notifier; yields the evaluator, to wait for the registry's changes."""
    evaluator = ServiceProcess("alerting.evaluator", alerting_env, tmp_path / "evaluator.log")
    notifier = ServiceProcess("alerting.notifier", alerting_env, tmp_path / "notifier.log")
    evaluator.start()
    notifier.start()
    await wait_ready(evaluator)
    yield evaluator
    notifier.stop()
    evaluator.stop()


def _mine(alerts: list[dict[str, Any]], resource: str) -> list[dict[str, Any]]:
    return [a for a in alerts if a["labels"].get("resource") == resource]


async def test_a_firing_alert_reaches_alertmanager_and_its_webhook_then_resolves(
    registry: Registry, alertmanager: Alertmanager, am_hook: RecordingReceiver,
    services: ServiceProcess, samples: Samples,
) -> None:  # fmt: skip
    dead_port = free_port()  # an HA pair whose second member is down
    registry.put("receiver", "am", Receiver(
        alertmanager_urls=[alertmanager.url, f"http://127.0.0.1:{dead_port}"],
        resend_interval=1.0, max_retries=1, backoff_initial=0.1, backoff_max=0.2))  # fmt: skip
    registry.create("rule", "cpu-high", Rule.model_validate(cpu_rule("0s", "0s", receivers=["am"])))
    await wait_ready(services, rules=1, revision=registry.revision())
    r = f"host:web-{uuid.uuid4().hex[:6]}"
    crossed = time.monotonic()
    await samples.send(r, int(time.time() * 1000), cpu_usage_pct=95)
    while not _mine(alertmanager.alerts(), r) and time.monotonic() - crossed < 10:
        await asyncio.sleep(0.05)
    took = time.monotonic() - crossed
    print(f"in Alertmanager {took:.2f} s after the crossing sample was sent")
    [alert] = _mine(alertmanager.alerts(), r)
    assert took < 5.0, f"in Alertmanager after {took:.2f} s"  # the figure is printed above
    assert {"alertname", "severity", "resource", "site"} <= alert["labels"].keys()
    assert (alert["labels"]["alertname"], alert["labels"]["severity"]) == ("cpu-high", "critical")
    assert alert["status"]["state"] == "active"
    assert "g0.expr=cpu_usage_pct" in alert["generatorURL"]

    # Alertmanager's own webhook carries it
    def fired(rs: list[Any]) -> bool:
        return any(a["status"] == "firing" for x in rs for a in _mine(x.json["alerts"], r))

    assert await am_hook.wait_for(fired, 10), alertmanager.log.read_text()[-2000:]

    # the value clears: Alertmanager marks it resolved and says so to its webhook
    await samples.send(r, int(time.time() * 1000), cpu_usage_pct=50)

    def resolved(rs: list[Any]) -> bool:
        return any(a["status"] == "resolved" for x in rs for a in _mine(x.json["alerts"], r))

    assert await am_hook.wait_for(resolved, 10), alertmanager.log.read_text()[-2000:]
    assert _mine(alertmanager.alerts(), r) == []


async def test_firing_alerts_are_sent_again_until_they_resolve(
    registry: Registry, services: ServiceProcess, samples: Samples,
) -> None:  # fmt: skip
    fake_am = await RecordingReceiver().start()  # records the posts to /api/v2/alerts
    try:
        registry.put("receiver", "am", Receiver(
            alertmanager_urls=[f"http://127.0.0.1:{fake_am.port}"], resend_interval=0.5))  # fmt: skip
        registry.create(
            "rule", "cpu-high", Rule.model_validate(cpu_rule("0s", "0s", receivers=["am"]))
        )
        await wait_ready(services, rules=1, revision=registry.revision())
        r = f"host:web-{uuid.uuid4().hex[:6]}"
        await samples.send(r, int(time.time() * 1000), cpu_usage_pct=95)
        assert await fake_am.wait_for(lambda rs: len(rs) >= 4, 10)
        assert {x.path for x in fake_am.requests} == {"/api/v2/alerts"}
        posted = [a for x in fake_am.requests for a in x.json]
        assert {a["labels"]["resource"] for a in posted} == {r}
        ends = [a["endsAt"] for a in posted]
        assert ends == sorted(ends) and len(set(ends)) > 1, "each re-send moves endsAt on"

        await samples.send(r, int(time.time() * 1000) + 1000, cpu_usage_pct=50)
        await asyncio.sleep(1.5)
        count = len(fake_am.requests)
        await asyncio.sleep(1.5)
        assert len(fake_am.requests) == count, "no re-send after the alert resolved"
        last = fake_am.requests[-1].json[0]
        assert last["endsAt"] <= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 1))
    finally:
        await fake_am.stop()


async def test_the_alertmanager_webhook_format_has_every_field(
    registry: Registry, services: ServiceProcess, samples: Samples, alerts: Alerts,
) -> None:  # fmt: skip
    hook = await RecordingReceiver(secret="S3CRET").start()
    try:
        registry.put("receiver", "am-format", Receiver(url=hook.url, format="alertmanager",
                                                       secret="S3CRET"))  # fmt: skip
        registry.create("rule", "cpu-high", Rule.model_validate(
            cpu_rule("0s", "0s", receivers=["am-format"], group_by=["site"])))  # fmt: skip
        await wait_ready(services, rules=1, revision=registry.revision())
        r = f"host:web-{uuid.uuid4().hex[:6]}"
        t0 = int(time.time() * 1000) - 10 * MIN
        await samples.send(r, t0, cpu_usage_pct=95)
        assert await hook.wait_for(lambda rs: len(rs) >= 1, 15)
        await samples.send(r, t0 + MIN, cpu_usage_pct=50)
        assert await hook.wait_for(lambda rs: len(rs) >= 2, 15)
        firing, resolved = (x.json for x in hook.requests[:2])
        for body in (firing, resolved):
            assert set(body) == AM_WEBHOOK_FIELDS
            assert body["version"] == "4"
            assert body["receiver"] == "am-format"
            assert body["groupLabels"] == {"alertname": "cpu-high", "site": "pangyo"}
            assert body["groupKey"] == '{}:{alertname="cpu-high",site="pangyo"}'
            assert body["truncatedAlerts"] == 0
            assert body["commonLabels"]["alertname"] == "cpu-high"
            for a in body["alerts"]:
                assert set(a) == AM_ALERT_FIELDS
        assert (firing["status"], resolved["status"]) == ("firing", "resolved")
        assert firing["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
        assert resolved["alerts"][0]["endsAt"] > resolved["alerts"][0]["startsAt"]
        assert all(x.signature_ok for x in hook.requests[:2])
    finally:
        await hook.stop()


def _cli(settings: Settings, *args: str) -> str:
    env = {"KEMI_ETCD_ENDPOINT": settings.etcd_endpoint, "KEMI_ETCD_PREFIX": settings.etcd_prefix}
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


async def test_a_regex_silence_suppresses_exactly_what_query_lists_until_expired(
    settings: Settings, registry: Registry, alerting_env: dict[str, str], tmp_path: Path,
    samples: Samples,
) -> None:  # fmt: skip
    hook = await RecordingReceiver().start()
    evaluator = ServiceProcess("alerting.evaluator", alerting_env, tmp_path / "evaluator.log")
    notifier = ServiceProcess("alerting.notifier", alerting_env, tmp_path / "notifier.log")
    try:
        evaluator.start()
        notifier.start()
        await wait_ready(evaluator)
        registry.put("receiver", "ops-hook", Receiver(url=hook.url))
        registry.create("rule", "cpu-high", Rule.model_validate(cpu_rule("0s", "0s")))
        await wait_ready(evaluator, rules=1, revision=registry.revision())
        tag = uuid.uuid4().hex[:4]
        for name in (f"host:web-{tag}1", f"host:db-{tag}1"):
            await samples.send(name, int(time.time() * 1000), cpu_usage_pct=95)
        assert await hook.wait_for(lambda rs: len(rs) >= 1, 10)
        await asyncio.sleep(0.5)

        matcher = f"resource=~host:web-{tag}.*"
        preview = await asyncio.to_thread(
            _cli, settings, "silence", "query", matcher, "--url", evaluator.url
        )
        assert f"host:web-{tag}1" in preview and f"host:db-{tag}1" not in preview
        assert "1 of 2 firing alert(s) match" in preview
        added = await asyncio.to_thread(
            _cli, settings, "silence", "add", matcher, "--duration", "1h"
        )
        sid = added.split()[1]
        await wait_ready(evaluator, revision=registry.revision())

        seen = len(hook.requests)
        for name in (f"host:web-{tag}2", f"host:db-{tag}2"):
            await samples.send(name, int(time.time() * 1000), cpu_usage_pct=95)
        assert await hook.wait_for(lambda rs: len(rs) > seen, 10)
        await asyncio.sleep(1.0)
        later = {a["resource"] for r in hook.requests[seen:] for a in r.json["alerts"]}
        assert later == {f"host:db-{tag}2"}

        await asyncio.to_thread(_cli, settings, "silence", "expire", sid)
        await wait_ready(evaluator, revision=registry.revision())
        seen = len(hook.requests)
        await samples.send(f"host:web-{tag}3", int(time.time() * 1000), cpu_usage_pct=95)
        assert await hook.wait_for(lambda rs: len(rs) > seen, 10), "expired at once"
        assert {a["resource"] for a in hook.requests[-1].json["alerts"]} == {f"host:web-{tag}3"}
    finally:
        notifier.stop()
        evaluator.stop()
        await hook.stop()


async def test_an_unreachable_alertmanager_is_dead_lettered_without_delaying_a_webhook(
    settings: Settings, registry: Registry, topics: dict[str, str], services: ServiceProcess,
    samples: Samples,
) -> None:  # fmt: skip
    hook = await RecordingReceiver().start()
    dead = await Alerts(settings, topics["dead"]).start()
    try:
        registry.put("receiver", "am-down", Receiver(
            alertmanager_urls=[f"http://127.0.0.1:{free_port()}"], max_retries=2,
            backoff_initial=3.0, backoff_max=3.0))  # fmt: skip
        registry.put("receiver", "ops-hook", Receiver(url=hook.url))
        registry.create("rule", "cpu-high", Rule.model_validate(
            cpu_rule("0s", "0s", receivers=["am-down", "ops-hook"])))  # fmt: skip
        await wait_ready(services, rules=1, revision=registry.revision())
        r = f"host:web-{uuid.uuid4().hex[:6]}"
        sent = time.monotonic()
        await samples.send(r, int(time.time() * 1000), cpu_usage_pct=95)
        assert await hook.wait_for(lambda rs: len(rs) >= 1, 10)
        # the dead Alertmanager takes 6 s of retries before its dead letter
        assert time.monotonic() - sent < 4.0, "the webhook waited for the dead Alertmanager"
        assert await dead.wait(lambda evs: len(evs) >= 1, 20)
        [letter] = dead.events
        assert letter.receivers == ["am-down"] and letter.resource_id == r
        assert "gave up after 3 attempt(s)" in letter.reason
    finally:
        await dead.stop()
        await hook.stop()


async def test_the_evaluator_removes_silences_past_their_retention(
    registry: Registry, alerting_env: dict[str, str], tmp_path: Path
) -> None:
    now = time.time()
    registry.create("silence", "ended-long-ago", Silence.model_validate(
        {"match": ["alertname=x"], "starts_at": now - 7200, "ends_at": now - 3600}))  # fmt: skip
    registry.create("silence", "still-on", Silence.model_validate(
        {"match": ["alertname=y"], "starts_at": now - 60, "ends_at": now + 3600}))  # fmt: skip
    env = {**alerting_env, "KEMI_ALERTING_SILENCE_RETENTION": "1800"}
    evaluator = ServiceProcess("alerting.evaluator", env, tmp_path / "evaluator.log").start()
    try:
        await wait_ready(evaluator)
        deadline = time.monotonic() + 10
        while registry.exists("silence", "ended-long-ago") and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert not registry.exists("silence", "ended-long-ago"), evaluator.log_tail()
        assert registry.exists("silence", "still-on")
        assert "silence ended-long-ago: removed" in evaluator.log_tail()
    finally:
        evaluator.stop()


async def test_receivers_trust_a_private_ca_given_by_file(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    got: list[bytes] = []

    async def alerts(request: web.Request) -> web.Response:
        got.append(await request.read())
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/api/v2/alerts", alerts)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_context(cert, key)).start()
    url = f"https://127.0.0.1:{port}/api/v2/alerts"
    try:
        async with aiohttp.ClientSession() as session:
            sender = WebhookSender(session)
            assert await sender.send("am", url, b"[]", {}, 5.0, str(cert)) == 200
            with pytest.raises(DeliveryError) as refused:
                await sender.send("am", url, b"[]", {}, 5.0)
            assert "certificate" in str(refused.value).lower()
            with pytest.raises(DeliveryError) as missing:
                await sender.send("am", url, b"[]", {}, 5.0, str(tmp_path / "nope.pem"))
            assert "cannot read CA file" in str(missing.value) and not missing.value.retryable
        assert got == [b"[]"]
    finally:
        await runner.cleanup()
