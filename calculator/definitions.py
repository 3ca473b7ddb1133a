"""Registry ``derived`` entries compiled into what the per-batch path runs.

Compiling resolves everything once: the expression tree, its inputs, the window in
milliseconds, the evaluation order (a definition may read another's output at the
same resource and time). A definition that cannot run is left out with its reason,
so one bad entry never stops the others.
"""

from __future__ import annotations

import graphlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from kemi_stats.expressions import Expression, ExpressionError, compile_expression, derived_mode
from kemi_stats.registry.models import Derived

__all__ = ["CompiledDefinition", "DefinitionSet", "compile_definitions"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CompiledDefinition:
    """One derived metric, ready to evaluate. ``mode`` is point, window or group."""

    name: str
    expr: Expression
    mode: str
    window_ms: int | None
    group_by: tuple[str, ...]
    resource_prefix: str
    max_rate: float | None
    labels: dict[str, str]
    #: the variables the expression reads (``x``, ``rate(x)``...)
    input_names: tuple[str, ...] = ()
    #: the ``rate(x)`` variables, checked against ``max_rate``
    rate_names: tuple[str, ...] = ()

    def applies_to(self, resource_id: str) -> bool:
        return resource_id.startswith(self.resource_prefix)


@dataclass(slots=True)
class DefinitionSet:
    """The compiled definitions of one registry state, in evaluation order."""

    point: list[CompiledDefinition] = field(default_factory=list)
    window: list[CompiledDefinition] = field(default_factory=list)
    group: list[CompiledDefinition] = field(default_factory=list)
    invalid: dict[str, str] = field(default_factory=dict)
    #: gauges read through delta(): their previous sample is kept like a counter's
    tracked_gauges: frozenset[str] = frozenset()
    by_name: dict[str, CompiledDefinition] = field(default_factory=dict)
    #: metrics read through rate()/increase()/delta()
    counter_metrics: frozenset[str] = frozenset()
    #: the registry revision these definitions were read at
    revision: int = 0

    def __len__(self) -> int:
        return len(self.by_name)


def compile_one(
    name: str, doc: Derived, default_max_rate: float | None = None
) -> CompiledDefinition:
    """Compile one entry; raise ExpressionError naming it if it cannot run."""
    try:
        expr = compile_expression(doc.expr)
    except ExpressionError as exc:
        raise ExpressionError(f"derived {name}: {exc}") from None
    try:
        mode = derived_mode(expr, doc.window, doc.group_by)
    except ExpressionError as exc:
        raise ExpressionError(f"derived {name}: {exc}") from None
    window_ms = round(doc.window * 1000) if doc.window is not None else None
    return CompiledDefinition(
        name=name,
        expr=expr,
        mode=mode,
        window_ms=window_ms,
        group_by=tuple(doc.group_by),
        resource_prefix=doc.resource_prefix,
        max_rate=doc.max_rate if doc.max_rate is not None else default_max_rate,
        labels=dict(doc.labels),
        input_names=tuple(sorted(i.name for i in expr.inputs)),
        rate_names=tuple(sorted(i.name for i in expr.inputs if i.fn == "rate")),
    )


def compile_definitions(
    docs: Mapping[str, Derived], default_max_rate: float | None = None
) -> DefinitionSet:
    """Compile every entry; bad ones (and cycles) go to ``invalid`` with the reason."""
    out = DefinitionSet()
    compiled: dict[str, CompiledDefinition] = {}
    for name, doc in sorted(docs.items()):
        try:
            compiled[name] = compile_one(name, doc, default_max_rate)
        except ExpressionError as exc:
            out.invalid[name] = str(exc)
    # point definitions may read each other's outputs: evaluate in dependency order
    while True:
        points = {n: d for n, d in compiled.items() if d.mode == "point"}
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for name, d in points.items():
            sorter.add(name, *(i.metric for i in d.expr.inputs if i.metric in points))
        try:
            order = list(sorter.static_order())
        except graphlib.CycleError as exc:
            cycle = list(exc.args[1])
            for name in set(cycle):
                out.invalid[name] = f"derived {name}: definitions read each other in a cycle: " + (
                    " -> ".join(cycle)
                )
                compiled.pop(name, None)
            continue
        return _finish(out, compiled, [n for n in order if n in points])


def _finish(
    out: DefinitionSet, compiled: dict[str, CompiledDefinition], order: list[str]
) -> DefinitionSet:
    out.point = [compiled[n] for n in order]
    out.window = [d for d in compiled.values() if d.mode == "window"]
    out.group = [d for d in compiled.values() if d.mode == "group"]
    out.by_name = dict(compiled)
    out.tracked_gauges = frozenset(
        i.metric for d in compiled.values() for i in d.expr.inputs if i.fn == "delta"
    )
    out.counter_metrics = frozenset(
        i.metric for d in compiled.values() for i in d.expr.inputs if i.fn != "value"
    )
    for name, reason in out.invalid.items():
        log.error("derived %s skipped: %s", name, reason)
    return out
