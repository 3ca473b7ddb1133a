"""Records written from prepared series decode exactly as the codec's own records do."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kemi_stats.batch_writer import PreparedSeries, SeriesCache, encode_prepared_batch
from kemi_stats.codec import decode_batch, encode_batch
from kemi_stats.model import MetricKind, Sample, SampleBatch, Source

_text = st.text(min_size=1, max_size=40)
_values = st.one_of(
    st.floats(allow_nan=False),
    st.integers(min_value=-(1 << 63), max_value=(1 << 64) - 1),
)
_samples = st.lists(
    st.tuples(_text, _values, st.dictionaries(_text, st.text(max_size=300), max_size=6),
              st.sampled_from(list(MetricKind))),
    max_size=20,
    unique_by=lambda s: (s[0], tuple(sorted(s[2].items()))),
)  # fmt: skip


@given(
    resource=_text,
    time_ms=st.integers(min_value=-(1 << 63), max_value=(1 << 63) - 1),
    source=st.sampled_from(list(Source)),
    revision=st.integers(min_value=0, max_value=(1 << 63) - 1),
    samples=_samples,
)
def test_prepared_records_decode_as_the_codec_writes_them(
    resource: str,
    time_ms: int,
    source: Source,
    revision: int,
    samples: list[tuple[str, float | int, dict[str, str], MetricKind]],
) -> None:
    batch = SampleBatch(resource, time_ms, source, [Sample(*s) for s in samples],
                        config_revision=revision)  # fmt: skip
    prepared = [PreparedSeries(m, labels, kind).sample(v) for m, v, labels, kind in samples]
    written = decode_batch(encode_prepared_batch(resource, time_ms, source, prepared, revision))
    assert written == decode_batch(encode_batch(batch))
    assert [type(s.value) for s in written.samples] == [type(v) for _, v, _, _ in samples]


def test_a_series_is_one_identity_whatever_the_label_order() -> None:
    a = PreparedSeries("ifInOctets", {"ifName": "eth0", "dir": "in"}, MetricKind.COUNTER64)
    b = PreparedSeries("ifInOctets", {"dir": "in", "ifName": "eth0"}, MetricKind.GAUGE)
    assert a.identity == b.identity  # metric and labels, not the kind


def test_the_cache_prepares_a_series_once_and_starts_over_when_full() -> None:
    cache = SeriesCache(size=2)
    first = cache.get("m", {"a": "1"}, (("a", "1"),), MetricKind.GAUGE)
    assert cache.get("m", {"a": "1"}, (("a", "1"),), MetricKind.GAUGE) is first
    cache.get("n", {}, (), MetricKind.GAUGE)
    cache.get("o", {}, (), MetricKind.GAUGE)
    assert len(cache) == 1


def test_the_cache_starts_over_before_long_labels_pass_its_byte_bound() -> None:
    cache = SeriesCache(max_bytes=10_000)
    for i in range(3):
        cache.get("m", {"v": str(i) * 3000}, (("v", str(i) * 3000),), MetricKind.GAUGE)
    assert len(cache) == 1  # two of them would pass 10,000 bytes
