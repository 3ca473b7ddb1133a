"""Durations for people: ``45s``, ``12m``, ``3h 5m``, ``2d 4h`` (two units at most)."""

from __future__ import annotations

__all__ = ["about", "compact"]

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def about(seconds: float) -> str:
    """``seconds`` rounded to its two largest units (``0s`` for less than a second)."""
    left = max(0, round(seconds))
    parts: list[str] = []
    for unit, size in _UNITS:
        if left >= size or (unit == "s" and not parts):
            count, left = divmod(left, size)
            parts.append(f"{count}{unit}")
            if len(parts) == 2:
                break
        elif parts:
            break
    return " ".join(parts)


def compact(value: float) -> str:
    """``value`` in at most 4 significant digits with a k/M/G/T suffix (``889.8M``)."""
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    size = abs(value)
    for suffix, scale in (("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if size >= scale:
            return f"{value / scale:.4g}{suffix}"
    return f"{value:.4g}"
