"""Expressions compile once, read only metric names, and fail with a counted reason."""

from __future__ import annotations

import pytest

from kemi_stats.expressions import EvalFailure, ExpressionError, Input, compile_expression


def test_rate_becomes_an_input_of_its_own() -> None:
    e = compile_expression("rate(ifHCInOctets) * 8")
    assert e.inputs == {Input("rate", "ifHCInOctets")}
    assert e.evaluate({"rate(ifHCInOctets)": 125_000.0}) == 1_000_000.0


def test_memory_percentage() -> None:
    e = compile_expression("100 * (memTotalReal - memAvailReal) / memTotalReal")
    assert {i.metric for i in e.inputs} == {"memTotalReal", "memAvailReal"}
    assert e.evaluate({"memTotalReal": 200, "memAvailReal": 50}) == 75.0


def test_aggregate_wraps_the_whole_expression() -> None:
    e = compile_expression("avg(hrProcessorLoad)")
    assert e.aggregate == "avg" and e.fold is not None
    assert e.fold([1.0, 2.0, 6.0]) == 3.0
    p95 = compile_expression("p95(x)")
    assert p95.fold is not None and p95.fold([float(v) for v in range(1, 101)]) == 95.0


def test_scalar_min_max_with_two_arguments_are_functions() -> None:
    e = compile_expression("max(a, b) - min(a, 1)")
    assert e.aggregate is None and e.evaluate({"a": 3, "b": 5}) == 4.0


def test_dotted_metric_names() -> None:
    e = compile_expression("net.rx.bytes * 8")
    assert e.evaluate({"net.rx.bytes": 2}) == 16.0


@pytest.mark.parametrize(
    "text",
    [
        '__import__("os")',
        "x.__class__",
        "'text'",
        "avg(x) + 1",
        "rate(x + 1)",
        "rate(x, y)",
        "unknown(x)",
        "[1, 2]",
        "x[0]",
        "lambda: 1",
        "42",
        "x +",
        "rate",
    ],
)
def test_unsafe_or_invalid_expressions_are_rejected(text: str) -> None:
    with pytest.raises(ExpressionError, match="expression"):
        compile_expression(text)


@pytest.mark.parametrize(
    ("names", "reason"),
    [
        ({"a": 1, "b": 0}, "division_by_zero"),
        ({"a": 1}, "missing_input"),
        ({"a": 1e308, "b": 1e-308}, "not_finite"),
    ],
)
def test_failures_carry_a_reason(names: dict[str, float], reason: str) -> None:
    with pytest.raises(EvalFailure) as info:
        compile_expression("a / b").evaluate(names)
    assert info.value.reason == reason
