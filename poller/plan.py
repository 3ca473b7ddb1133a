"""A target's poll plan: its profiles compiled once into the OIDs to GET and the columns to walk.

Compiled when the target or one of its profiles changes, never per poll. sysUpTime is
in every plan (it tells a reboot from a counter wrap downstream).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kemi_stats.registry.models import Profile, Target
from poller.errors import PollError

__all__ = ["SYS_UPTIME_OID", "ColumnSpec", "PollPlan", "ScalarSpec", "TableSpec", "compile_plan"]

SYS_UPTIME_OID = "1.3.6.1.2.1.1.3.0"


@dataclass(frozen=True, slots=True)
class ScalarSpec:
    """One GET OID and the metric it becomes."""

    metric: str
    oid: str
    counter: bool
    scale: float


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One table column and the metric each of its rows becomes."""

    metric: str
    oid: str
    counter: bool
    scale: float


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A table walk: value columns, and lookup columns cached between polls."""

    key: str
    index_label: str
    columns: tuple[ColumnSpec, ...]
    lookups: tuple[tuple[str, str], ...]
    lookup_refresh: int


@dataclass(frozen=True, slots=True)
class PollPlan:
    """Everything one poll of a target asks for."""

    scalars: tuple[ScalarSpec, ...]
    tables: tuple[TableSpec, ...]

    @property
    def oid_count(self) -> int:
        return len(self.scalars) + sum(len(t.columns) for t in self.tables)


def _instance(oid: str) -> str:
    # profile scalars name the object; GET needs the instance
    return oid if oid.endswith(".0") else oid + ".0"


def compile_plan(name: str, target: Target, profiles: Mapping[str, Profile]) -> PollPlan:
    """The plan of target ``name``; raise PollError(config) if it names a missing profile."""
    scalars: dict[str, ScalarSpec] = {
        SYS_UPTIME_OID: ScalarSpec("sysUpTime", SYS_UPTIME_OID, False, 1.0)
    }
    tables: list[TableSpec] = []
    metrics = {"sysUpTime"}
    for pname in target.profiles:
        profile = profiles.get(pname)
        if profile is None:
            raise PollError(name, "config", f"profile {pname} does not exist (or is invalid)")
        for s in profile.scalars:
            oid = _instance(s.oid)
            if oid in scalars or s.name in metrics:
                continue  # the first profile that asks for an OID or a metric name wins
            scalars[oid] = ScalarSpec(s.name, oid, s.type == "counter", s.scale)
            metrics.add(s.name)
        for t in profile.tables:
            columns = tuple(
                ColumnSpec(c.name, c.oid, c.type == "counter", c.scale)
                for c in t.columns
                if c.name not in metrics
            )
            metrics.update(c.metric for c in columns)
            if columns:
                tables.append(
                    TableSpec(
                        key=f"{pname}/{t.name}",
                        index_label=t.index_label,
                        columns=columns,
                        lookups=tuple((lk.label, lk.oid) for lk in t.lookups),
                        lookup_refresh=t.lookup_refresh,
                    )
                )
    return PollPlan(tuple(scalars.values()), tuple(tables))
