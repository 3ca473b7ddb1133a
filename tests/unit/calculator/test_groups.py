"""Group aggregates: contributions round-trip the groups topic and fold per bucket."""

from __future__ import annotations

import pytest

from calculator.definitions import compile_definitions
from calculator.groups import (
    BUNDLE,
    GroupAggregator,
    decode_contributions,
    encode_contributions,
)
from calculator.processor import Contribution
from calculator.state import GroupState
from kemi_stats.errors import CodecError
from kemi_stats.registry.models import Derived

T0 = 1_700_000_040_000 - 1_700_000_040_000 % 60_000


def agg() -> GroupAggregator:
    defs = compile_definitions({"site_in_bps": Derived(expr="sum(if_in_bps)", group_by=["site"])})
    return GroupAggregator(defs, default_bucket_ms=60_000, grace_ms=5_000)


def c(rid: str, t: int, v: float, ifname: str = "eth0") -> Contribution:
    return Contribution("site_in_bps", {"site": "pangyo"}, rid, {"ifName": ifname}, t, v)


def test_contribution_round_trip() -> None:
    [(key, value)] = encode_contributions([c("net:a", T0, 5.0)])
    assert key == b"site_in_bps/site=pangyo"
    assert decode_contributions(value) == [c("net:a", T0, 5.0)]


def test_a_bundle_carries_each_contribution_with_its_resource_and_time() -> None:
    many = [c(f"net:r{i}", T0 + i, float(i), ifname=f"eth{i % 3}") for i in range(BUNDLE + 7)]
    records = encode_contributions(many)
    assert [key for key, _ in records] == [b"site_in_bps/site=pangyo"] * 2
    back = [x for _, value in records for x in decode_contributions(value)]
    assert back == many


def test_a_bundle_of_long_labels_is_split_under_the_record_size() -> None:
    from kemi_stats.codec import MAX_RECORD_BYTES

    many = [c(f"net:r{i}", T0 + i, float(i), ifname=f"eth{i}-" + "x" * 3000) for i in range(400)]
    records = encode_contributions(many)
    assert all(len(value) <= MAX_RECORD_BYTES for _, value in records)
    assert [x for _, value in records for x in decode_contributions(value)] == many


def test_a_record_that_is_not_a_contribution_is_refused() -> None:
    from kemi_stats.codec import encode_batch
    from kemi_stats.model import Sample, SampleBatch, Source

    plain = encode_batch(SampleBatch("net:a", T0, Source.CALC, [Sample("x", 1.0)]))
    with pytest.raises(CodecError, match="not a group contribution"):
        decode_contributions(plain)


def test_sum_per_bucket_latest_value_per_member() -> None:
    a = agg()
    state = GroupState.from_bytes(None)
    assert a.add(c("net:a", T0 + 1000, 10), state)[0] == []
    assert a.add(c("net:b", T0 + 2000, 5), state)[0] == []
    assert a.add(c("net:b", T0 + 30_000, 7), state)[0] == []  # replaces b's earlier value
    assert a.add(c("net:a", T0 + 2000, 1, "eth1"), state)[0] == []
    state = GroupState.from_bytes(state.to_bytes())
    # the group's newest input passes bucket end + grace: the bucket closes
    out, status = a.add(c("net:a", T0 + 66_000, 3), state)
    assert status == "added"
    [b] = out
    assert (b.resource_id, b.time_ms) == ("group:site=pangyo", T0)
    assert [(s.metric, s.value, s.labels) for s in b.samples] == [
        ("site_in_bps", 18.0, {"site": "pangyo"})
    ]
    assert a.add(c("net:c", T0 + 3000, 1), state) == ([], "late")


def test_buckets_close_by_clock() -> None:
    a = agg()
    state = GroupState()
    a.add(c("net:a", T0 + 1000, 10), state)
    assert a.expire(state, T0 + 64_000) == []
    [b] = a.expire(state, T0 + 65_000)
    assert b.samples[0].value == 10.0


def test_removed_definition_drops_its_buckets() -> None:
    a = agg()
    state = GroupState()
    a.add(c("net:a", T0, 1), state)
    gone = GroupAggregator(compile_definitions({}), default_bucket_ms=60_000, grace_ms=0)
    assert gone.add(c("net:a", T0, 1), state) == ([], "unknown")
    assert gone.expire(state, T0 + 10**6) == [] and state.buckets == {}
