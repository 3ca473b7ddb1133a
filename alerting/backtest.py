"""Would a rule have fired? Replays stored history through the evaluator's own engine.

The stored samples of the rule's metric go through :class:`~alerting.evaluator.engine.Engine`
in time order, one batch per stored point, exactly as live samples do: ``for``,
hysteresis (``clear``/``clear_for``) and no-data come from the same state machine, so
there is no second implementation of the semantics to drift. The clock the no-data timers
run on is the replay's: the engine is ticked at the moment each series' no-data would run
out (and at the end), so a backtest reports no-data at ``last sample + no_data`` where the
live evaluator reports it at its next tick after that (within ``evaluation_tick``).

Stored points carry the batch's and the sample's labels merged, so a replayed series is
keyed by all of them; alert labels and times are the live ones, fingerprints may differ.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from alerting.evaluator.engine import Engine
from kemi_stats.model import AlertEvent, Sample, SampleBatch, Source
from kemi_stats.registry.models import Rule
from kemi_stats.tsdb.mapping import RESOURCE_TAG
from kemi_stats.tsdb.series import Series

__all__ = ["Backtest", "Episode", "backtest"]


@dataclass(slots=True)
class Episode:
    """One time an alert of the rule fired on one series, and when it resolved (0: it did not);
    both are the event times of the transitions, as the live evaluator's history has them."""

    resource: str
    labels: dict[str, str]
    kind: str
    fired_ms: int
    resolved_ms: int = 0
    value: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "resource": self.resource, "labels": self.labels, "kind": self.kind,
            "fired_ms": self.fired_ms, "resolved_ms": self.resolved_ms or None,
            "value": self.value,
        }  # fmt: skip


@dataclass(slots=True)
class Backtest:
    """What a replay found: every transition, the firing episodes, how much it read."""

    rule: str
    start_ms: int
    end_ms: int
    series: int = 0
    samples: int = 0
    transitions: list[AlertEvent] = field(default_factory=list)
    episodes: list[Episode] = field(default_factory=list)

    def summary(self) -> str:
        fired_on = len({(e.resource, tuple(sorted(e.labels.items()))) for e in self.episodes})
        still = sum(1 for e in self.episodes if not e.resolved_ms)
        return (
            f"rule {self.rule}: {len(self.episodes)} firing(s) on {fired_on} of {self.series} "
            f"series ({self.samples} samples), {still} still firing at the end"
        )


def _timeline(series: Iterable[Series], start_ms: int, end_ms: int) -> list[tuple[int, int, str, dict[str, str], float]]:  # fmt: skip
    points = []
    for n, s in enumerate(series):
        labels = dict(s.labels)
        resource = labels.pop(RESOURCE_TAG, "")
        for t, v in s.points:
            t_ms = round(t * 1000)
            if start_ms <= t_ms <= end_ms:
                points.append((t_ms, n, resource, labels, v))
    points.sort(key=lambda p: (p[0], p[1]))
    return points


def backtest(
    name: str, rule: Rule, metric_series: list[Series], start_ms: int, end_ms: int
) -> Backtest:
    """Replay ``metric_series`` (the rule's metric, stored) through the engine with ``rule``."""
    engine = Engine(history_size=10, series_ttl_ms=2**62)
    engine.set_rules({name: rule})
    result = Backtest(name, start_ms, end_ms, series=len(metric_series))
    no_data = rule.no_data
    wakeups: list[int] = []  # when a series' no-data would run out
    events: list[AlertEvent] = []
    for t_ms, _, resource, labels, value in _timeline(metric_series, start_ms, end_ms):
        while wakeups and wakeups[0] <= t_ms:
            events += engine.tick(heapq.heappop(wakeups))
        batch = SampleBatch(resource, t_ms, Source.PUSH, [Sample(rule.metric, value, labels)])
        events += engine.process(batch)
        result.samples += 1
        if no_data is not None:
            heapq.heappush(wakeups, t_ms + round(no_data * 1000))
    while wakeups and wakeups[0] <= end_ms:
        events += engine.tick(heapq.heappop(wakeups))
    events += engine.tick(end_ms)
    result.transitions = [e for e in events if e.status != "repeat"]
    result.episodes = _episodes(result.transitions)
    return result


def _episodes(transitions: list[AlertEvent]) -> list[Episode]:
    open_: dict[str, Episode] = {}
    out: list[Episode] = []
    for ev in transitions:
        if ev.status == "firing":
            kind = ev.labels.get("kind", "threshold")
            labels = {k: v for k, v in ev.labels.items()
                      if k not in ("alertname", "severity", "kind", "resource", "metric")}  # fmt: skip
            episode = Episode(ev.resource_id, labels, kind, ev.event_time_ms, value=ev.value)
            open_[ev.fingerprint] = episode
            out.append(episode)
        elif ev.status == "resolved":
            ended = open_.pop(ev.fingerprint, None)
            if ended is not None:
                ended.resolved_ms = ev.event_time_ms
    return out
