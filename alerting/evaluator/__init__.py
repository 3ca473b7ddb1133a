"""The alert evaluator: kemi.metrics.raw + kemi.metrics -> per-series rule state -> kemi.alerts."""

from __future__ import annotations

from alerting.evaluator.engine import Engine, Series
from alerting.evaluator.store import SeriesRow, StateStore

__all__ = ["Engine", "Series", "SeriesRow", "StateStore"]
