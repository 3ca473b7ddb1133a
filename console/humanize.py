"""Durations for people: ``45s``, ``12m``, ``3h 5m``, ``2d 4h`` (two units at most)."""

from __future__ import annotations

__all__ = ["about"]

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
