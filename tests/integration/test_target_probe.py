"""``kemi-stats target test`` and ``target walk`` against snmpsim and Debian snmpd, next to
the real poller (scheduler and worker processes): the command prints what the poller
stores, fails with the poller's reason, and a profile generated from Debian's
UCD-SNMP-MIB is polled and stored."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest

from kemi_stats.model import SampleBatch
from kemi_stats.registry.models import Credential, Profile, Target
from kemi_stats.registry.store import Registry
from tests.cli import Cli
from tests.integration.poller_support import Pipeline, pipeline, reason_of, up_of
from tests.servers import RunningServer
from tests.snmp_agents import SnmpAgent, snmpd_agent, snmpsim

pytestmark = pytest.mark.integration
__all__ = ["pipeline", "snmpd_agent", "snmpsim"]

INTERVAL = 3.0
WRONG_DEADLINE = 8.0
#: values that differ between two polls of the same agent
MOVING = {"sysUpTime", "snmp_poll_duration_seconds"}


def _series(samples: list[dict[str, object]]) -> dict[tuple[str, str], tuple[str, object]]:
    """(metric, labels) -> (kind, value) of printed or stored samples."""
    return {
        (str(s["metric"]), orjson.dumps(s["labels"], option=orjson.OPT_SORT_KEYS).decode()): (
            str(s["kind"]),
            s["value"],
        )
        for s in samples
    }


def _stored(batch: SampleBatch) -> list[dict[str, object]]:
    return [
        {"metric": s.metric, "labels": s.labels, "kind": s.kind.value, "value": s.value}
        for s in batch.samples
    ]


def _target(
    registry: Registry,
    name: str,
    port: int,
    credential: str,
    profiles: list[str],
    interval: float = INTERVAL,
    retries: int = 1,
) -> None:
    registry.put(
        "target",
        name,
        Target(host="127.0.0.1", port=port, credential=credential, profiles=profiles,
               interval=interval, deadline=interval, timeout=1.0, retries=retries,
               labels={"site": "pangyo"}),
    )  # fmt: skip


async def test_target_test_prints_what_the_poller_stores(
    pipeline: Pipeline,
    snmpsim: SnmpAgent,
    snmpd_agent: SnmpAgent,
    etcd: RunningServer,
    tmp_path: Path,
) -> None:
    registry, prefix = pipeline.registry, pipeline.settings.etcd_prefix
    cli = Cli(etcd.address, prefix, KEMI_DATA_DIR=str(tmp_path / "data"))
    registry.put("credential", "sim-a", Credential(version="2c", community="sim-a"))
    registry.put("credential", "public", Credential(version="2c", community="public"))
    registry.put("credential", "wrong", Credential(version="2c", community="not-this-one"))
    # a profile generated from Debian's own MIB files, offline, and added as a user would
    generated = tmp_path / "ucd.yaml"
    cli("profile", "generate", "ucd-gen", "--mib", "UCD-SNMP-MIB",
        "--table", "laTable", "--column", "laLoadInt", "--lookup", "laNames",
        "--table", "dskTable", "--column", "dskTotal", "--column", "dskUsed",
        "--lookup", "dskPath", "--scalar", "memTotalReal", "--output-file", str(generated))  # fmt: skip
    cli("profile", "add", "ucd-gen", "-f", str(generated))
    # the registry holds numeric OIDs: nothing is resolved per poll
    profile = registry.get("profile", "ucd-gen").doc
    assert isinstance(profile, Profile)
    assert [t.columns[0].oid for t in profile.tables] == [
        "1.3.6.1.4.1.2021.10.1.5",  # laLoadInt
        "1.3.6.1.4.1.2021.9.1.6",  # dskTotal
    ]
    assert [s.oid for s in profile.scalars] == ["1.3.6.1.4.1.2021.4.5"]  # memTotalReal
    _target(registry, "sim-a", snmpsim.port, "sim-a", ["if-mib", "system"])
    _target(registry, "snmpd-ucd", snmpd_agent.port, "public", ["ucd-gen", "system"])
    # telling a wrong community from a dead agent takes a probe after the timeout: give
    # it room on a busy machine
    _target(registry, "snmpd-wrong", snmpd_agent.port, "wrong", ["system"], WRONG_DEADLINE, 0)
    pipeline.start("poller.scheduler", "scheduler")
    pipeline.start("poller.worker", "worker")
    targets = ("sim-a", "snmpd-ucd", "snmpd-wrong")
    await pipeline.wait_for(lambda: all(pipeline.of(t) for t in targets), 40, "first polls")

    # the generated profile was polled and stored: UCD's load table and the root disk
    stored = pipeline.of("snmpd-ucd")[-1]
    assert up_of(stored) == 1, stored
    by_metric: dict[str, list[dict[str, str]]] = {}
    for s in stored.samples:
        by_metric.setdefault(s.metric, []).append(s.labels)
    assert {lb["laNames"] for lb in by_metric["laLoadInt"]} == {"Load-1", "Load-5", "Load-15"}
    assert [lb["dskPath"] for lb in by_metric["dskTotal"]] == ["/"]
    assert len(by_metric["memTotalReal"]) == 1

    for name in ("sim-a", "snmpd-ucd"):
        printed = orjson.loads(cli("target", "test", name, "-o", "json").stdout)
        batch = [b for b in pipeline.of(name) if up_of(b) == 1][-1]
        assert printed["resource_id"] == batch.resource_id == name
        assert printed["labels"] == batch.labels
        assert printed["requests"] >= 1
        ours, theirs = _series(printed["samples"]), _series(_stored(batch))
        assert ours.keys() == theirs.keys(), name
        assert {k: v[0] for k, v in ours.items()} == {k: v[0] for k, v in theirs.items()}
        # counters move between two polls; what cannot move is equal
        steady = [k for k, (kind, _) in theirs.items() if kind == "gauge" and k[0] not in MOVING]
        steady = [k for k in steady if not k[0].startswith(("laLoad", "dskUsed", "memAvail"))]
        assert steady, name
        assert {k: ours[k] for k in steady} == {k: theirs[k] for k in steady}, name

    table = cli("target", "test", "sim-a").stdout
    assert "ifHCInOctets" in table and "ifName=eth0" in table

    # a wrong community: the poller's reason, within the target's deadline
    assert reason_of(pipeline.of("snmpd-wrong")[-1]) == "bad_community"
    started = time.monotonic()
    failed = cli("target", "test", "snmpd-wrong", ok=False)
    took = time.monotonic() - started
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: target snmpd-wrong: bad_community: ")
    assert took < WRONG_DEADLINE + 5, took  # the deadline, plus starting a Python process

    # an unregistered device: --host, --credential, --profile
    adhoc = cli("target", "test", "--host", "127.0.0.1", "--port", str(snmpd_agent.port),
                "--credential", "public", "--profile", "system", "-o", "json")  # fmt: skip
    doc = orjson.loads(adhoc.stdout)
    assert doc["labels"]["sysName"] == "kemi-snmpd"
    missing = cli("target", "test", "--host", "127.0.0.1", "--credential", "nope",
                  "--profile", "system", ok=False)  # fmt: skip
    assert missing.returncode == 1 and "credential 'nope' does not exist" in missing.stderr


async def test_target_walk_lists_a_subtree_with_names(
    registry: Registry,
    snmpsim: SnmpAgent,
    snmpd_agent: SnmpAgent,
    etcd: RunningServer,
    etcd_prefix: str,
    tmp_path: Path,
) -> None:
    cli = Cli(etcd.address, etcd_prefix, KEMI_DATA_DIR=str(tmp_path / "data"))
    registry.put("credential", "sim-a", Credential(version="2c", community="sim-a"))
    registry.put("credential", "public", Credential(version="2c", community="public"))
    _target(registry, "sim-a", snmpsim.port, "sim-a", ["if-mib"])
    rows = orjson.loads(
        cli("target", "walk", "sim-a", "1.3.6.1.2.1.31.1.1.1.1", "-o", "json").stdout
    )
    assert [(r["name"], r["type"], r["value"]) for r in rows] == [
        (f"ifName.{i}", "string", f"eth{i - 1}") for i in range(1, 5)
    ]
    # a name from a MIB file, and the whole of mib-2 by default
    load = cli("target", "walk", "--host", "127.0.0.1", "--port", str(snmpd_agent.port),
               "--credential", "public", "UCD-SNMP-MIB::laNames", "--mib", "UCD-SNMP-MIB",
               "-o", "csv").stdout  # fmt: skip
    assert load.splitlines() == [
        "oid,name,type,value",
        "1.3.6.1.4.1.2021.10.1.2.1,laNames.1,string,Load-1",
        "1.3.6.1.4.1.2021.10.1.2.2,laNames.2,string,Load-5",
        "1.3.6.1.4.1.2021.10.1.2.3,laNames.3,string,Load-15",
    ]
    everything = cli("target", "walk", "--host", "127.0.0.1", "--port", str(snmpd_agent.port),
                     "--credential", "public")  # fmt: skip
    assert "sysName.0" in everything.stdout and "objects under 1.3.6.1.2.1" in everything.stderr
    # a leaf is read, as snmpwalk does; a registered target's fields can be overridden
    leaf = cli("target", "walk", "sim-a", "sysUpTime.0", "-o", "json").stdout
    assert [r["name"] for r in orjson.loads(leaf)] == ["sysUpTime.0"]
    moved = cli("target", "walk", "sim-a", "--host", "127.0.0.1", "1.3.6.1.2.1.1.3", "-o", "json")
    assert len(orjson.loads(moved.stdout)) == 1
    bad = cli("target", "walk", "sim-a", "noSuchThing", ok=False)
    assert bad.returncode == 1 and "'noSuchThing' is not an OID" in bad.stderr
