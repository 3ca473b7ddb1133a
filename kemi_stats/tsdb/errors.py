"""The error of the TSDB query client (a :class:`~kemi_stats.errors.KemiError`)."""

from __future__ import annotations

from kemi_stats.errors import KemiError

__all__ = ["TsdbError"]


class TsdbError(KemiError):
    """The time-series database could not be reached or refused a query."""
