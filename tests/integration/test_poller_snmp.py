"""The SNMP client and collector against real agents: snmpsim (moving counters) and Debian snmpd."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from kemi_stats.model import MetricKind, SampleBatch
from kemi_stats.registry.builtin import load_builtin_profiles
from kemi_stats.registry.models import Credential, Target
from poller.collect import TargetState, collect
from poller.errors import PollError
from poller.plan import compile_plan
from poller.snmp import SnmpClient
from tests.snmp_agents import SnmpAgent, free_udp_port, snmpd_agent, snmpsim

pytestmark = pytest.mark.integration
__all__ = ["snmpd_agent", "snmpsim"]

PROFILES = load_builtin_profiles()


@pytest.fixture
async def client() -> AsyncIterator[SnmpClient]:
    c = SnmpClient()
    yield c
    c.close()


def _target(
    agent: SnmpAgent | None, profiles: list[str], port: int | None = None, **kw: object
) -> Target:
    return Target(
        host="127.0.0.1",
        port=port or (agent.port if agent else 1),
        credential="c",
        profiles=profiles,
        timeout=kw.pop("timeout", 1.0),
        retries=kw.pop("retries", 0),
        **kw,
    )


async def _poll(
    client: SnmpClient,
    name: str,
    target: Target,
    cred: Credential,
    state: TargetState | None = None,
) -> SampleBatch:
    session = await client.session(name, target, cred)
    plan = compile_plan(name, target, PROFILES)
    async with asyncio.timeout(target.deadline):
        return await collect(name, target, plan, session, state or TargetState(), revision=7)


def _values(batch: SampleBatch, metric: str) -> dict[tuple[tuple[str, str], ...], float | int]:
    return {tuple(sorted(s.labels.items())): s.value for s in batch.samples if s.metric == metric}


async def test_snmpsim_v2c_all_builtin_profiles(snmpsim: SnmpAgent, client: SnmpClient) -> None:
    target = _target(
        snmpsim, ["system", "if-mib", "host-resources", "ucd-snmp"], labels={"site": "lab"}
    )
    cred = Credential(version="2c", community="sim-b")
    state = TargetState()
    first = await _poll(client, "sim-b", target, cred, state)
    assert first.resource_id == "sim-b"
    assert first.labels == {"site": "lab", "target": "sim-b", "sysName": "sim-b"}
    assert first.config_revision == 7
    by_metric = {s.metric: s for s in first.samples if not s.labels}
    assert by_metric["snmp_up"].value == 1
    assert by_metric["sysUpTime"].kind is MetricKind.GAUGE and by_metric["sysUpTime"].value > 0
    octets = [s for s in first.samples if s.metric == "ifHCInOctets"]
    assert len(octets) == 4
    assert {s.kind for s in octets} == {MetricKind.COUNTER64}
    eth0 = next(s for s in octets if s.labels["ifIndex"] == "1")
    assert eth0.labels == {"ifIndex": "1", "ifName": "eth0", "ifAlias": "uplink 1 of sim-b"}
    assert {s.kind for s in first.samples if s.metric == "ifInErrors"} == {MetricKind.COUNTER32}
    assert _values(first, "laLoad") == {
        (("laIndex", "1"), ("laNames", "Load-1")): 0.42,
        (("laIndex", "2"), ("laNames", "Load-5")): 0.35,
        (("laIndex", "3"), ("laNames", "Load-15")): 0.30,
    }
    assert len(_values(first, "hrProcessorLoad")) == 2
    assert ("hrStorageDescr", "Physical memory") in next(iter(_values(first, "hrStorageUsed")))
    assert {s.kind for s in first.samples if s.metric.startswith("ssCpuRaw")} == {
        MetricKind.COUNTER32
    }
    n_values = by_metric["snmp_values"].value
    assert n_values == sum(1 for s in first.samples if not s.metric.startswith("snmp_"))
    await asyncio.sleep(1.1)
    second = await _poll(client, "sim-b", target, cred, state)
    before = next(
        s.value for s in first.samples if s.metric == "ifHCInOctets" and s.labels["ifIndex"] == "1"
    )
    after = next(
        s.value for s in second.samples if s.metric == "ifHCInOctets" and s.labels["ifIndex"] == "1"
    )
    assert after - before >= 100_000, "ifHCInOctets moves at ~125 kB/s"
    # lookups are cached: the second poll walked only the value columns
    assert state.lookup_walks == 3
    assert next(s for s in second.samples if s.metric == "ifHCInOctets").labels["ifName"]


async def test_getnext_walk_matches_getbulk(snmpsim: SnmpAgent, client: SnmpClient) -> None:
    cred = Credential(version="2c", community="sim-a")
    bulk = await _poll(client, "sim-a", _target(snmpsim, ["if-mib"], max_repetitions=3), cred)
    plain = await _poll(client, "sim-a-next", _target(snmpsim, ["if-mib"], bulk=False), cred)
    for metric in ("ifOperStatus", "ifHighSpeed"):
        assert _values(bulk, metric) == _values(plain, metric)
    assert len(_values(plain, "ifHCOutOctets")) == 4


async def test_snmpd_v2c_and_v1(snmpd_agent: SnmpAgent, client: SnmpClient) -> None:
    target = _target(snmpd_agent, ["system", "if-mib", "ucd-snmp"])
    for version in ("2c", "1"):
        batch = await _poll(
            client, f"snmpd-v{version}", target, Credential(version=version, community="public")
        )
        up = _values(batch, "snmp_up")
        assert up == {(): 1}, batch
        assert _values(batch, "memTotalReal")
        kinds = {s.kind for s in batch.samples if s.metric == "ifHCInOctets"}
        # SNMPv1 has no Counter64: the agent skips those columns
        assert kinds == ({MetricKind.COUNTER64} if version == "2c" else set())
        assert any(s.labels.get("ifName") == "lo" for s in batch.samples)
        assert batch.labels["sysName"] == "kemi-snmpd"


@pytest.mark.parametrize(
    ("user", "auth", "priv"),
    [
        ("kemi-sha-aes", "SHA", "AES"),
        ("kemi-md5-des", "MD5", "DES"),
        ("kemi-sha256-aes", "SHA256", "AES128"),
        ("kemi-sha512-aes", "SHA512", "AES"),
        ("kemi-auth-only", "SHA", None),
    ],
)
async def test_snmpd_v3(
    snmpd_agent: SnmpAgent, client: SnmpClient, user: str, auth: str, priv: str | None
) -> None:
    cred = Credential.model_validate(
        {"version": "3", "user": user, "auth": auth, "auth_key": "authpass123",
         "priv": priv, "priv_key": "privpass123" if priv else None}
    )  # fmt: skip
    batch = await _poll(client, f"v3-{user}", _target(snmpd_agent, ["system", "ucd-snmp"]), cred)
    assert _values(batch, "snmp_up") == {(): 1}
    assert batch.labels["sysName"] == "kemi-snmpd"


async def _reason(client: SnmpClient, target: Target, cred: Credential) -> str:
    with pytest.raises(PollError) as info:
        await _poll(client, "broken", target, cred)
    return info.value.reason


async def test_failure_reasons_are_distinct(snmpd_agent: SnmpAgent, client: SnmpClient) -> None:
    target = _target(snmpd_agent, ["system"], timeout=0.5)
    dead = _target(None, ["system"], port=free_udp_port(), timeout=0.5)
    good_v3 = {"version": "3", "user": "kemi-sha-aes", "auth": "SHA", "auth_key": "authpass123",
               "priv": "AES", "priv_key": "privpass123"}  # fmt: skip
    reasons = await asyncio.gather(
        _reason(client, dead, Credential(version="2c", community="public")),
        _reason(client, target, Credential(version="2c", community="wrong")),
        _reason(client, target, Credential.model_validate({**good_v3, "auth_key": "wrongpass1"})),
        _reason(client, target, Credential.model_validate({**good_v3, "priv_key": "wrongpriv1"})),
        _reason(client, target, Credential.model_validate({**good_v3, "user": "nobody-here"})),
    )
    assert reasons == [
        "timeout",
        "bad_community",
        "auth_wrong_digest",
        "bad_priv_key",
        "auth_unknown_user",
    ]
    # the good credential still works on the same engine set afterwards
    ok = await _poll(client, "good", target, Credential.model_validate(good_v3))
    assert _values(ok, "snmp_up") == {(): 1}


def _shape(batch: SampleBatch) -> set[tuple[str, tuple[tuple[str, str], ...], MetricKind]]:
    return {(s.metric, tuple(sorted(s.labels.items())), s.kind) for s in batch.samples}


STEADY = ("ifOperStatus", "ifHighSpeed", "laLoad", "hrStorageSize", "memTotalReal", "snmp_up")
# snmpd reports this machine live: its load averages and cache/buffer sizes move between two
# polls a few milliseconds apart, so only the values fixed by the hardware are compared there
STEADY_ON_A_LIVE_HOST = ("ifOperStatus", "ifHighSpeed", "memTotalReal", "snmp_up")


@pytest.mark.parametrize("version", ["2c", "1"])
async def test_the_lean_path_reads_what_pysnmp_reads(
    snmpsim: SnmpAgent, snmpd_agent: SnmpAgent, client: SnmpClient, version: str
) -> None:
    """v1/v2c go through poller.ber; pysnmp (lean=False) must see the same series and values."""
    slow = SnmpClient(lean=False)
    profiles = ["system", "if-mib", "host-resources", "ucd-snmp"]
    try:
        for agent, community in ((snmpsim, "sim-c"), (snmpd_agent, "public")):
            cred = Credential(version=version, community=community)
            for reps in (1, 25):
                target = _target(agent, profiles, max_repetitions=reps)
                lean = await _poll(client, f"lean-{reps}", target, cred)
                theirs = await _poll(slow, f"pysnmp-{reps}", target, cred)
                assert _shape(lean) == _shape(theirs)
                assert lean.labels | {"target": ""} == theirs.labels | {"target": ""}
                for metric in STEADY if agent is snmpsim else STEADY_ON_A_LIVE_HOST:
                    assert _values(lean, metric) == _values(theirs, metric), metric
                assert len(lean.samples) > 20
        # each went its own way: the lean client's socket carried its polls, pysnmp the other's
        assert client.udp.transport is not None and slow.udp.transport is None
    finally:
        slow.close()


async def test_a_second_poll_of_an_unchanged_table_takes_one_walk_request(
    snmpd_agent: SnmpAgent, client: SnmpClient
) -> None:
    target = _target(snmpd_agent, ["if-mib"])
    cred = Credential(version="2c", community="public")
    plan = compile_plan("ifs", target, PROFILES)
    state = TargetState()
    counts = []
    for _ in range(3):
        session = await client.session("ifs", target, cred)
        batch = await collect("ifs", target, plan, session, state)
        counts.append(session.requests)
    # GET sysUpTime + one GETBULK; the first poll learned the rows (and walked the lookups)
    assert counts[1:] == [2, 2]
    assert len(_values(batch, "ifHCInOctets")) == len(_values(batch, "ifOperStatus")) >= 1
