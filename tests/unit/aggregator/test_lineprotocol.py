"""Line protocol as the InfluxDB reference describes it, mapped to samples."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aggregator.grant import Grant
from aggregator.grouping import BatchBuilder
from aggregator.lineprotocol import LineProtocolParser
from aggregator.rejection import Rejection
from aggregator.settings import AggregatorSettings
from aggregator.timestamps import TimeWindow
from kemi_stats.model import MetricKind, SampleBatch
from kemi_stats.registry.models import Counters
from tests.unit.aggregator.support import make_grant

NOW_MS = 1_714_564_800_000
NOW_NS = NOW_MS * 1_000_000
WINDOW = TimeWindow.around(NOW_MS, 7 * 86400, 600)


GRANT = make_grant()


def parse(
    text: str, precision: str = "ns", grant: Grant = GRANT, **settings: object
) -> tuple[list[SampleBatch], BatchBuilder]:
    out = BatchBuilder()
    LineProtocolParser(AggregatorSettings(**settings)).parse(  # type: ignore[arg-type]
        text.encode(), precision, WINDOW, out, grant
    )
    return out.batches(), out


def reject(
    text: str | bytes,
    precision: str = "ns",
    grant: Grant = GRANT,
    status: int = 400,
    **settings: object,
) -> Rejection:
    body = text.encode() if isinstance(text, str) else text
    with pytest.raises(Rejection) as info:
        LineProtocolParser(AggregatorSettings(**settings)).parse(  # type: ignore[arg-type]
            body, precision, WINDOW, BatchBuilder(), grant
        )
    assert info.value.status == status
    return info.value


def test_fields_become_samples_named_measurement_field() -> None:
    (batch,), _ = parse(f"cpu,host=web-01,cpu=cpu0 usage_user=12.5,usage_system=3i {NOW_NS}")
    assert batch.resource_id == "web-01" and batch.time_ms == NOW_MS
    assert {(s.metric, s.value, s.kind) for s in batch.samples} == {
        ("cpu_usage_user", 12.5, MetricKind.GAUGE),
        ("cpu_usage_system", 3, MetricKind.GAUGE),
    }
    assert all(s.labels == {"cpu": "cpu0"} for s in batch.samples)


def test_field_types() -> None:
    (batch,), out = parse(
        f'm,host=h f=1.5,e=-1e3,i=-7i,u=18446744073709551615u,t=t,T=TRUE,f0=false,s="text" {NOW_NS}'
    )
    values = {s.metric: s.value for s in batch.samples}
    assert values == {
        "m_f": 1.5,
        "m_e": -1000.0,
        "m_i": -7,
        "m_u": 2**64 - 1,
        "m_t": 1,
        "m_T": 1,
        "m_f0": 0,
    }
    assert out.dropped_fields == 1


def test_string_fields_rejected_when_configured() -> None:
    err = reject(f'm,host=h s="x" {NOW_NS}', string_fields="reject")
    assert err.line == 1 and "string" in err.message


def test_escapes_and_quoted_strings() -> None:
    text = f'my\\ cpu,host=web\\,01,ta\\=g=a\\ b value=1,note="a \\"q\\" b, c=d" {NOW_NS}'
    (batch,), out = parse(text)
    assert batch.resource_id == "web,01"
    (sample,) = batch.samples
    assert sample.metric == "my_cpu_value" and sample.labels == {"ta_g": "a b"}
    assert out.dropped_fields == 1


def test_precisions_and_missing_timestamp() -> None:
    for precision, ts in (
        ("s", NOW_MS // 1000),
        ("ms", NOW_MS),
        ("us", NOW_MS * 1000),
        ("h", NOW_MS // 3_600_000),
    ):
        (batch,), _ = parse(f"m,host=h v=1 {ts}", precision)
        assert abs(batch.time_ms - NOW_MS) < 3_600_000
    (batch,), _ = parse("m,host=h v=1")
    assert batch.time_ms == NOW_MS
    assert reject("m,host=h v=1", precision="fortnight").value == "fortnight"


def test_kinds_from_tag_counter_sets_and_token_globs() -> None:
    grant = make_grant(
        {"app": Counters(metrics=["app_tx"], kind="counter32")}, counters=["*_drops"]
    )
    (batch,), _ = parse(
        f"app,host=h,kemi_kind=counter64 rx=5i {NOW_NS}\n"
        f"app,host=h tx=6i,drops=1.0,level=3 {NOW_NS}",
        grant=grant,
    )
    kinds = {s.metric: (s.kind, s.value) for s in batch.samples}
    assert kinds == {
        "app_rx": (MetricKind.COUNTER64, 5),
        "app_tx": (MetricKind.COUNTER32, 6),
        "app_drops": (MetricKind.COUNTER64, 1),
        "app_level": (MetricKind.GAUGE, 3),
    }
    assert "negative" in reject(f"net,host=h,kemi_kind=counter v=-1i {NOW_NS}").message
    assert "not known" in reject(f"net,host=h,kemi_kind=histogram v=1 {NOW_NS}").message


def test_lines_group_per_resource_and_time_last_value_wins() -> None:
    batches, out = parse(
        f"cpu,host=a v=1 {NOW_NS}\nmem,host=a used=2 {NOW_NS}\ncpu,host=b v=3 {NOW_NS}\ncpu,host=a v=4 {NOW_NS}\n"
    )
    by_rid = {b.resource_id: {s.metric: s.value for s in b.samples} for b in batches}
    assert by_rid == {"a": {"cpu_v": 4, "mem_used": 2}, "b": {"cpu_v": 3}}
    assert out.samples == 3


def test_comments_blank_lines_and_crlf() -> None:
    batches, _ = parse(f"# hello\n\n  \nm,host=h v=1 {NOW_NS}\r\n")
    assert len(batches) == 1


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("m,host=h v=NaN", "not a value"),
        ("m,host=h v=inf", "not a value"),
        ("m,host=h v=1e999", "not finite"),
        ("m,host=h v=1_0", "not a value"),
        ("m,host=h v=abc", "not a value"),
        ("m,host=h v=9223372036854775808i", "int64"),
        ("m,host=h v=-1u", "outside uint64"),
        ("m v=1", "no tag 'host', 'instance' or 'host.name'"),
        ("m,host=h", "no fields"),
        ("m,host=h v", "no value"),
        ("m,host=h v=1 12x", "not an integer"),
        ("m,host=h v=1 1 2", "after the timestamp"),
        ('m,host=h v="open', "not closed"),
        ("m,host= v=1", "empty"),
        (",host=h v=1", "measurement is empty"),
        (f"m,host=h v=1 {NOW_NS * 3}", "in the future"),
        ("m,host=h v=1 1", "old"),
    ],
)
def test_invalid_lines_name_line_value_and_expectation(text: str, needle: str) -> None:
    err = reject(f"m,host=ok v=1 {NOW_NS}\n{text}")
    assert err.line == 2
    assert needle in err.message, err.message
    assert err.body()["line"] == 2 and "message" in err.body()


def test_invalid_utf8_names_the_line() -> None:
    err = reject(b"m,host=h v=1\nm,host=h\xff v=1\n")
    assert err.line == 2 and "UTF-8" in err.message


def test_100k_tags_refused_quickly() -> None:
    line = "m,host=h," + ",".join(f"t{i}=v" for i in range(100_000)) + " v=1"
    err = reject(line)
    assert "tags" in err.message
    assert len(err.body()["value"]) < 300


def test_names_are_mapped_to_platform_names() -> None:
    (batch,), _ = parse(f"disk-io,host=h,dev/name=sda 1st=1 {NOW_NS}")
    (sample,) = batch.samples
    assert sample.metric == "disk_io_1st" and sample.labels == {"dev_name": "sda"}


def test_the_token_template_names_the_resource_and_its_tags_are_not_labels() -> None:
    grant = make_grant(resource_prefix="host:", resource_template="host:{host}")
    (batch,), _ = parse(f"cpu,host=web-01,cpu=cpu0 usage_user=1 {NOW_NS}", grant=grant)
    assert batch.resource_id == "host:web-01"
    assert {tuple(sorted(s.labels.items())) for s in batch.samples} == {(("cpu", "cpu0"),)}


def test_a_line_missing_the_template_tags_is_a_400_naming_the_line() -> None:
    grant = make_grant(resource_template="host:{host}")
    err = reject(f"cpu,host=a v=1 {NOW_NS}\ncpu,hostname=b v=1 {NOW_NS}", grant=grant)
    assert err.line == 2
    assert "no tag 'host'" in err.message and "'host:{host}'" in err.message


def test_an_id_outside_the_prefix_is_a_403_suggesting_the_template() -> None:
    grant = make_grant(resource_prefix="host:")
    err = reject(f"cpu,host=web-01 v=1 {NOW_NS}", grant=grant, status=403)
    assert err.line == 1
    assert "'web-01'" in err.message
    assert "kemi-stats token update test --resource-template 'host:{host}'" in err.message
    grant = make_grant(resource_prefix="node:")
    err = reject(f"up,instance=web-01:9100 v=1 {NOW_NS}", grant=grant, status=403)
    assert "--resource-template 'node:{instance|noport}'" in err.message


def test_telegraf_counters_are_built_in_and_a_registry_entry_replaces_them() -> None:
    text = f"net,host=h,interface=eth0 bytes_recv=5i,speed=1000i {NOW_NS}\nnetstat,host=h tcp_established=3i {NOW_NS}"
    (batch,), _ = parse(text)
    kinds = {s.metric: s.kind for s in batch.samples}
    assert kinds == {
        "net_bytes_recv": MetricKind.COUNTER64,
        "net_speed": MetricKind.GAUGE,
        "netstat_tcp_established": MetricKind.GAUGE,
    }
    off = make_grant({"telegraf": Counters(metrics=["x"], enabled=False)})
    (batch,), _ = parse(text, grant=off)
    assert {s.kind for s in batch.samples} == {MetricKind.GAUGE}


def test_telegraf_cpu_time_is_a_float_counter() -> None:
    (batch,), _ = parse(f"cpu,host=h,cpu=cpu0 time_user=1234.56,usage_user=3.5 {NOW_NS}")
    kinds = {s.metric: (s.kind, s.value) for s in batch.samples}
    assert kinds == {
        "cpu_time_user": (MetricKind.FLOAT_COUNTER, 1234.56),
        "cpu_usage_user": (MetricKind.GAUGE, 3.5),
    }


_HEADS = ("cpu,host=a", "cpu,host=b,cpu=cpu1", "cpu,host=a,kemi_kind=counter", "cpu,host=a\\ b",
          "cpu,site=x", ",host=a", "cpu,host=a,cpu=", "cpu,host=a\\=b")  # fmt: skip
_FIELD_KEYS = ("usage", "idle", "", "_")
_FIELD_VALUES = ("1.5", "-2.5", "3i", "4u", "t", '"text"', "1e999", "nan", "1.2.3", "", "+7",
                 "1=2", "9=idle")  # fmt: skip
_STAMPS = (str(NOW_NS), str(NOW_NS + 1_000_000_000), "", "12", "x1", f"{NOW_NS}\r")
_SPECIAL = ("", "# a comment", "   ", "  ", "cpu,host=a usage=1.5  " + str(NOW_NS), "cpu,host=a",
            f" _=1.5 {NOW_NS}", f"cpu,host=a usage=1=idle,5 {NOW_NS}", f"cpu,host=a idle {NOW_NS}")  # fmt: skip


def _outcome(parse_body: Callable[[BatchBuilder], None]) -> object:
    out = BatchBuilder()
    try:
        parse_body(out)
    except Rejection as exc:
        return ("refused", exc.status, str(exc))
    written = {(b.resource_id, b.time_ms, s.metric, tuple(sorted(s.labels.items())), repr(s.value),
                s.kind) for b in out.batches() for s in b.samples}  # fmt: skip
    return written, out.samples, out.dropped_fields, len(out.records())


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(
                st.sampled_from(_HEADS),
                st.lists(
                    st.tuples(st.sampled_from(_FIELD_KEYS), st.sampled_from(_FIELD_VALUES)),
                    min_size=1,
                    max_size=3,
                ),
                st.sampled_from(_STAMPS),
            ).map(lambda t: f"{t[0]} {','.join(f'{k}={v}' for k, v in t[1])} {t[2]}".rstrip(" ")),
            st.sampled_from(_SPECIAL),
        ),
        max_size=12,
    ),
    st.booleans(),
)
def test_bulk_and_line_by_line_parsing_agree(lines: list[str], warm: bool) -> None:
    """Lines of known heads go in bulk, the rest one by one in their place: the outcome
    (what is written, dropped or refused, and the records) is the one of reading every
    line on its own, in order."""
    body = "\n".join(lines).encode()
    parser = LineProtocolParser(AggregatorSettings())
    if warm:  # heads and field keys seen before
        with contextlib.suppress(Rejection):
            parser.parse(body, "ns", WINDOW, BatchBuilder(), GRANT)
    reference = LineProtocolParser(AggregatorSettings())

    def line_by_line(out: BatchBuilder) -> None:
        for number, line in enumerate(body.decode().split("\n"), 1):
            reference._odd_line(number, line, (1, 1_000_000), WINDOW, out, GRANT)

    bulk = _outcome(lambda out: parser.parse(body, "ns", WINDOW, out, GRANT))
    assert bulk == _outcome(line_by_line)


@pytest.mark.parametrize("warm", [False, True])
def test_a_series_given_twice_keeps_its_last_value_whatever_its_type(warm: bool) -> None:
    parser = LineProtocolParser(AggregatorSettings())
    float_then_int = f"cpu,host=a usage=1.5 {NOW_NS}\ncpu,host=a usage=2i {NOW_NS}"
    if warm:  # the float line then goes in bulk
        parser.parse(float_then_int.encode(), "ns", WINDOW, BatchBuilder(), GRANT)
    for body, value in ((float_then_int, 2), (f"cpu,host=a usage=2i {NOW_NS}\n"
                                               f"cpu,host=a usage=1.5 {NOW_NS}", 1.5)):  # fmt: skip
        out = BatchBuilder()
        parser.parse(body.encode(), "ns", WINDOW, out, GRANT)
        (batch,) = out.batches()
        assert [s.value for s in batch.samples] == [value] and out.samples == 1
