"""The rule the alerting tests share: CPU above 90 % fires, below 80 % clears."""

from __future__ import annotations

from typing import Any


def cpu_rule(for_: str, clear_for: str, **extra: Any) -> dict[str, Any]:
    """cpu_usage_pct of site pangyo > 90 for ``for_``; < 80 for ``clear_for`` clears it."""
    return {
        "metric": "cpu_usage_pct",
        "match": ["site=pangyo"],
        "condition": {"op": ">", "threshold": 90},
        "for": for_,
        "clear": {"op": "<", "threshold": 80},
        "clear_for": clear_for,
        "severity": "critical",
        "receivers": ["ops-hook"],
        **extra,
    }
