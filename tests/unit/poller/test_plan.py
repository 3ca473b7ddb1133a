"""Compiling targets and profiles into poll plans."""

from __future__ import annotations

import pytest

from kemi_stats.registry.builtin import BUILTIN_PROFILES, load_builtin_profiles
from kemi_stats.registry.models import Profile, Target
from poller.errors import PollError
from poller.plan import SYS_UPTIME_OID, compile_plan

PROFILES = load_builtin_profiles()


def _target(*profiles: str) -> Target:
    return Target(host="127.0.0.1", credential="c", profiles=list(profiles))


def test_builtin_profiles_load_and_cover_the_mibs() -> None:
    assert tuple(PROFILES) == BUILTIN_PROFILES
    ifmib = PROFILES["if-mib"].tables[0]
    assert [lk.label for lk in ifmib.lookups] == ["ifName", "ifAlias"]
    assert {c.name for c in ifmib.columns} >= {
        "ifHCInOctets",
        "ifHCOutOctets",
        "ifOperStatus",
        "ifHighSpeed",
    }


def test_sysuptime_is_always_first_and_not_duplicated() -> None:
    plan = compile_plan("t", _target("system", "ucd-snmp"), PROFILES)
    assert plan.scalars[0].oid == SYS_UPTIME_OID
    assert [s.oid for s in plan.scalars].count(SYS_UPTIME_OID) == 1
    assert all(s.oid.endswith(".0") for s in plan.scalars)
    plan = compile_plan("t", _target("if-mib"), PROFILES)
    assert [s.metric for s in plan.scalars] == ["sysUpTime"]
    assert plan.tables[0].key == "if-mib/ifXTable"
    assert plan.oid_count == 11


def test_missing_profile_is_a_config_error_naming_it() -> None:
    with pytest.raises(PollError) as info:
        compile_plan("core-sw-1", _target("system", "nope"), PROFILES)
    assert info.value.reason == "config"
    assert "nope" in str(info.value) and "core-sw-1" in str(info.value)


def test_first_profile_wins_for_a_metric_name() -> None:
    extra = Profile(scalars=[{"name": "memTotalReal", "oid": "1.3.6.1.4.1.9.9.1"}])
    plan = compile_plan("t", _target("ucd-snmp", "extra"), {**PROFILES, "extra": extra})
    assert [s.oid for s in plan.scalars if s.metric == "memTotalReal"] == ["1.3.6.1.4.1.2021.4.5.0"]
