"""The silence stage: drop alerts covered by a silence, as recorded or as of now."""

from __future__ import annotations

from collections.abc import Iterable

from alerting.silences import SilenceSet
from kemi_stats.model import AlertEvent

__all__ = ["not_silenced"]


def not_silenced(
    silences: SilenceSet, events: Iterable[AlertEvent], now: float
) -> tuple[list[AlertEvent], list[AlertEvent]]:
    """Split ``events`` into (to notify, silenced).

    An alert the evaluator marked silenced stays silenced; one whose silence was
    created after the transition is caught here, at notification time. Resolved
    notices pass: whether they go out depends on the firing having gone out.
    """
    keep: list[AlertEvent] = []
    muted: list[AlertEvent] = []
    for ev in events:
        if ev.status != "resolved" and (ev.silenced or silences.covers(ev.labels, now)):
            muted.append(ev)
        else:
            keep.append(ev)
    return keep, muted
