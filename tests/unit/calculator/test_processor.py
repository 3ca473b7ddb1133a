"""The per-batch path: pass-through rates, expressions per label set, windows, group inputs."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from calculator.definitions import compile_definitions
from calculator.processor import BatchProcessor, Result
from calculator.state import ResourceState
from kemi_stats.model import MetricKind, Sample, SampleBatch, Source
from kemi_stats.registry.models import Derived

C64 = MetricKind.COUNTER64
C32 = MetricKind.COUNTER32
T0 = 1_700_000_000_000


def processor(grace_ms: int = 10_000, **docs: Derived) -> BatchProcessor:
    return BatchProcessor(compile_definitions(docs), grace_ms=grace_ms)


def batch(t: int, *samples: Sample, rid: str = "net:sw-1", **labels: str) -> SampleBatch:
    return SampleBatch(rid, t, Source.SNMP, list(samples), labels=dict(labels))


def values(res: Result, metric: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(s.labels.items())): s.value
        for b in res.derived
        for s in b.samples
        if s.metric == metric
    }


def run(p: BatchProcessor, state: ResourceState, b: SampleBatch) -> Result:
    # the agent stores state as bytes between batches: do the same here
    res = p.process(b, state)
    restored = ResourceState.from_bytes(state.to_bytes())
    state.series, state.uptime, state.windows = restored.series, restored.uptime, restored.windows
    return res


def test_rate_per_interface_times_eight() -> None:
    p = processor(if_in_bps=Derived(expr="rate(ifHCInOctets) * 8"))
    st_ = ResourceState()
    first = run(
        p,
        st_,
        batch(
            T0,
            Sample("ifHCInOctets", 1000, {"ifName": "eth0"}, C64),
            Sample("ifHCInOctets", 5000, {"ifName": "eth1"}, C64),
        ),
    )
    assert values(first, "if_in_bps") == {}
    assert first.reasons[("if_in_bps", "counter_seed")] == 2
    second = run(
        p,
        st_,
        batch(
            T0 + 60_000,
            Sample("ifHCInOctets", 1000 + 60 * 125_000, {"ifName": "eth0"}, C64),
            Sample("ifHCInOctets", 5000 + 60 * 1000, {"ifName": "eth1"}, C64),
        ),
    )
    assert values(second, "if_in_bps") == {
        (("ifName", "eth0"),): 1_000_000.0,
        (("ifName", "eth1"),): 8000.0,
    }
    out = second.derived[0]
    assert (
        out.resource_id == "net:sw-1" and out.time_ms == T0 + 60_000 and out.source is Source.CALC
    )


def test_scalar_expression_and_missing_input_and_division_by_zero() -> None:
    p = processor(mem_used_pct=Derived(expr="100 * (memTotalReal - memAvailReal) / memTotalReal"))
    st_ = ResourceState()
    ok = run(p, st_, batch(T0, Sample("memTotalReal", 200), Sample("memAvailReal", 50)))
    assert values(ok, "mem_used_pct") == {(): 75.0}
    missing = run(p, st_, batch(T0 + 1, Sample("memTotalReal", 200)))
    assert values(missing, "mem_used_pct") == {}
    assert missing.reasons[("mem_used_pct", "missing_input")] == 1
    zero = run(p, st_, batch(T0 + 2, Sample("memTotalReal", 0), Sample("memAvailReal", 0)))
    assert zero.reasons[("mem_used_pct", "division_by_zero")] == 1 and not zero.derived
    unrelated = run(p, st_, batch(T0 + 3, Sample("ifInErrors", 1)))
    assert not unrelated.reasons, "a batch without any input of a definition is not its business"


def test_scalar_inputs_combine_with_each_label_set() -> None:
    p = processor(util=Derived(expr="100 * rate(ifHCInOctets) * 8 / (ifHighSpeed * 1000000)"))
    st_ = ResourceState()
    run(
        p,
        st_,
        batch(
            T0,
            Sample("ifHCInOctets", 0, {"ifName": "eth0"}, C64),
            Sample("ifHighSpeed", 1, {"ifName": "eth0"}),
        ),
    )
    res = run(
        p,
        st_,
        batch(
            T0 + 10_000,
            Sample("ifHCInOctets", 625_000, {"ifName": "eth0"}, C64),
            Sample("ifHighSpeed", 1, {"ifName": "eth0"}),
        ),
    )
    assert values(res, "util") == {(("ifName", "eth0"),): 50.0}


def test_reset_by_uptime_emits_counter_reset_and_no_rate() -> None:
    p = processor(r=Derived(expr="rate(c)"))
    st_ = ResourceState()
    run(p, st_, batch(T0, Sample("sysUpTime", 100_000), Sample("c", 1000, {}, C32)))
    res = run(p, st_, batch(T0 + 60_000, Sample("sysUpTime", 500), Sample("c", 2000, {}, C32)))
    assert values(res, "r") == {}
    assert values(res, "counter_reset") == {(("counter", "c"),): 1}
    assert res.reasons[("r", "counter_reset")] == 1
    after = run(p, st_, batch(T0 + 120_000, Sample("sysUpTime", 6500), Sample("c", 8000, {}, C32)))
    assert values(after, "r") == {(): 100.0}


def test_counter_wrap_32_bit() -> None:
    p = processor(r=Derived(expr="rate(c)"))
    st_ = ResourceState()
    run(p, st_, batch(T0, Sample("c", (1 << 32) - 1000, {}, C32)))
    res = run(p, st_, batch(T0 + 10_000, Sample("c", 9000, {}, C32)))
    assert values(res, "r") == {(): 1000.0}
    assert res.steps["wrap"] == 1


def test_rate_ceiling_drops_and_counts() -> None:
    p = processor(r=Derived(expr="rate(c) * 8", max_rate=1000))
    st_ = ResourceState()
    run(p, st_, batch(T0, Sample("c", 0, {}, C64)))
    res = run(p, st_, batch(T0 + 1000, Sample("c", 5000, {}, C64)))
    assert values(res, "r") == {} and res.reasons[("r", "rate_ceiling")] == 1
    ok = run(p, st_, batch(T0 + 2000, Sample("c", 5500, {}, C64)))
    assert values(ok, "r") == {(): 4000.0}


def test_definitions_chain_and_resource_prefix_and_labels() -> None:
    p = processor(
        bps=Derived(expr="rate(o) * 8", resource_prefix="net:", labels={"unit": "bit/s"}),
        kbps=Derived(expr="bps / 1000"),
    )
    st_ = ResourceState()
    run(p, st_, batch(T0, Sample("o", 0, {}, C64)))
    res = run(p, st_, batch(T0 + 1000, Sample("o", 1000, {}, C64)))
    assert values(res, "bps") == {(("unit", "bit/s"),): 8000.0}
    assert values(res, "kbps") == {(): 8.0}
    other = ResourceState()
    run(p, other, batch(T0, Sample("o", 0, {}, C64), rid="host:a"))
    res2 = run(p, other, batch(T0 + 1000, Sample("o", 1000, {}, C64), rid="host:a"))
    assert values(res2, "bps") == {}


def test_delta_of_a_gauge() -> None:
    p = processor(d=Derived(expr="delta(temp)"))
    st_ = ResourceState()
    run(p, st_, batch(T0, Sample("temp", 40)))
    res = run(p, st_, batch(T0 + 1000, Sample("temp", 35)))
    assert values(res, "d") == {(): -5}


def test_tumbling_window_closes_on_next_window() -> None:
    p = processor(
        load=Derived(expr="avg(cpu)", window="5m"), peak=Derived(expr="max(cpu)", window="5m")
    )
    st_ = ResourceState()
    base = T0 - T0 % 300_000
    outs = []
    for i, v in enumerate([10, 20, 30, 40, 50]):
        outs.append(run(p, st_, batch(base + i * 60_000, Sample("cpu", v, {"cpu": "0"}))))
    assert all(not o.derived for o in outs)
    dup = run(p, st_, batch(base + 4 * 60_000, Sample("cpu", 999, {"cpu": "0"})))
    assert dup.reasons[("load", "late_sample")] == 1
    res = run(p, st_, batch(base + 300_000, Sample("cpu", 70, {"cpu": "0"})))
    assert values(res, "load") == {(("cpu", "0"),): 30.0}
    assert values(res, "peak") == {(("cpu", "0"),): 50.0}
    assert {b.time_ms for b in res.derived} == {base}


def test_window_closed_by_clock() -> None:
    p = processor(grace_ms=5000, load=Derived(expr="avg(cpu)", window=60))
    st_ = ResourceState()
    base = T0 - T0 % 60_000
    run(p, st_, batch(base + 1000, Sample("cpu", 4)))
    run(p, st_, batch(base + 2000, Sample("cpu", 8)))
    assert p.expire("net:sw-1", st_, base + 64_000) == []
    out = p.expire("net:sw-1", st_, base + 65_000)
    assert [(b.time_ms, b.samples[0].metric, b.samples[0].value) for b in out] == [
        (base, "load", 6.0)
    ]
    assert st_.windows == {}


def test_group_contributions_take_labels_from_series_or_batch() -> None:
    p = processor(site_in=Derived(expr="sum(x)", group_by=["site"]))
    res = run(p, ResourceState(), batch(T0, Sample("x", 5, {"ifName": "eth0"}), site="pangyo"))
    [c] = res.contributions
    assert (c.definition, c.group_labels, c.series_labels, c.value) == (
        "site_in",
        {"site": "pangyo"},
        {"ifName": "eth0"},
        5.0,
    )
    none = run(p, ResourceState(), batch(T0, Sample("x", 5)))
    assert none.reasons[("site_in", "missing_group_label")] == 1


def test_series_state_is_forgotten_after_ttl() -> None:
    p = BatchProcessor(compile_definitions({}), series_ttl_ms=60_000)
    st_ = ResourceState()
    run(p, st_, batch(T0, Sample("a", 1, {}, C64), Sample("b", 1, {}, C64)))
    run(p, st_, batch(T0 + 120_000, Sample("a", 2, {}, C64)))
    assert [k.split("\x1f")[0] for k in st_.series] == ["a"]


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.integers(-120_000, 120_000),  # time jitter: out of order and duplicates
            st.integers(0, (1 << 32) - 1),
            st.booleans(),  # uptime drop
        ),
        min_size=1,
        max_size=40,
    )
)
def test_no_negative_or_absurd_output_through_the_processor(
    steps: list[tuple[int, int, bool]],
) -> None:
    p = processor(bps=Derived(expr="rate(c) * 8"), inc=Derived(expr="increase(c)"))
    st_ = ResourceState()
    uptime = 10**6
    t = T0
    newest: tuple[int, int] | None = None  # (time, uptime) of the newest batch by event time
    for jitter, value, reboot in steps:
        t_i = t + jitter
        t += 60_000
        uptime = 0 if reboot else uptime + 6000
        # in event-time order, did sysUpTime go down? (late batches are not evidence)
        went_down = newest is not None and t_i > newest[0] and uptime < newest[1]
        if newest is None or t_i > newest[0]:
            newest = (t_i, uptime)
        res = run(
            p, st_, batch(t_i, Sample("sysUpTime", uptime), Sample("c", value, {"i": "1"}, C32))
        )
        got = {s.metric: s.value for b in res.derived for s in b.samples}
        assert ("bps" in got) == ("inc" in got)
        if "inc" in got:
            assert not went_down, "a rate across a reboot"
            assert 0 <= got["inc"] < (1 << 31), "no more than half a turn per step"
            assert got["bps"] >= 0


def test_float_counter_rates_and_resets_never_wraps() -> None:
    fc = MetricKind.FLOAT_COUNTER
    p = processor(r=Derived(expr="rate(http_requests_total)"))
    st_ = ResourceState()
    run(p, st_, batch(T0, Sample("http_requests_total", 10.5, {}, fc)))
    res = run(p, st_, batch(T0 + 10_000, Sample("http_requests_total", 30.5, {}, fc)))
    assert values(res, "r") == {(): 2.0}
    # a drop is the process restarting: a reset, never a wrap of 2**64
    res = run(p, st_, batch(T0 + 20_000, Sample("http_requests_total", 1.0, {}, fc)))
    assert values(res, "r") == {} and res.reasons[("r", "counter_reset")] == 1
    res = run(p, st_, batch(T0 + 30_000, Sample("http_requests_total", 6.0, {}, fc)))
    assert values(res, "r") == {(): 0.5}


def test_a_definition_whose_result_is_too_large_fails_per_sample_and_the_others_still_run() -> None:
    p = processor(
        power=Derived(expr="x ** y"),
        shifted=Derived(expr="x << y"),
        total=Derived(expr="x + y"),
    )
    res = run(p, ResourceState(), batch(T0, Sample("x", 3_999_999), Sample("y", 3_999_999)))
    assert res.reasons == {("power", "math_error"): 1, ("shifted", "math_error"): 1}
    assert values(res, "total") == {(): 7_999_998.0}
    assert values(res, "power") == {} and values(res, "shifted") == {}


_METRICS = [("ifHCInOctets", C64), ("memTotal", MetricKind.GAUGE), ("memFree", MetricKind.GAUGE),
            ("temp", MetricKind.GAUGE), ("sysUpTime", MetricKind.GAUGE), ("noise", MetricKind.GAUGE),
            ("other_counter", C32), ("chatter", MetricKind.GAUGE)]  # fmt: skip
_samples = st.builds(
    lambda m, v, lab: Sample(m[0], v, lab, m[1]),
    st.sampled_from(_METRICS),
    st.integers(min_value=0, max_value=10_000),
    st.sampled_from([{}, {"ifName": "eth0"}, {"ifName": "eth1"}]),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_samples, max_size=12), min_size=1, max_size=5))
def test_gauges_no_definition_reads_change_nothing_when_left_out(
    takes: list[list[Sample]],
) -> None:
    p = processor(
        bps=Derived(expr="rate(ifHCInOctets) * 8"),
        used=Derived(expr="100 * (memTotal - memFree) / memTotal"),
        warming=Derived(expr="delta(temp)"),
        peak=Derived(expr="max(temp)", window=60),
        site_free=Derived(expr="sum(memFree)", group_by=["site"]),
    )
    assert p.gauges_read == {"ifHCInOctets", "memTotal", "memFree", "temp", "sysUpTime"}
    whole, read = ResourceState(), ResourceState()
    for i, samples in enumerate(takes):
        t = T0 + i * 10_000
        full = batch(t, *samples, site="pangyo")
        part = batch(t, *(s for s in samples if s.kind is not MetricKind.GAUGE
                          or s.metric in p.gauges_read), site="pangyo")  # fmt: skip
        a, b = run(p, whole, full), run(p, read, part)
        # the same outputs and state; the order of label sets may differ (it never matters)
        assert _canonical(a) == _canonical(b)
        assert json.loads(whole.to_bytes()) == json.loads(read.to_bytes())


def _canonical(res: Result) -> tuple[object, ...]:
    derived = sorted(
        (b.resource_id, b.time_ms, s.metric, sorted(s.labels.items()), s.value)
        for b in res.derived
        for s in b.samples
    )
    contributions = sorted(
        (c.definition, sorted(c.group_labels.items()), sorted(c.series_labels.items()), c.value)
        for c in res.contributions
    )
    return derived, contributions, res.reasons, res.steps
