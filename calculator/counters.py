"""Counter arithmetic: increase and rate between two readings, with wrap and reset handling.

A counter that went down either wrapped (it passed its modulus: 2**32 or 2**64) or
was reset (the device rebooted, the counter was cleared). A drop is taken as a wrap
only when the wrap explains it with less than half a turn of the counter; anything
else, any rise of half a turn or more, and any drop of sysUpTime, is a reset: the series is re-seeded and that step
yields no rate (never a spike). Readings older than or as old as the last one
(out of order, duplicates, replays after a restart) are ignored and leave the state
as it was.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Reading", "Step", "StepKind", "counter_step"]


class StepKind(enum.StrEnum):
    """What one new reading did to a series."""

    SEED = "seed"  # first reading: nothing to compare with
    OK = "ok"  # an increase (possibly across a wrap)
    WRAP = "wrap"  # an increase across the counter's modulus
    RESET = "reset"  # re-seeded: no rate for this step
    DUPLICATE = "duplicate"  # same time as the last reading: ignored
    OUT_OF_ORDER = "out_of_order"  # older than the last reading: ignored


@dataclass(frozen=True, slots=True)
class Reading:
    """The last accepted value of a series and when it was taken."""

    value: float | int
    time_ms: int


@dataclass(frozen=True, slots=True)
class Step:
    """The outcome of one reading: the new state and, unless re-seeded, increase and rate."""

    kind: StepKind
    state: Reading | None
    increase: float | int | None = None
    rate: float | None = None
    #: plain difference from the last reading (no wrap correction; for gauges)
    delta: float | int | None = None

    @property
    def accepted(self) -> bool:
        return self.kind in (StepKind.OK, StepKind.WRAP)


def counter_step(
    last: Reading | None,
    value: float | int,
    time_ms: int,
    modulus: int | None,
    *,
    rebooted: bool = False,
) -> Step:
    """Advance a series by one reading.

    ``modulus`` is the wrap point of the counter (None: it never wraps, any drop is a
    reset); ``rebooted`` says the resource's sysUpTime went down since ``last``.
    """
    new = Reading(value, time_ms)
    if last is None:
        return Step(StepKind.SEED, new)
    if time_ms < last.time_ms:
        return Step(StepKind.OUT_OF_ORDER, last)
    if time_ms == last.time_ms:
        return Step(StepKind.DUPLICATE, last)
    if rebooted or value < 0:
        return Step(StepKind.RESET, new)
    seconds = (time_ms - last.time_ms) / 1000.0
    diff = value - last.value
    if diff >= 0:
        if modulus is not None and diff >= modulus / 2:
            # half a turn or more in one step is no counter's pace: a reset that landed higher
            return Step(StepKind.RESET, new, delta=diff)
        return Step(StepKind.OK, new, diff, diff / seconds, diff)
    if modulus is not None and 0 <= last.value < modulus:
        wrapped = modulus - last.value + value
        # less than half a turn: a wrap explains the drop; more is a reset seen as a wrap
        if wrapped < modulus / 2:
            return Step(StepKind.WRAP, new, wrapped, wrapped / seconds, diff)
    return Step(StepKind.RESET, new, delta=diff)
