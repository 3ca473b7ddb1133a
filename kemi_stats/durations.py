"""Durations as operators write them: ``90``, ``30s``, ``5m``, ``2h``, ``1d``, ``1h30m``."""

from __future__ import annotations

import functools
import re

__all__ = ["format_duration", "parse_duration"]

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}


def parse_duration(text: str | float | int) -> float:
    """Seconds in ``text``; raise ValueError naming the text if it is not a duration."""
    if isinstance(text, bool):
        raise ValueError(f"{text!r} is not a duration (expected e.g. 30s, 5m, 2h)")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"{text!r} is negative (expected a duration >= 0)")
        return float(text)
    return _parse_text(text)


@functools.lru_cache(maxsize=1024)
def _parse_text(text: str) -> float:
    """Seconds in a written duration (registries repeat a handful: cached)."""
    s = text.strip().lower()
    try:
        value = float(s)
    except ValueError:
        pos, total = 0, 0.0
        for m in _PART.finditer(s):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _UNIT[m.group(2)]
            pos = m.end()
        if pos != len(s) or not s:
            raise ValueError(f"{text!r} is not a duration (expected e.g. 30s, 5m, 2h)") from None
        return total
    if value < 0:
        raise ValueError(f"{text!r} is negative (expected a duration >= 0)")
    return value


@functools.lru_cache(maxsize=1024)
def format_duration(seconds: float) -> str:
    """The shortest exact form of ``seconds`` (``300`` -> ``5m``)."""
    if seconds == 0:
        return "0s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds}s"
