"""How far behind a consumer group is, in seconds, from the records it fetches.

``kemi_consumer_lag_seconds{group,topic}``: the age of the oldest record of the last
non-empty fetch (its Kafka timestamp), growing with the clock until a fetch comes back
empty, which means the consumer has caught up (then 0). A consumer in takes (the
calculator's Faust stream) never sees an empty fetch: it is caught up once a take reaches
records younger than :data:`FRESH`, or when no take has come for ``quiet_after`` seconds. A consumer that falls behind
fetches ever older records, so the figure is how long a record waits in Kafka before
this group works on it, plus what the group holds in hand.

It is read from the records themselves, not from the broker's end offsets: the local
stack's broker reports those wrong (``docs/local-stack.md``), and a lag in records says
nothing of time. It is every service's own figure, so a benchmark or an operator's
Prometheus reads each consumer group the same way.
"""

from __future__ import annotations

import time

from prometheus_client import Gauge

__all__ = ["LAG", "LagClock"]

LAG = Gauge(
    "kemi_consumer_lag_seconds",
    "Age of the oldest record of the last fetch that returned records, 0 once a fetch "
    "comes back empty (caught up): how long records wait for this group",
    ["group", "topic"],
)


#: a record younger than this (seconds) is "now": its consumer has caught up
FRESH = 1.0


class LagClock:
    """One group's lag on one topic (or a list of topics), exported as a gauge."""

    __slots__ = ("_done_at", "_in_take", "_oldest", "_quiet_after", "_reached_now")

    def __init__(self, group: str, topic: str, quiet_after: float | None = None) -> None:
        """``quiet_after``: for a consumer in takes (which never sees an empty fetch), the
        seconds after its last take with no new one that mean nothing is left to take."""
        #: Kafka timestamp (seconds) of the oldest record of the last non-empty fetch
        self._oldest: float | None = None
        self._reached_now = False
        self._in_take = False
        self._done_at = 0.0
        self._quiet_after = quiet_after
        LAG.labels(group, topic).set_function(self.seconds)

    def fetched(self, oldest_ms: int | float | None) -> None:
        """A fetch returned records, the oldest stamped ``oldest_ms`` (None: no records)."""
        if oldest_ms is None:
            self._oldest = None
        elif oldest_ms > 0:  # a record without a timestamp (-1) says nothing
            self._oldest = oldest_ms / 1000

    def take_began(self, oldest_ms: float, newest_ms: float) -> None:
        """A take of records stamped ``oldest_ms``..``newest_ms`` is being worked on.

        For a consumer that hands over takes and never an empty fetch (a Faust stream):
        a take that reaches records younger than ``FRESH`` seconds ends caught up.
        """
        self.fetched(oldest_ms)
        self._reached_now = time.time() - newest_ms / 1000 < FRESH
        self._in_take = True

    def take_done(self) -> None:
        """The take began last is done: caught up if it reached the present."""
        self._in_take = False
        self._done_at = time.monotonic()
        if self._reached_now:
            self._oldest = None

    def seconds(self) -> float:
        """Seconds since the oldest record in hand was written; 0 when caught up."""
        oldest = self._oldest
        if oldest is None:
            return 0.0
        quiet = self._quiet_after
        if quiet is not None and not self._in_take and time.monotonic() - self._done_at > quiet:
            return 0.0  # no take for a while: the stream has nothing more to give
        return max(0.0, time.time() - oldest)
