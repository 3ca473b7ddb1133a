"""Registry entries compile into point, window and group definitions; bad ones are set aside."""

from __future__ import annotations

from calculator.definitions import compile_definitions
from kemi_stats.registry.models import Derived


def test_modes_and_order() -> None:
    defs = compile_definitions(
        {
            "if_in_bits_k": Derived(expr="if_in_bps / 1000"),
            "if_in_bps": Derived(expr="rate(ifHCInOctets) * 8"),
            "cpu_load_5m": Derived(expr="avg(hrProcessorLoad)", window="5m"),
            "site_in_bps": Derived(expr="sum(if_in_bps)", group_by=["site"]),
        }
    )
    assert [d.name for d in defs.point] == ["if_in_bps", "if_in_bits_k"]
    assert [d.name for d in defs.window] == ["cpu_load_5m"]
    assert defs.window[0].window_ms == 300_000
    assert [d.name for d in defs.group] == ["site_in_bps"]
    assert defs.counter_metrics == {"ifHCInOctets"}
    assert not defs.invalid


def test_invalid_entries_are_reported_not_fatal() -> None:
    # the registry refuses these on write; an entry written past it (an older CLI, a
    # hand edit in etcd) must still only be reported, so build them unvalidated
    raw = Derived.model_construct
    defs = compile_definitions(
        {
            "ok": Derived(expr="a * 2"),
            "agg_without_window": raw(expr="avg(a)", window=None, group_by=[]),
            "window_without_agg": raw(expr="a", window=60, group_by=[]),
            "loop_a": Derived(expr="loop_b + 1"),
            "loop_b": Derived(expr="loop_a + 1"),
            "unsafe": raw(expr="open(a)", window=None, group_by=[]),
        }
    )
    assert [d.name for d in defs.point] == ["ok"]
    assert set(defs.invalid) == {
        "agg_without_window",
        "window_without_agg",
        "loop_a",
        "loop_b",
        "unsafe",
    }
    assert "cycle" in defs.invalid["loop_a"]
    assert "needs a window or group_by" in defs.invalid["agg_without_window"]


def test_delta_on_a_gauge_tracks_it() -> None:
    defs = compile_definitions({"temp_change": Derived(expr="delta(temperature)")})
    assert defs.tracked_gauges == {"temperature"}


def test_default_max_rate_applies_unless_the_definition_has_one() -> None:
    defs = compile_definitions(
        {"a": Derived(expr="rate(x)"), "b": Derived(expr="rate(x)", max_rate=5)},
        default_max_rate=100,
    )
    assert defs.by_name["a"].max_rate == 100 and defs.by_name["b"].max_rate == 5


def test_expressions_too_large_to_run_are_set_aside_with_the_reason() -> None:
    raw = Derived.model_construct
    defs = compile_definitions(
        {
            "ok": Derived(expr="a * 2"),
            "huge_power": raw(expr="3999999**3999999 + a", window=None, group_by=[]),
            "huge_shift": raw(expr="a << 10000", window=None, group_by=[]),
            "huge_sum": raw(expr=" + ".join(["a"] * 20_000), window=None, group_by=[]),
        }
    )
    assert [d.name for d in defs.point] == ["ok"]
    assert "3999999**3999999 is too large for a sample" in defs.invalid["huge_power"]
    assert "a constant shift must be 0 to 64" in defs.invalid["huge_shift"]
    assert defs.invalid["huge_sum"] == (
        "derived huge_sum: expression is 79997 characters long, at most 4096"
    )
