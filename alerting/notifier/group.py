"""The group stage: collect a receiver's alerts by (rule, group_by labels) for ``group_wait``.

The first alert of a group opens it; everything for that group arriving within the
wait joins it; then the group is flushed as one notification holding the latest
transition of each alert. Later alerts open a new group.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from kemi_stats.model import AlertEvent

__all__ = ["Group", "Grouper", "Job", "group_key"]


@dataclass(slots=True)
class Job:
    """One alert transition for one receiver, and the ack that finishes its Kafka record."""

    event: AlertEvent
    ack: Callable[[], None]


def group_key(event: AlertEvent) -> tuple[str, dict[str, str]]:
    """The group an alert belongs to, as text, and its group labels."""
    labels = {g: event.labels.get(g, "") for g in event.group_by}
    inner = ",".join(f"{k}={v}" for k, v in labels.items())
    return f"{event.rule}{{{inner}}}", labels


@dataclass(slots=True)
class Group:
    """Alerts waiting to go out together."""

    key: str
    labels: dict[str, str]
    deadline: float
    jobs: list[Job] = field(default_factory=list)
    latest: dict[str, AlertEvent] = field(default_factory=dict)

    def add(self, job: Job) -> None:
        self.jobs.append(job)
        self.latest[job.event.fingerprint] = job.event

    def events(self) -> list[AlertEvent]:
        return list(self.latest.values())


class Grouper:
    """Open groups of one receiver."""

    def __init__(self) -> None:
        self.groups: dict[str, Group] = {}

    def add(self, job: Job, now: float, wait: float) -> None:
        key, labels = group_key(job.event)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(key, labels, now + wait)
        group.add(job)

    def next_deadline(self) -> float | None:
        return min((g.deadline for g in self.groups.values()), default=None)

    def due(self, now: float) -> list[Group]:
        """Remove and return the groups whose wait is over, oldest first."""
        ready = sorted(
            (g for g in self.groups.values() if g.deadline <= now), key=lambda g: g.deadline
        )
        for g in ready:
            del self.groups[g.key]
        return ready

    def __len__(self) -> int:
        return len(self.groups)
