"""Per-token rate limits in samples per second (the registry Token's ``rate_limit``).

A token bucket that may go into debt: a request is admitted while the bucket is
not empty and then pays for all its samples, so one large request is never
refused forever, and the long-run rate still holds. An empty bucket answers 429
with the seconds until it refills above zero.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Buckets by token name; a bucket holds at most one second of its rate."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[str, tuple[float, float, float]] = {}  # name -> (rate, level, stamp)

    def admit(self, name: str, rate: float, samples: int) -> int | None:
        """None if admitted (and charged), else the whole seconds to wait before retrying."""
        if rate <= 0:
            return None
        now = self._clock()
        old_rate, level, stamp = self._buckets.get(name, (rate, rate, now))
        if old_rate != rate:
            level = min(level, rate)
        level = min(rate, level + (now - stamp) * rate)
        if level <= 0:
            self._buckets[name] = (rate, level, now)
            return max(1, math.ceil(-level / rate + 1e-9))
        self._buckets[name] = (rate, level - samples, now)
        return None

    def forget(self, name: str) -> None:
        self._buckets.pop(name, None)
