"""Metric-name globs (``net_bytes_*``, ``diskio_re?ds``): checked once, compiled into one regex."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

__all__ = ["check_metric_glob", "globs_regex"]

_GLOB = re.compile(r"[A-Za-z0-9_.:*?\[\]!-]+")


def check_metric_glob(glob: str) -> str:
    """Return ``glob`` if it is a metric-name glob, else raise ValueError naming it."""
    if not _GLOB.fullmatch(glob):
        raise ValueError(
            f"metric glob {glob!r} is invalid (metric-name characters and * ? [ ] only)"
        )
    return glob


def globs_regex(globs: Iterable[str]) -> re.Pattern[str] | None:
    """One regex matching any of ``globs`` in full; None when there are none."""
    unique = sorted(set(globs))
    if not unique:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(g)})" for g in unique))
