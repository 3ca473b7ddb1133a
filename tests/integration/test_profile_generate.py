"""The acceptance of ``profile generate``: a profile from Debian's UCD-SNMP-MIB, added with
``profile add -f`` and polled from a real snmpd on 127.0.0.1."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kemi_stats.registry.models import Credential, Profile, Target
from kemi_stats.registry.store import Registry
from poller.collect import TargetState, collect
from poller.plan import compile_plan
from poller.snmp import SnmpClient
from tests.cli import Cli
from tests.servers import RunningServer
from tests.snmp_agents import SnmpAgent, snmpd_agent

pytestmark = pytest.mark.integration
__all__ = ["snmpd_agent"]

UCD = Path("/usr/share/snmp/mibs/UCD-SNMP-MIB.txt")


async def test_generated_ucd_profile_is_added_and_polled(
    etcd: RunningServer,
    etcd_prefix: str,
    registry: Registry,
    snmpd_agent: SnmpAgent,
    tmp_path: Path,
) -> None:
    cli = Cli(etcd.address, etcd_prefix, KEMI_DATA_DIR=str(tmp_path / "data"))
    path = tmp_path / "ucd-gen.yaml"
    cli("profile", "generate", "ucd-gen", "--mib", "UCD-SNMP-MIB",
        "--table", "laTable", "--column", "laLoad", "--column", "laLoadInt",
        "--lookup", "laNames", "--table", "dskTable", "--column", "dskTotal",
        "--lookup", "dskPath", "--scalar", "memTotalReal", "--output-file", str(path))  # fmt: skip
    cli("profile", "add", "ucd-gen", "-f", str(path))
    # the registry holds numeric OIDs: nothing is resolved per poll
    profile = registry.get("profile", "ucd-gen").doc
    assert isinstance(profile, Profile)
    assert profile.tables[0].columns[0].oid == "1.3.6.1.4.1.2021.10.1.3"

    cred = Credential(version="2c", community="public")
    registry.put("credential", "gen-public", cred)
    cli("target", "add", "gen-snmpd", "--host", "127.0.0.1", "--port", str(snmpd_agent.port),
        "--credential", "gen-public", "--profile", "ucd-gen")  # fmt: skip
    target = registry.get("target", "gen-snmpd").doc
    assert isinstance(target, Target) and target.host == "127.0.0.1"

    client = SnmpClient()
    try:
        session = await client.session("gen-snmpd", target, cred)
        plan = compile_plan("gen-snmpd", target, {"ucd-gen": profile})
        async with asyncio.timeout(target.deadline):
            batch = await collect("gen-snmpd", target, plan, session, TargetState(), revision=1)
    finally:
        client.close()

    by_metric: dict[str, list[dict[str, str]]] = {}
    for s in batch.samples:
        by_metric.setdefault(s.metric, []).append(s.labels)
    assert [s.value for s in batch.samples if s.metric == "snmp_up"] == [1], batch
    assert {lb["laNames"] for lb in by_metric["laLoad"]} == {"Load-1", "Load-5", "Load-15"}
    assert len(by_metric["laLoadInt"]) == 3
    assert by_metric["memTotalReal"]
    assert all("dskPath" in lb for lb in by_metric.get("dskTotal", [])), by_metric
