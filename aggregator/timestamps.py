"""Sample times: what senders may write and the window the aggregator accepts.

JSON ``time`` is unix seconds (int or float) below 1e11, unix milliseconds from
1e11 on (1e11 s is the year 5138, 1e11 ms is 1973), or an RFC 3339 string with
a zone. Line-protocol timestamps are integers in the request's precision.
Every time must lie in ``[now - max_age, now + max_future]``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

__all__ = ["PRECISIONS", "TimeWindow", "json_time_ms"]

#: line-protocol precision names (v1 and v2 spellings) -> divisor to milliseconds
PRECISIONS: dict[str, tuple[int, int]] = {
    # name: (multiplier, divisor) so that ms = ts * multiplier // divisor
    "ns": (1, 1_000_000),
    "n": (1, 1_000_000),
    "us": (1, 1000),
    "u": (1, 1000),
    "ms": (1, 1),
    "s": (1000, 1),
    "m": (60_000, 1),
    "h": (3_600_000, 1),
}

_SECONDS_BELOW = 1e11


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """The accepted range of sample times, in unix milliseconds, fixed for one request."""

    now_ms: int
    low_ms: int
    high_ms: int

    @classmethod
    def around(cls, now_ms: int, max_age: float, max_future: float) -> TimeWindow:
        low = now_ms - int(max_age * 1000) if max_age > 0 else 0
        return cls(now_ms, max(low, 0), now_ms + int(max_future * 1000))

    def problem(self, time_ms: int) -> str | None:
        """Why ``time_ms`` is refused, or None when it is inside the window."""
        if time_ms > self.high_ms:
            ahead = (time_ms - self.now_ms) / 1000
            allowed = (self.high_ms - self.now_ms) / 1000
            return f"is {ahead:.0f} s in the future (at most {allowed:.0f} s allowed)"
        if time_ms < self.low_ms:
            if self.low_ms == 0:
                return "is before 1970"
            behind = (self.now_ms - time_ms) / 1000
            allowed = (self.now_ms - self.low_ms) / 1000
            return f"is {behind:.0f} s old (at most {allowed:.0f} s allowed)"
        return None


def json_time_ms(value: object) -> int:
    """Unix milliseconds from a JSON ``time``; raise ValueError saying what was expected."""
    if isinstance(value, bool):
        raise ValueError("expected unix seconds, unix milliseconds or an RFC 3339 string")
    if isinstance(value, int | float):
        if not math.isfinite(value):
            raise ValueError("expected a finite number")
        if abs(value) < _SECONDS_BELOW:
            return round(value * 1000)
        return round(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError("expected an RFC 3339 time such as 2024-05-01T12:00:00Z") from None
        if parsed.tzinfo is None or ("T" not in text.upper() and " " not in text):
            raise ValueError("expected an RFC 3339 time with a zone, such as 2024-05-01T12:00:00Z")
        return round(parsed.timestamp() * 1000)
    raise ValueError("expected unix seconds, unix milliseconds or an RFC 3339 string")
