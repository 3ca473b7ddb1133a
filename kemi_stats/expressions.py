"""Derived-metric expressions, compiled once and evaluated per resource and time by simpleeval.

An expression is arithmetic over the metric names of one resource at one time::

    100 * (memTotalReal - memAvailReal) / memTotalReal
    rate(ifHCInOctets) * 8

``rate(x)``, ``increase(x)`` and ``delta(x)`` name the per-second increase, the
increase and the plain difference of series ``x`` since its previous sample; at
compile time each becomes a variable of its own (``"rate(ifHCInOctets)"``) so the
evaluator only looks names up. An aggregate (``avg``, ``min``, ``max``, ``sum``,
``count``, ``p95``, any ``pNN``) may wrap the whole expression; it applies over a
window or across a group, which the definition names. Evaluation never calls
Python's ``eval``: simpleeval walks the checked tree with a fixed set of functions.

The language lives in the core because two places compile it: the registry, which
refuses a ``derived`` entry the calculator could not run, and the calculator.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from simpleeval import SimpleEval

__all__ = [
    "COUNTER_FUNCTIONS",
    "EvalFailure",
    "Expression",
    "ExpressionError",
    "Input",
    "compile_expression",
    "is_aggregate",
]

#: functions over one series' previous sample (the state the calculator keeps)
COUNTER_FUNCTIONS = frozenset({"rate", "increase", "delta"})
_AGGREGATES = frozenset({"avg", "min", "max", "sum", "count"})
_PERCENTILE = re.compile(r"^p(\d{1,2}(?:_\d+)?)$")

_SCALAR_FUNCTIONS: dict[str, Any] = {
    "abs": abs,
    "min": min,
    "max": max,
    "round": round,
    "sqrt": math.sqrt,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "exp": math.exp,
    "floor": math.floor,
    "ceil": math.ceil,
}

_ALLOWED_NODES = (
    ast.Expression,
    ast.Expr,
    ast.BinOp,
    ast.UnaryOp,
    ast.BoolOp,
    ast.Compare,
    ast.IfExp,
    ast.Call,
    ast.Name,
    ast.Constant,
    ast.Load,
    ast.operator,
    ast.unaryop,
    ast.boolop,
    ast.cmpop,
)


class ExpressionError(ValueError):
    """An expression cannot be compiled (names the expression and the reason)."""


class EvalFailure(Exception):
    """An expression gave no value at one point; ``reason`` is the counted label."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Input:
    """One value an expression reads: a metric itself or a counter function of it."""

    fn: str  # "value" | "rate" | "increase" | "delta"
    metric: str

    @property
    def name(self) -> str:
        """The variable name the evaluator looks up."""
        return self.metric if self.fn == "value" else f"{self.fn}({self.metric})"


def is_aggregate(name: str) -> bool:
    """True for avg/min/max/sum/count and percentiles p50, p95, p99_9 ..."""
    return name in _AGGREGATES or _PERCENTILE.match(name) is not None


def _dotted(node: ast.AST) -> str | None:
    """``a.b.c`` as one metric name, or None if the node is not a dotted name."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


class _Rewriter(ast.NodeTransformer):
    """Turns ``rate(x)`` into the variable ``rate(x)`` and ``a.b`` into ``a.b``; checks the rest."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.inputs: set[Input] = set()

    def fail(self, why: str) -> ExpressionError:
        return ExpressionError(f"expression {self.text!r}: {why}")

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        name = _dotted(node)
        if name is None or "__" in name:
            raise self.fail("attribute access is not allowed")
        self.inputs.add(Input("value", name))
        return ast.copy_location(ast.Name(id=name, ctx=ast.Load()), node)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if "__" in node.id:
            raise self.fail(f"name {node.id!r} is not allowed (no double underscores)")
        if node.id in _SCALAR_FUNCTIONS or node.id in COUNTER_FUNCTIONS or is_aggregate(node.id):
            raise self.fail(f"{node.id} is a function: call it, e.g. {node.id}(x)")
        self.inputs.add(Input("value", node.id))
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise self.fail(f"only numbers are allowed as constants, not {node.value!r}")
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        fn = node.func.id if isinstance(node.func, ast.Name) else None
        if fn is None:
            raise self.fail("only plain function calls are allowed")
        if node.keywords:
            raise self.fail(f"{fn}() takes no keyword arguments")
        if fn in COUNTER_FUNCTIONS:
            metric = _dotted(node.args[0]) if len(node.args) == 1 else None
            if metric is None:
                raise self.fail(f"{fn}() takes exactly one metric name, e.g. {fn}(ifHCInOctets)")
            inp = Input(fn, metric)
            self.inputs.add(inp)
            return ast.copy_location(ast.Name(id=inp.name, ctx=ast.Load()), node)
        if fn in _SCALAR_FUNCTIONS and not (fn in ("min", "max") and len(node.args) == 1):
            if not node.args:
                raise self.fail(f"{fn}() needs arguments")
            node.args = [self.visit(a) for a in node.args]
            return node
        if is_aggregate(fn):
            raise self.fail(f"aggregate {fn}() must be the whole expression, e.g. {fn}(x)")
        raise self.fail(f"unknown function {fn}()")

    def generic_visit(self, node: ast.AST) -> ast.AST:
        if not isinstance(node, _ALLOWED_NODES):
            raise self.fail(f"{type(node).__name__} is not allowed")
        return super().generic_visit(node)


