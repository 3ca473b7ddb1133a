"""Running services register themselves in etcd; ``kemi-stats services`` lists them, with
their health and partitions; a killed one drops out when its lease expires, a stopped
one at once; each service role of ``etcd setup-auth`` may register."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from kemi_stats.registry.instances import InstanceRegistration, describe, list_instances
from kemi_stats.registry.store import Registry
from kemi_stats.settings import Settings
from kemi_stats.stack.process import wait_until
from tests.cli import Cli
from tests.integration.test_etcd_security import PREFIX, SecureEtcd, secure_etcd
from tests.servers import ServiceProcess

pytestmark = pytest.mark.integration

__all__ = ["secure_etcd"]  # the module-scoped TLS etcd with users, shared with its module

TTL = 3


def _listed(cli: Cli, *args: str) -> list[dict[str, Any]]:
    proc = cli("services", "-o", "json", *args)
    return list(orjson.loads(proc.stdout))


def _poll(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """``check()`` until it returns something true; its last value otherwise fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: still {value!r} after {timeout} s"
        time.sleep(0.2)


def test_notifiers_are_listed_then_drop_out_when_killed_or_stopped(
    alerting_env: dict[str, str], settings: Settings, topics: dict[str, str], tmp_path: Path
) -> None:
    env = alerting_env | {"KEMI_REGISTRATION_TTL": str(TTL)}
    cli = Cli(settings.etcd_endpoint, settings.etcd_prefix)
    first = ServiceProcess("alerting.notifier", env, tmp_path / "first.log").start()
    second = ServiceProcess("alerting.notifier", env, tmp_path / "second.log").start()
    try:
        pids = {first.proc.pid, second.proc.pid}  # type: ignore[union-attr]

        def both_consuming() -> list[dict[str, Any]]:
            rows = _listed(cli, "--service", "notifier")
            held = sorted(p for r in rows for p in r["partitions"].get(topics["alerts"], []))
            ready = {r["pid"] for r in rows} == pids and held == [0, 1, 2]
            return rows if ready and all(r["health"] == "ok" for r in rows) else []

        rows = _poll(both_consuming, 40, "both notifiers listed, healthy, holding 3 partitions")
        for row in rows:
            assert row["name"] == "notifier"
            assert row["health_url"].endswith("/healthz") and row["metrics_url"].endswith(
                "/metrics"
            )
            assert row["instance"].endswith(f"-{row['pid']}")
            assert row["version"] and row["uptime_seconds"] >= 0
        table = cli("services", "--service", "notifier").stdout
        assert table.splitlines()[0].split() == ["SERVICE", "INSTANCE", "HOST", "PID",
                                                 "VERSION", "UPTIME", "HEALTH", "PARTITIONS"]  # fmt: skip
        assert table.count(" ok ") == 2, table

        killed = first.proc.pid  # type: ignore[union-attr]
        first.kill()
        started = time.monotonic()
        _poll(lambda: killed not in {r["pid"] for r in _listed(cli)}, TTL + 3, "killed one gone")
        assert time.monotonic() - started <= TTL + 2
        # the survivor takes every partition and says so
        _poll(
            lambda: [r["partitions"] for r in _listed(cli)] == [{topics["alerts"]: [0, 1, 2]}],
            30,
            "the survivor holds every partition",
        )

        second.stop()  # SIGTERM: the lease is revoked before the process exits
        assert _listed(cli) == []
    finally:
        first.stop()
        second.stop()


def test_an_unreachable_etcd_is_one_line(tmp_path: Path) -> None:
    from kemi_stats.stack.servers import free_port

    proc = Cli(f"127.0.0.1:{free_port()}", "/kemi/")("services", ok=False)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: etcd "), proc.stderr


@pytest.mark.parametrize("user", ["kemi-service", "kemi-scheduler", "kemi-evaluator",
                                  "kemi-console"])  # fmt: skip
async def test_every_service_role_may_register(secure_etcd: SecureEtcd, user: str) -> None:
    cfg = secure_etcd.config(user)
    settings = Settings(
        etcd_endpoint=secure_etcd.address, etcd_prefix=PREFIX, etcd_ca_file=cfg.ca_file,
        etcd_cert_file=cfg.cert_file, etcd_key_file=cfg.key_file, etcd_user=user,
        etcd_password=cfg.password, registration_ttl=TTL,  # type: ignore[arg-type]
    )  # fmt: skip
    name = f"svc-{uuid.uuid4().hex[:6]}"
    reg = InstanceRegistration(settings, describe(name, settings, 1)).start()
    operator = Registry(secure_etcd.config("kemi-operator"), PREFIX)
    try:
        assert await asyncio.to_thread(wait_until, lambda: reg.registered, 10)
        listing = await asyncio.to_thread(list_instances, operator, name)
        assert [d.name for d in listing.instances] == [name]
    finally:
        await reg.stop()
    listing = await asyncio.to_thread(list_instances, operator, name)
    assert listing.instances == []
