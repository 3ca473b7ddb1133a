"""Building SampleBatches from SNMP values, with a fake session."""

from __future__ import annotations

from collections.abc import Sequence

from kemi_stats.model import MetricKind
from kemi_stats.registry.builtin import load_builtin_profiles
from kemi_stats.registry.models import Target
from poller.collect import TargetState, collect, failure_batch, to_sample
from poller.plan import compile_plan
from poller.snmp import SnmpValue

PROFILES = load_builtin_profiles()
IF_NAME, IF_ALIAS = "1.3.6.1.2.1.31.1.1.1.1", "1.3.6.1.2.1.31.1.1.1.18"


class FakeSession:
    def __init__(self, rows: int = 2) -> None:
        self.rows = rows
        self.walked: list[list[str]] = []

    async def get(self, oids: Sequence[str]) -> list[SnmpValue | None]:
        out: list[SnmpValue | None] = []
        for oid in oids:
            if oid == "1.3.6.1.2.1.1.3.0":
                out.append(("gauge", 12345))
            elif oid == "1.3.6.1.2.1.1.5.0":
                out.append(("string", "core-sw-1"))
            else:
                out.append(None)
        return out

    async def walk(self, roots: Sequence[str]) -> dict[str, list[tuple[str, SnmpValue]]]:
        self.walked.append(list(roots))
        result: dict[str, list[tuple[str, SnmpValue]]] = {}
        for root in roots:
            rows: list[tuple[str, SnmpValue]] = []
            for i in range(1, self.rows + 1):
                if root == IF_NAME:
                    rows.append((str(i), ("string", f"ge-0/0/{i}")))
                elif root == IF_ALIAS:
                    rows.append((str(i), ("string", f"to core {i}")))
                elif root.endswith(".6") or root.endswith(".10"):
                    rows.append((str(i), ("counter64", 2**40 + i)))
                else:
                    rows.append((str(i), ("gauge", i)))
            result[root] = rows
        return result


async def test_batch_has_values_labels_and_health_samples() -> None:
    target = Target(host="10.0.0.1", credential="c", profiles=["system", "if-mib"],
                    resource_id="net:core-sw-1", labels={"site": "pangyo"})  # fmt: skip
    plan = compile_plan("core-sw-1", target, PROFILES)
    state = TargetState()
    batch = await collect("core-sw-1", target, plan, FakeSession(), state, revision=9)
    assert batch.resource_id == "net:core-sw-1"
    assert batch.config_revision == 9
    assert batch.labels == {"site": "pangyo", "target": "core-sw-1", "sysName": "core-sw-1"}
    octets = [s for s in batch.samples if s.metric == "ifHCInOctets"]
    assert [s.labels for s in octets] == [
        {"ifIndex": "1", "ifName": "ge-0/0/1", "ifAlias": "to core 1"},
        {"ifIndex": "2", "ifName": "ge-0/0/2", "ifAlias": "to core 2"},
    ]
    assert {s.kind for s in octets} == {MetricKind.COUNTER64}
    # a column the profile calls a counter that comes as a plain integer is a counter64
    assert {s.kind for s in batch.samples if s.metric == "ifInErrors"} == {MetricKind.COUNTER64}
    assert {s.kind for s in batch.samples if s.metric == "ifOperStatus"} == {MetricKind.GAUGE}
    tail = {s.metric: s.value for s in batch.samples[-3:]}
    assert tail["snmp_up"] == 1 and tail["snmp_values"] == 1 + 10 * 2
    assert any(s.metric == "sysUpTime" and s.value == 12345 for s in batch.samples)


async def test_lookups_are_cached_and_refreshed_every_n_polls_or_on_new_rows() -> None:
    target = Target(host="10.0.0.1", credential="c", profiles=["if-mib"])
    plan = compile_plan("sw", target, PROFILES)
    session, state = FakeSession(), TargetState()
    for _ in range(10):
        await collect("sw", target, plan, session, state)
    assert state.lookup_walks == 1
    assert all(IF_NAME not in roots for roots in session.walked[1:])
    await collect("sw", target, plan, session, state)  # the 11th poll: lookup_refresh is 10
    assert state.lookup_walks == 2
    session.rows = 3  # an interface appeared
    batch = await collect("sw", target, plan, session, state)
    assert state.lookup_walks == 3
    assert {s.labels.get("ifName") for s in batch.samples if s.metric == "ifHCInOctets"} == {
        "ge-0/0/1", "ge-0/0/2", "ge-0/0/3"
    }  # fmt: skip


def test_to_sample_kinds_and_strings() -> None:
    s = to_sample("x", ("counter32", 5), False, 1.0, {})
    assert not isinstance(s, str) and s.kind is MetricKind.COUNTER32
    s = to_sample("laLoad", ("string", "0.42"), False, 1.0, {})
    assert not isinstance(s, str) and s.value == 0.42
    assert to_sample("sysName", ("string", "sw-1"), False, 1.0, {}) == "sw-1"
    s = to_sample("g", ("gauge", 10), False, 0.5, {})
    assert not isinstance(s, str) and s.value == 5.0
    s = to_sample("c", ("counter64", 10), True, 0.5, {})
    assert not isinstance(s, str) and s.value == 10, "counters are never scaled"


def test_failure_batch() -> None:
    target = Target(host="10.0.0.1", credential="c", profiles=["system"])
    batch = failure_batch("sw", target, "timeout", 2.0, 1000, 3)
    values = {(s.metric, tuple(s.labels.items())): s.value for s in batch.samples}
    assert values == {
        ("snmp_up", ()): 0,
        ("snmp_poll_error", (("reason", "timeout"),)): 1,
        ("snmp_poll_duration_seconds", ()): 2.0,
        ("snmp_values", ()): 0,
    }