def _percentile(q: float) -> Any:
    def agg(values: list[float]) -> float:
        ordered = sorted(values)
        # nearest-rank: the smallest value with at least q% of values at or below it
        rank = max(1, math.ceil(q / 100.0 * len(ordered)))
        return ordered[rank - 1]

    return agg


def aggregate_function(name: str) -> Any:
    """The function that folds a list of values for aggregate ``name``."""
    if name == "avg":
        return lambda vs: math.fsum(vs) / len(vs)
    if name == "sum":
        return math.fsum
    if name == "min":
        return min
    if name == "max":
        return max
    if name == "count":
        return lambda vs: float(len(vs))
    m = _PERCENTILE.match(name)
    if m is None:
        raise ValueError(f"{name} is not an aggregate")
    return _percentile(float(m.group(1).replace("_", ".")))


class Expression:
    """A compiled expression: its inputs, its optional aggregate, and a safe evaluator."""

    __slots__ = ("_evaluator", "_tree", "aggregate", "fold", "inputs", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as exc:
            raise ExpressionError(f"expression {text!r} does not parse: {exc.msg}") from None
        body = tree.body
        self.aggregate: str | None = None
        if (
            isinstance(body, ast.Call)
            and isinstance(body.func, ast.Name)
            and is_aggregate(body.func.id)
            and not (body.func.id in ("min", "max") and len(body.args) != 1)
        ):
            if len(body.args) != 1 or body.keywords:
                raise ExpressionError(
                    f"expression {text!r}: {body.func.id}() takes exactly one argument"
                )
            self.aggregate = body.func.id
            body = body.args[0]
        rewriter = _Rewriter(text)
        node = rewriter.visit(ast.Expression(body=body))
        ast.fix_missing_locations(node)
        if not rewriter.inputs:
            raise ExpressionError(f"expression {text!r} reads no metric")
        self.inputs: frozenset[Input] = frozenset(rewriter.inputs)
        self.fold = aggregate_function(self.aggregate) if self.aggregate else None
        self._tree = node.body
        self._evaluator = SimpleEval(functions=dict(_SCALAR_FUNCTIONS), names={})

    @property
    def counter_inputs(self) -> frozenset[Input]:
        return frozenset(i for i in self.inputs if i.fn != "value")

    def evaluate(self, names: Mapping[str, float | int]) -> float:
        """The value at one point; raise EvalFailure (reason counted by the caller) if none."""
        ev = self._evaluator
        ev.names = names
        try:
            result = ev.eval(self.text, previously_parsed=self._tree)
        except ZeroDivisionError:
            raise EvalFailure("division_by_zero") from None
        except KeyError as exc:
            raise EvalFailure("missing_input", str(exc)) from None
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise EvalFailure("math_error", str(exc)) from None
        except Exception as exc:  # simpleeval's own errors (NameNotDefined, ...)
            if type(exc).__name__ == "NameNotDefined":
                raise EvalFailure("missing_input", str(exc)) from None
            raise EvalFailure("eval_error", str(exc)) from None
        if isinstance(result, bool):
            result = float(result)
        if not isinstance(result, int | float):
            raise EvalFailure("not_a_number", repr(result))
        value = float(result)
        if not math.isfinite(value):
            raise EvalFailure("not_finite")
        return value

    def __repr__(self) -> str:
        return f"Expression({self.text!r})"


def compile_expression(text: str) -> Expression:
    """Compile ``text`` once; raise ExpressionError naming the expression if it is not valid."""
    return Expression(text)


def derived_mode(
    expr: Expression, window: float | None, group_by: list[str] | tuple[str, ...]
) -> str:
    """``point``, ``window`` or ``group``: how a definition with this expression runs.

    Raises ExpressionError when the parts do not fit: an aggregate needs a window or a
    group_by, and a window or group_by needs an aggregate around the expression.
    """
    if expr.aggregate is None:
        if window is not None or group_by:
            raise ExpressionError(
                f"window/group_by need an aggregate around the expression, e.g. avg({expr.text})"
            )
        return "point"
    if window is not None and window < 1:
        raise ExpressionError(f"window {window} s is shorter than 1 s")
    if group_by:
        return "group"
    if window is not None:
        return "window"
    raise ExpressionError(f"aggregate {expr.aggregate}() needs a window or group_by")
