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

An expression is bounded when it is compiled: its length, its nesting and its size
are capped, and ``**`` or ``<<`` over constants that would make a number too large
for a sample are refused. At evaluation ``**`` and ``<<`` refuse such results too,
and every error becomes an :class:`EvalFailure`, so no expression can stop the caller.

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

from simpleeval import DEFAULT_OPERATORS, SimpleEval

__all__ = [
    "COUNTER_FUNCTIONS",
    "MAX_EXPRESSION_DEPTH",
    "MAX_EXPRESSION_LENGTH",
    "MAX_EXPRESSION_NODES",
    "MAX_RESULT_BITS",
    "MAX_SHIFT",
    "EvalFailure",
    "Expression",
    "ExpressionError",
    "Input",
    "check_expression_length",
    "compile_expression",
    "is_aggregate",
]

#: the longest expression text, in characters
MAX_EXPRESSION_LENGTH = 4096
#: the deepest nesting of operations and calls
MAX_EXPRESSION_DEPTH = 100
#: the most names, numbers, operations and calls in one expression
MAX_EXPRESSION_NODES = 1000
#: the largest constant shift ``x << n``
MAX_SHIFT = 64
#: past 2**1024 no number fits in a sample (a double), so larger integers are not computed
MAX_RESULT_BITS = 1024

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


def _bounded_pow(base: Any, exponent: Any) -> Any:
    """``base ** exponent``; OverflowError instead of computing an integer past 2**1024."""
    ints = isinstance(base, int) and isinstance(exponent, int)
    if ints and exponent > 0 and (abs(base).bit_length() - 1) * exponent > MAX_RESULT_BITS:
        raise OverflowError(f"the power is larger than 2**{MAX_RESULT_BITS}")
    return base**exponent


def _bounded_lshift(value: Any, shift: Any) -> Any:
    """``value << shift``; OverflowError instead of computing an integer past 2**1024."""
    ints = isinstance(value, int) and isinstance(shift, int)
    if ints and abs(value).bit_length() + shift > MAX_RESULT_BITS:
        raise OverflowError(f"the shift is larger than 2**{MAX_RESULT_BITS}")
    return value << shift


_OPERATORS: dict[type, Any] = {
    **DEFAULT_OPERATORS,
    ast.Pow: _bounded_pow,
    ast.LShift: _bounded_lshift,
}


def check_expression_length(text: str) -> None:
    """Raise ExpressionError (without echoing ``text``) if it is longer than allowed."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"expression is {len(text)} characters long, at most {MAX_EXPRESSION_LENGTH}"
        )


def _parse(text: str) -> ast.Expression:
    """The checked syntax tree of ``text``: bounded in length, depth, size and constants."""
    check_expression_length(text)
    source = text.strip()
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"expression {text!r} does not parse: {exc.msg}") from None
    except ValueError as exc:
        raise ExpressionError(f"expression {text!r} does not parse: {exc}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(
            f"expression {text!r} is nested too deeply to parse "
            f"(at most {MAX_EXPRESSION_DEPTH} levels)"
        ) from None
    _check_shape(tree, text)
    _check_constant_operations(tree, source, text)
    return tree


def _check_shape(tree: ast.AST, text: str) -> None:
    nodes, deepest = 0, 0
    stack: list[tuple[ast.AST, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, ast.expr):
            nodes, depth = nodes + 1, depth + 1
            deepest = max(deepest, depth)
        stack.extend((child, depth) for child in ast.iter_child_nodes(node))
    split = "split it into derived metrics that read each other"
    if deepest > MAX_EXPRESSION_DEPTH:
        raise ExpressionError(
            f"expression {text!r} is nested {deepest} levels deep, "
            f"at most {MAX_EXPRESSION_DEPTH} ({split})"
        )
    if nodes > MAX_EXPRESSION_NODES:
        raise ExpressionError(
            f"expression {text!r} has {nodes} parts, at most {MAX_EXPRESSION_NODES} ({split})"
        )


def _constant(node: ast.AST) -> Any:
    """The value of a subtree made of numbers only, or None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    try:
        if isinstance(node, ast.UnaryOp):
            operand = _constant(node.operand)
            return None if operand is None else _OPERATORS[type(node.op)](operand)
        if isinstance(node, ast.BinOp):
            left, right = _constant(node.left), _constant(node.right)
            if left is None or right is None:
                return None
            return _OPERATORS[type(node.op)](left, right)
    except Exception:  # not computable here (1/0, 1 >> 10**6, ...): left to evaluation
        return None
    return None


