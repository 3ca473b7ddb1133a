"""Counter steps: wraps, resets, duplicates and out-of-order readings never give a bad rate."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from calculator.counters import Reading, StepKind, counter_step

M32 = 1 << 32
M64 = 1 << 64


def test_first_reading_seeds() -> None:
    step = counter_step(None, 100, 1000, M32)
    assert step.kind is StepKind.SEED and step.rate is None and step.state == Reading(100, 1000)


def test_increase_and_rate() -> None:
    step = counter_step(Reading(1000, 0), 61_000, 60_000, M64)
    assert step.kind is StepKind.OK
    assert step.increase == 60_000 and step.rate == 1000.0


def test_counter32_wrap_is_corrected() -> None:
    step = counter_step(Reading(M32 - 500, 0), 1500, 10_000, M32)
    assert step.kind is StepKind.WRAP and step.increase == 2000 and step.rate == 200.0


def test_counter64_wrap_is_corrected() -> None:
    step = counter_step(Reading(M64 - 10, 0), 90, 1000, M64)
    assert step.kind is StepKind.WRAP and step.increase == 100


def test_drop_no_wrap_explains_is_a_reset() -> None:
    # counter64 from 5e12 down to 1000: a wrap would be 2**64 - 5e12 octets: a reset
    step = counter_step(Reading(5_000_000_000_000, 0), 1000, 60_000, M64)
    assert step.kind is StepKind.RESET and step.rate is None and step.state == Reading(1000, 60_000)


def test_uptime_drop_resets_even_when_value_rose() -> None:
    step = counter_step(Reading(1000, 0), 5000, 60_000, M32, rebooted=True)
    assert step.kind is StepKind.RESET and step.rate is None


def test_duplicate_and_out_of_order_keep_state() -> None:
    last = Reading(1000, 60_000)
    dup = counter_step(last, 1000, 60_000, M32)
    old = counter_step(last, 500, 30_000, M32)
    assert dup.kind is StepKind.DUPLICATE and dup.state == last and dup.rate is None
    assert old.kind is StepKind.OUT_OF_ORDER and old.state == last and old.rate is None


def test_gauge_like_counter_without_modulus_resets_on_drop() -> None:
    assert counter_step(Reading(10, 0), 5, 1000, None).kind is StepKind.RESET


@st.composite
def counter_walk(draw: st.DrawFn, modulus: int) -> list[tuple[int, int, int, bool, int]]:
    """Readings of a true counter: (time_ms, reported value, true increase, rebooted, uptime)."""
    steps = draw(st.integers(1, 40))
    max_inc = modulus // 2 - 1
    true_total = draw(st.integers(0, modulus - 1))
    t = draw(st.integers(0, 10**12))
    uptime = draw(st.integers(1, 10**6))
    out = [(t, true_total % modulus, 0, False, uptime)]
    for _ in range(steps):
        dt = draw(st.integers(1, 600_000))
        t += dt
        if uptime > 0 and draw(st.integers(0, 9)) == 0:  # a reboot: the counter starts anew
            uptime = draw(st.integers(0, min(uptime - 1, dt // 10)))
            true_total = draw(st.integers(0, max_inc))
            out.append((t, true_total % modulus, -1, True, uptime))
            continue
        uptime += max(1, dt // 10)
        inc = draw(st.one_of(st.integers(0, 1000), st.integers(0, max_inc)))
        true_total += inc
        out.append((t, true_total % modulus, inc, False, uptime))
    return out


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([M32, M64]).flatmap(lambda m: st.tuples(st.just(m), counter_walk(m))))
def test_rate_equals_true_rate_across_wraps_and_reboots(case: tuple[int, list]) -> None:
    modulus, walk = case
    last: Reading | None = None
    last_uptime: int | None = None
    for t, value, inc, rebooted, uptime in walk:
        went_down = last_uptime is not None and uptime < last_uptime
        step = counter_step(last, value, t, modulus, rebooted=went_down)
        if last is None:
            assert step.kind is StepKind.SEED
        elif rebooted:
            assert step.kind is StepKind.RESET and step.rate is None
        else:
            assert step.accepted
            assert step.increase == inc
            assert step.rate == inc / ((t - last.time_ms) / 1000)
        last, last_uptime = step.state, uptime


@settings(max_examples=500, deadline=None)
@given(
    modulus=st.sampled_from([M32, M64]),
    readings=st.lists(
        st.tuples(st.integers(0, 10_000_000), st.integers(0, (1 << 64) - 1), st.booleans()),
        min_size=1,
        max_size=60,
    ),
)
def test_no_negative_or_absurd_rate_for_any_input(
    modulus: int, readings: list[tuple[int, int, bool]]
) -> None:
    """Arbitrary values, shuffled and repeated times, spurious reboots: nothing bad comes out."""
    last: Reading | None = None
    newest = -1
    for t, raw, rebooted in readings:
        value = raw % modulus
        step = counter_step(last, value, t, modulus, rebooted=rebooted)
        if step.rate is not None:
            assert last is not None and t > last.time_ms
            assert step.rate >= 0 and step.increase is not None and step.increase >= 0
            # never more than half a turn of the counter per step: no wrap-sized spike
            assert step.increase < modulus / 2
        if t <= newest:
            assert step.rate is None and step.state == last, "old or repeated reading changed state"
        newest = max(newest, t)
        last = step.state


@settings(max_examples=200, deadline=None)
@given(
    start=st.integers(0, M32 - 1),
    incs=st.lists(st.integers(0, 10**6), min_size=2, max_size=30),
    data=st.data(),
)
def test_replaying_a_prefix_changes_nothing(
    start: int, incs: list[int], data: st.DataObject
) -> None:
    """A restart re-delivers records already applied: they must not move the state or emit."""
    readings = []
    total = start
    for i, inc in enumerate(incs):
        total += inc
        readings.append(((i + 1) * 60_000, total % M32))
    last: Reading | None = None
    for t, v in readings:
        last = counter_step(last, v, t, M32).state
    cut = data.draw(st.integers(0, len(readings) - 1))
    for t, v in readings[cut:]:
        step = counter_step(last, v, t, M32)
        assert step.rate is None and step.state == last
