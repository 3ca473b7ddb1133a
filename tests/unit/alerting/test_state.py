"""The per-series state machine: for, hysteresis, no-data, repeats, replay safety."""

from __future__ import annotations

from alerting.state import Phase, SeriesState, Timing, on_sample, on_tick

FIRE = Timing(fire=lambda v: v > 90, clear=lambda v: v < 80, for_ms=2000, clear_for_ms=1000)


def run(timing: Timing, samples: list[tuple[int, float]], s: SeriesState | None = None):
    s = s or SeriesState()
    out = []
    for t, v in samples:
        s, trs = on_sample(s, timing, v, t)
        out.extend((tr.kind.value, tr.status, tr.at_ms) for tr in trs)
    return s, out


def test_fires_after_for_and_resolves_after_clear_for() -> None:
    s, out = run(FIRE, [(1000, 95), (2000, 96), (3000, 97), (4000, 70), (5000, 70)])
    assert out == [
        ("threshold", "pending", 1000),
        ("threshold", "firing", 3000),
        ("threshold", "resolved", 5000),
    ]
    assert s.phase is Phase.OK


def test_for_zero_fires_on_first_sample() -> None:
    timing = Timing(fire=lambda v: v > 90, clear=lambda v: v <= 90)
    _, out = run(timing, [(1000, 91), (2000, 50)])
    assert out == [("threshold", "firing", 1000), ("threshold", "resolved", 2000)]


def test_oscillation_inside_band_notifies_nothing() -> None:
    # pending is cancelled each time the value dips, so nothing ever fires
    samples = [(1000 * i, 91 if i % 2 else 89) for i in range(1, 20)]
    s, out = run(FIRE, samples)
    assert {status for _, status, _ in out} <= {"pending", "ok"}
    # firing, then oscillating between 85 and 95 never clears (clear is < 80)
    s, out = run(FIRE, [(1000, 95), (3000, 95)])
    assert out[-1][1] == "firing"
    s, out = run(FIRE, [(4000 + 1000 * i, 85 if i % 2 else 95) for i in range(10)], s)
    assert out == [] and s.phase is Phase.FIRING


def test_clear_timer_resets_when_value_leaves_clear_range() -> None:
    s, _ = run(FIRE, [(1000, 95), (3000, 95)])
    s, out = run(FIRE, [(4000, 70), (4500, 85), (5000, 70), (5500, 70)], s)
    assert out == []
    s, out = run(FIRE, [(6000, 70)], s)
    assert out == [("threshold", "resolved", 6000)]


def test_old_and_duplicate_samples_are_ignored() -> None:
    s, _ = run(FIRE, [(1000, 95), (3000, 95)])
    same, out = run(FIRE, [(3000, 10), (2000, 10)], s)
    assert out == [] and same == s


def test_no_data_fires_on_tick_and_resolves_on_next_sample() -> None:
    timing = Timing(fire=None, clear=None, no_data_ms=3000)
    s, _ = run(timing, [(1000, 1)])
    s, trs = on_tick(s, timing, 3999)
    assert trs == ()
    s, trs = on_tick(s, timing, 4000)
    assert [(t.kind.value, t.status) for t in trs] == [("no_data", "firing")]
    s, trs = on_tick(s, timing, 5000)
    assert trs == ()
    s, out = run(timing, [(6000, 1)], s)
    assert out == [("no_data", "resolved", 6000)]


def test_no_data_freezes_a_firing_alert() -> None:
    timing = Timing(fire=lambda v: v < 1, clear=lambda v: v >= 1, no_data_ms=3000)
    s, _ = run(timing, [(1000, 0)])
    assert s.phase is Phase.FIRING
    s, trs = on_tick(s, timing, 10_000)
    assert [t.status for t in trs] == ["firing"] and s.phase is Phase.FIRING


def test_repeat_while_firing() -> None:
    timing = Timing(fire=lambda v: v > 1, clear=lambda v: v <= 1, repeat_ms=5000)
    s, _ = run(timing, [(1000, 2)])
    s, trs = on_tick(s, timing, 5999)
    assert trs == ()
    s, trs = on_tick(s, timing, 6000)
    assert [(t.status, t.starts_at_ms) for t in trs] == [("repeat", 1000)]
    s, trs = on_tick(s, timing, 7000)
    assert trs == ()
