"""Which line-protocol metrics are counters: built-in sets, registry sets, a token's own globs.

Line protocol carries no kind. A metric (``measurement_field``) matching a counter set
is a counter of that set's width; a line's ``kemi_kind`` tag overrides every set; all
else is a gauge. Sets live in the registry (kind ``counters``) and change live; the
built-in ``telegraf`` set applies unless an entry of that name replaces it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from kemi_stats.globs import globs_regex
from kemi_stats.model import MetricKind
from kemi_stats.registry.models import Counters

__all__ = ["CounterKinds", "effective_sets"]

_WIDTHS = {
    "counter64": MetricKind.COUNTER64,
    "counter32": MetricKind.COUNTER32,
    "float_counter": MetricKind.FLOAT_COUNTER,
}
_CACHE_MAX = 50_000


def effective_sets(
    builtin: Mapping[str, Counters], registry: Mapping[str, Counters]
) -> list[Counters]:
    """The sets in effect: built-ins replaced by registry entries of the same name, enabled only."""
    merged = {**builtin, **registry}
    return [merged[name] for name in sorted(merged) if merged[name].enabled]


class CounterKinds:
    """metric name -> kind, from counter sets plus a token's own globs; answers cached."""

    def __init__(self, sets: Sequence[Counters], token_globs: Sequence[str] = ()) -> None:
        by_kind: dict[MetricKind, list[str]] = {}
        for glob in token_globs:
            by_kind.setdefault(MetricKind.COUNTER64, []).append(glob)
        for counters in sets:
            by_kind.setdefault(_WIDTHS[counters.kind], []).extend(counters.metrics)
        # a metric in both widths' sets is the wider: never a wrap a 64-bit counter cannot make
        self._patterns: list[tuple[re.Pattern[str], MetricKind]] = []
        for kind in (MetricKind.COUNTER64, MetricKind.COUNTER32, MetricKind.FLOAT_COUNTER):
            pattern = globs_regex(by_kind.get(kind, ()))
            if pattern is not None:
                self._patterns.append((pattern, kind))
        self._cache: dict[str, MetricKind] = {}

    def kind(self, metric: str) -> MetricKind:
        """The kind of line-protocol metric ``metric`` when its line names none."""
        hit = self._cache.get(metric)
        if hit is None:
            hit = MetricKind.GAUGE
            for pattern, kind in self._patterns:
                if pattern.fullmatch(metric) is not None:
                    hit = kind
                    break
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[metric] = hit
        return hit
