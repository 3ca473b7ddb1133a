"""Expressions compile once, read only metric names, and fail with a counted reason."""

from __future__ import annotations

import sys

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


HUGE_SUM = " + ".join(["x"] * 20_000)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2**3999999 + x", r"2\*\*3999999 is too large for a sample"),
        ("3999999**3999999 + x", r"3999999\*\*3999999 is too large for a sample"),
        ("x * 10.0 ** 400", r"10\.0 \*\* 400 is too large for a sample"),
        ("2**1024 + x", r"2\*\*1024 is too large for a sample"),
        ("x << 10000", "x << 10000: a constant shift must be 0 to 64"),
        ("x << -1", "a constant shift must be 0 to 64"),
        (HUGE_SUM, "expression is 79997 characters long, at most 4096"),
        ("-" * 4000 + "x", "nested too deeply to parse"),
        ("x" + " + x" * 150, "nested 151 levels deep, at most 100"),
        ("max(" + ", ".join(["x"] * 1000) + ")", "has 1002 parts, at most 1000"),
        ("x\0", "does not parse"),
    ],
)
def test_expressions_too_large_to_run_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message):
        compile_expression(text)


def test_bounded_constant_operations_still_compile() -> None:
    assert compile_expression("x << 64").evaluate({"x": 1}) == 2.0**64
    assert compile_expression("2 ** 1000 / 2 ** 999 * x").evaluate({"x": 3}) == 6.0
    with pytest.raises(EvalFailure) as info:
        compile_expression("x * 0 ** -1").evaluate({"x": 1})
    assert info.value.reason == "division_by_zero"


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("x ** y", {"x": 3_999_999, "y": 3_999_999}),
        ("x ** 3999999", {"x": 2}),
        ("x << y", {"x": 1, "y": 10_000}),
        ("x ** y", {"x": 2.0, "y": 5000}),
        ("x + y", {"x": 2**1100, "y": 1}),
    ],
)
def test_results_too_large_for_a_sample_fail_per_sample(text: str, names: dict[str, float]) -> None:
    with pytest.raises(EvalFailure) as info:
        compile_expression(text).evaluate(names)
    assert info.value.reason == "math_error"


def test_large_but_representable_powers_are_computed() -> None:
    assert compile_expression("x ** 2").evaluate({"x": 10_000_000}) == 1e14


def test_running_out_of_stack_is_a_per_sample_failure() -> None:
    e = compile_expression("x" + " + x" * 98)

    def nested(depth: int) -> float:
        return nested(depth - 1) if depth else e.evaluate({"x": 1})

    limit = sys.getrecursionlimit()
    with pytest.raises(EvalFailure) as info:
        nested(limit - 150)
    assert info.value.reason == "eval_error"


def test_a_window_sum_past_the_float_range_does_not_raise() -> None:
    fold = compile_expression("sum(x)").fold
    assert fold is not None and fold([1e308, 1e308]) == float("inf")
