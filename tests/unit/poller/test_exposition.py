"""Exposition pages -> samples: kinds from # TYPE, names and labels, what is dropped."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, Info
from prometheus_client.openmetrics.exposition import generate_latest

from kemi_stats.codec import decode_batch, encode_batch
from kemi_stats.model import MetricKind, Sample, SampleBatch, Source
from poller.exposition import ExpositionError, Page, PageReader


def parse_exposition(text: str, content_type: str, limit: int) -> Page:
    """A page read in full, as its target's first scrape reads it."""
    return PageReader().read(text, content_type, limit)


def samples(page: Page) -> list[Sample]:
    """The samples a page's encoded parts decode to, as readers of the topic see them."""
    head = encode_batch(SampleBatch("r", 1, Source.SCRAPE, []))
    return decode_batch(head + b"".join(page.parts)).samples


PAGE = """# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{path="/a",code="200"} 5
http_requests_created{path="/a",code="200"} 1.7e9
# TYPE lat histogram
lat_bucket{le="0.1"} 1
lat_bucket{le="+Inf"} 2
lat_sum 0.3
lat_count 2
# TYPE rpc summary
rpc{quantile="0.5"} NaN
rpc_sum 1.5
rpc_count 3
# TYPE temp gauge
temp -4.5
untyped_thing 3 1700000000000
# TYPE broken_total counter
broken_total -1
"""


def test_kinds_come_from_the_type_lines_and_odd_values_are_dropped() -> None:
    page = parse_exposition(PAGE, "text/plain; version=0.0.4", 100)
    got = {(s.metric, tuple(sorted(s.labels.items()))): (s.value, s.kind) for s in samples(page)}
    floats, gauge = MetricKind.FLOAT_COUNTER, MetricKind.GAUGE
    assert got == {
        ("http_requests_total", (("code", "200"), ("path", "/a"))): (5.0, floats),
        ("http_requests_created", (("code", "200"), ("path", "/a"))): (1.7e9, gauge),
        ("lat_bucket", (("le", "0.1"),)): (1.0, floats),
        ("lat_bucket", (("le", "+Inf"),)): (2.0, floats),
        ("lat_sum", ()): (0.3, floats),
        ("lat_count", ()): (2.0, floats),
        ("rpc_sum", ()): (1.5, floats),
        ("rpc_count", ()): (3.0, floats),
        ("temp", ()): (-4.5, gauge),
        ("untyped_thing", ()): (3.0, gauge),
    }
    assert page.exposed == 12
    assert page.dropped == {"not_finite": 1, "negative_counter": 1}


def test_openmetrics_is_read_when_the_endpoint_offers_it() -> None:
    text = "# TYPE jobs counter\njobs_total 4\njobs_created 1.7e9\n# EOF\n"
    page = parse_exposition(text, "application/openmetrics-text; version=1.0.0", 10)
    assert [(s.metric, s.kind) for s in samples(page)] == [
        ("jobs_total", MetricKind.FLOAT_COUNTER),
        ("jobs_created", MetricKind.GAUGE),
    ]


@pytest.mark.parametrize(
    ("text", "limit", "reason"),
    [
        ("this is { not exposition", 10, "parse"),
        ('m{a="b} 1\n', 10, "parse"),
        (PAGE, 5, "sample_limit"),
    ],
)
def test_bad_pages_and_pages_over_the_limit_fail_whole(text: str, limit: int, reason: str) -> None:
    with pytest.raises(ExpositionError) as caught:
        parse_exposition(text, "text/plain", limit)
    assert caught.value.reason == reason


def _page(a: float, b: float, c: str) -> str:
    return (
        "# TYPE http_requests_total counter\n"
        f'http_requests_total{{path="/a b}}",code="200"}} {a}\n'
        f'http_requests_total{{path="/c\\"d",code="500"}} {b} 1700000000000\r\n'
        "# TYPE lat histogram\n"
        f'lat_bucket{{le="+Inf"}} {a}\n'
        f"lat_sum {b}\n"
        f"lat_count {a}\n"
        "# TYPE rpc summary\n"
        f'rpc{{quantile="0.5"}} {c}\n'
        f"  temp {b}  \n"
        "\n"
        f"jobs {a}\n"
    )


def _outcome(page: object) -> tuple[list[bytes], int, dict[str, int]]:
    return sorted(page.parts), page.exposed, page.dropped  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("a", "b", "c"),
    [(6.0, 2.5, "NaN"), (7.0, -1.0, "0.25"), (1e300, 0.0, "+Inf"), (-3.0, 4.0, "1")],
)
def test_a_known_page_is_read_line_by_line_with_the_full_parsers_outcome(
    a: float, b: float, c: str
) -> None:
    reader = PageReader()
    reader.read(_page(5.0, 2.0, "NaN"), "text/plain", 100)
    page = _page(a, b, c)
    assert _outcome(reader.read(page, "text/plain", 100)) == _outcome(
        PageReader().read(page, "text/plain", 100)
    )
    assert reader.full_reads == 1  # the second page was read line by line


def test_a_new_line_or_a_changed_type_reads_the_page_in_full_again() -> None:
    reader = PageReader()
    reader.read("# TYPE x gauge\nx_total 1\n", "text/plain", 10)
    assert reader.read("# TYPE x gauge\nx_total 2\ny 1\n", "text/plain", 10).exposed == 2
    assert reader.full_reads == 2
    page = reader.read("# TYPE x counter\nx_total 3\ny 1\n", "text/plain", 10)
    assert reader.full_reads == 3 and page.parts == PageReader().read(
        "# TYPE x counter\nx_total 3\ny 1\n", "text/plain", 10).parts  # fmt: skip
    with pytest.raises(ExpositionError) as caught:
        reader.read("# TYPE x counter\nx_total 3\ny 1\n", "text/plain", 1)
    assert caught.value.reason == "sample_limit"
    with pytest.raises(ExpositionError) as caught:
        reader.read("# TYPE x counter\nx_total three\ny 1\n", "text/plain", 10)
    assert caught.value.reason == "parse"


@pytest.mark.parametrize("stamp", ["1700000000000", "1.5e3", "2 3", "abc"])
def test_odd_timestamps_are_judged_by_the_full_parser(stamp: str) -> None:
    reader = PageReader()
    reader.read("a 1\n", "text/plain", 10)
    page = f"a 2 {stamp}\n"
    try:
        expected: object = _outcome(PageReader().read(page, "text/plain", 10))
    except ExpositionError as exc:
        expected = exc.reason
    try:
        got: object = _outcome(reader.read(page, "text/plain", 10))
    except ExpositionError as exc:
        got = exc.reason
    assert got == expected


def test_an_openmetrics_page_of_an_exporter_is_read_line_by_line_the_next_time() -> None:
    registry = CollectorRegistry()
    requests = Counter("app_requests", "Requests", ["path"], registry=registry)
    latency = Histogram("app_latency_seconds", "Latency", registry=registry)
    info = Info("app_build", "Build", registry=registry)
    info.info({"version": "1.2"})
    reader = PageReader()
    kind = "application/openmetrics-text; version=1.0.0; charset=utf-8"
    for step in range(3):
        requests.labels("/a").inc(step + 1)
        latency.observe(0.3 * step)
        page = generate_latest(registry).decode()
        assert _outcome(reader.read(page, kind, 1000)) == _outcome(
            PageReader().read(page, kind, 1000)
        )
    assert reader.full_reads == 1