def _check_constant_operations(tree: ast.AST, source: str, text: str) -> None:
    """Refuse ``**`` and ``<<`` over constants whose result no sample could hold."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.BinOp) or not isinstance(node.op, ast.Pow | ast.LShift):
            continue
        right = _constant(node.right)
        if right is None:
            continue
        part = ast.get_source_segment(source, node)
        if isinstance(node.op, ast.LShift) and not (
            isinstance(right, int) and 0 <= right <= MAX_SHIFT
        ):
            raise ExpressionError(
                f"expression {text!r}: {part}: a constant shift must be 0 to {MAX_SHIFT}"
            )
        left = _constant(node.left)
        if left is None:
            continue
        try:
            float(_OPERATORS[type(node.op)](left, right))  # no sample holds a larger number
        except OverflowError:
            raise ExpressionError(
                f"expression {text!r}: {part} is too large for a sample "
                "(a double holds at most about 1.8e308)"
            ) from None
        except Exception:  # 0 ** -1 and the like fail per sample, as they always did
            continue


def _percentile(q: float) -> Any:
    def agg(values: list[float]) -> float:
        ordered = sorted(values)
        # nearest-rank: the smallest value with at least q% of values at or below it
        rank = max(1, math.ceil(q / 100.0 * len(ordered)))
        return ordered[rank - 1]

    return agg


def _sum(values: list[float]) -> float:
    try:
        return math.fsum(values)
    except OverflowError:  # a partial sum passed the float range; fold it plainly (to inf)
        return sum(values)


def aggregate_function(name: str) -> Any:
    """The function that folds a list of values for aggregate ``name``."""
    if name == "avg":
        return lambda vs: _sum(vs) / len(vs)
    if name == "sum":
        return _sum
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


def _sample_value(result: object) -> float:
    """``result`` as a sample value; EvalFailure if it is not a finite number."""
    if not isinstance(result, int | float):
        raise EvalFailure("not_a_number", repr(result))
    value = float(result)
    if not math.isfinite(value):
        raise EvalFailure("not_finite")
    return value


class Expression:
    """A compiled expression: its inputs, its optional aggregate, and a safe evaluator."""

    __slots__ = ("_evaluator", "_tree", "aggregate", "fold", "inputs", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        body = _parse(text).body
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
        self._evaluator = SimpleEval(
            operators=dict(_OPERATORS), functions=dict(_SCALAR_FUNCTIONS), names={}
        )

    @property
    def counter_inputs(self) -> frozenset[Input]:
        return frozenset(i for i in self.inputs if i.fn != "value")

    def evaluate(self, names: Mapping[str, float | int]) -> float:
        """The value at one point; raise EvalFailure (reason counted by the caller) if none."""
        ev = self._evaluator
        ev.names = names
        try:
            return _sample_value(ev.eval(self.text, previously_parsed=self._tree))
        except EvalFailure:
            raise
        except ZeroDivisionError:
            raise EvalFailure("division_by_zero") from None
        except KeyError as exc:
            raise EvalFailure("missing_input", str(exc)) from None
        except (ArithmeticError, ValueError, TypeError) as exc:
            raise EvalFailure("math_error", str(exc)) from None
        except (RecursionError, MemoryError) as exc:
            raise EvalFailure("eval_error", type(exc).__name__) from None
        except Exception as exc:  # simpleeval's own errors (NameNotDefined, ...)
            if type(exc).__name__ == "NameNotDefined":
                raise EvalFailure("missing_input", str(exc)) from None
            raise EvalFailure("eval_error", str(exc)) from None

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
