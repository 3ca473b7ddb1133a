"""The per-series alert state machine, as pure functions of (state, rule timing, input).

One :class:`SeriesState` per (rule, series). Two alerts live in it:

* the **threshold** alert: ``ok -> pending -> firing -> ok``. The firing condition
  must hold on every sample for ``for`` (event time) before it fires; once firing,
  the clear condition (default: the negation) must hold for ``clear_for`` before it
  resolves. A value between the two thresholds (the hysteresis band) neither
  fires nor clears, and resets whichever timer was running.
* the **no-data** alert: fires when the series has sent nothing for ``no_data``
  (checked by :func:`on_tick` against the evaluator's clock) and resolves on the
  next sample. While there is no data the threshold alert is frozen, never
  resolved: a target whose poll failed is ``no_data``, not healthy.

Everything is driven by sample event time except the no-data and repeat timers,
which need a clock because their trigger is the *absence* of samples. Functions
return the new state (the same object when nothing changed) and the transitions.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, replace

__all__ = [
    "NO_CHANGE",
    "AlertKind",
    "Phase",
    "SeriesState",
    "Timing",
    "Transition",
    "on_sample",
    "on_tick",
]


class Phase(enum.StrEnum):
    """Where the threshold alert of a series is."""

    OK = "ok"
    PENDING = "pending"
    FIRING = "firing"


class AlertKind(enum.StrEnum):
    """Which of a series' two alerts a transition is about."""

    THRESHOLD = "threshold"
    NO_DATA = "no_data"


@dataclass(frozen=True, slots=True)
class Timing:
    """What the state machine needs from a rule, resolved once when the rule loads."""

    fire: Callable[[float], bool] | None
    clear: Callable[[float], bool] | None
    for_ms: int = 0
    clear_for_ms: int = 0
    no_data_ms: int | None = None
    repeat_ms: int = 4 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class SeriesState:
    """The persisted state of one (rule, series)."""

    phase: Phase = Phase.OK
    #: pending: when the condition started holding; firing: when it fired (startsAt)
    since_ms: int = 0
    #: firing: since when the clear condition holds (0: it does not)
    clear_since_ms: int = 0
    value: float = 0.0
    #: event time of the newest sample applied
    last_ms: int = 0
    #: firing: clock time of the last firing/repeat emission
    notified_ms: int = 0
    #: no-data alert: when it fired (0: not firing)
    nodata_since_ms: int = 0
    nodata_notified_ms: int = 0

    @property
    def active(self) -> bool:
        return self.phase is not Phase.OK or self.nodata_since_ms != 0


@dataclass(frozen=True, slots=True)
class Transition:
    """One alert changing status: pending | firing | repeat | resolved | ok (pending cancelled)."""

    kind: AlertKind
    status: str
    starts_at_ms: int
    ends_at_ms: int
    at_ms: int
    value: float


NO_CHANGE: tuple[Transition, ...] = ()


def on_sample(
    s: SeriesState, timing: Timing, value: float, t: int
) -> tuple[SeriesState, tuple[Transition, ...]]:
    """Apply one sample at event time ``t``; samples not newer than the last are ignored."""
    if t <= s.last_ms:
        return s, NO_CHANGE
    out: list[Transition] = []
    nodata_since, nodata_notified = s.nodata_since_ms, s.nodata_notified_ms
    if nodata_since:
        out.append(Transition(AlertKind.NO_DATA, "resolved", nodata_since, t, t, value))
        nodata_since = nodata_notified = 0
    phase, since, clear_since, notified = s.phase, s.since_ms, s.clear_since_ms, s.notified_ms
    fire = timing.fire
    if fire is not None:
        if phase is Phase.OK:
            if fire(value):
                if timing.for_ms <= 0:
                    phase, since, notified = Phase.FIRING, t, t
                    out.append(Transition(AlertKind.THRESHOLD, "firing", t, 0, t, value))
                else:
                    phase, since = Phase.PENDING, t
                    out.append(Transition(AlertKind.THRESHOLD, "pending", t, 0, t, value))
        elif phase is Phase.PENDING:
            if not fire(value):
                out.append(Transition(AlertKind.THRESHOLD, "ok", since, t, t, value))
                phase, since = Phase.OK, 0
            elif t - since >= timing.for_ms:
                phase, since, notified = Phase.FIRING, t, t
                out.append(Transition(AlertKind.THRESHOLD, "firing", t, 0, t, value))
        else:
            clear = timing.clear
            if clear is not None and clear(value):
                if not clear_since:
                    clear_since = t
                if t - clear_since >= timing.clear_for_ms:
                    out.append(Transition(AlertKind.THRESHOLD, "resolved", since, t, t, value))
                    phase, since, clear_since, notified = Phase.OK, 0, 0, 0
            else:
                clear_since = 0
    if not out and phase is s.phase and clear_since == s.clear_since_ms:
        # the hot path: only the last sample moved
        return SeriesState(
            s.phase, s.since_ms, s.clear_since_ms, value, t, s.notified_ms, 0, 0
        ), NO_CHANGE
    return (
        SeriesState(phase, since, clear_since, value, t, notified, nodata_since, nodata_notified),
        tuple(out),
    )


def on_tick(
    s: SeriesState, timing: Timing, now_ms: int
) -> tuple[SeriesState, tuple[Transition, ...]]:
    """Check the no-data timer and the repeat interval against the clock ``now_ms``."""
    out: list[Transition] = []
    new = s
    if (
        timing.no_data_ms is not None
        and not s.nodata_since_ms
        and s.last_ms
        and now_ms - s.last_ms >= timing.no_data_ms
    ):
        new = replace(new, nodata_since_ms=now_ms, nodata_notified_ms=now_ms)
        out.append(Transition(AlertKind.NO_DATA, "firing", now_ms, 0, now_ms, s.value))
    elif s.nodata_since_ms and now_ms - s.nodata_notified_ms >= timing.repeat_ms:
        new = replace(new, nodata_notified_ms=now_ms)
        out.append(Transition(AlertKind.NO_DATA, "repeat", s.nodata_since_ms, 0, now_ms, s.value))
    if s.phase is Phase.FIRING and now_ms - s.notified_ms >= timing.repeat_ms:
        new = replace(new, notified_ms=now_ms)
        out.append(Transition(AlertKind.THRESHOLD, "repeat", s.since_ms, 0, now_ms, s.value))
    return new, tuple(out)
