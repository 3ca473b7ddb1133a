"""Malformed push bodies, each one a way an agent or an attacker gets a format wrong.

Every entry is (case id, path, headers, body). The aggregator must answer each with
a 4xx (never a 5xx) and quickly; the corpus test asserts both.
"""

from __future__ import annotations

import gzip
import time
from collections.abc import Iterator

import cramjam
import orjson

from aggregator.proto import remote_pb2 as pb

Case = tuple[str, str, dict[str, str], bytes]

NOW_S = int(time.time())
LP = {"Content-Type": "text/plain; charset=utf-8"}
JSON = {"Content-Type": "application/json"}
RW = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}
OTLP_PB = {"Content-Type": "application/x-protobuf"}
OTLP_JSON = {"Content-Type": "application/json"}
LONG = "x" * 5000


def _lines() -> Iterator[tuple[str, bytes]]:
    ok = f"cpu,host=corpus-lp v=1 {NOW_S}"
    yield "empty-measurement", f",host=a v=1 {NOW_S}".encode()
    yield "no-fields", b"cpu,host=a"
    yield "field-without-value", b"cpu,host=a v"
    yield "field-empty-value", b"cpu,host=a v="
    yield "field-not-a-number", b"cpu,host=a v=abc"
    yield "field-two-dots", b"cpu,host=a v=1.2.3"
    yield "int-5000-digits", b"cpu,host=a v=" + b"9" * 5000 + b"i"
    yield "uint-5000-digits", b"cpu,host=a v=" + b"9" * 5000 + b"u"
    yield "negative-uint", b"cpu,host=a v=-1u"
    yield "int-over-int64", b"cpu,host=a v=9223372036854775808i"
    yield "int-letters", b"cpu,host=a v=12ai"
    yield "timestamp-5000-digits", b"cpu,host=a v=1 " + b"9" * 5000
    yield "timestamp-not-a-number", b"cpu,host=a v=1 12:00"
    yield "timestamp-float", b"cpu,host=a v=1 1.5"
    yield "timestamp-far-future", f"cpu,host=a v=1 {NOW_S + 10**8}".encode()
    yield "timestamp-far-past", b"cpu,host=a v=1 1"
    yield "counter-1e300", b"cpu,host=a,kemi_kind=counter v=1e300"
    yield "counter-negative", b"cpu,host=a,kemi_kind=counter v=-5i"
    yield "counter-fraction", b"cpu,host=a,kemi_kind=counter v=1.5"
    yield "counter-over-u64", b"cpu,host=a,kemi_kind=counter v=18446744073709551616u"
    yield "float-counter-negative", b"cpu,host=a,kemi_kind=float_counter v=-1.5"
    yield "unknown-kind", b"cpu,host=a,kemi_kind=histogram v=1"
    yield "nan", b"cpu,host=a v=NaN"
    yield "inf", b"cpu,host=a v=inf"
    yield "float-overflow", b"cpu,host=a v=1e999"
    yield "unclosed-string", b'cpu,host=a s="open'
    yield "tag-without-value", b"cpu,host v=1"
    yield "tag-empty-value", b"cpu,host= v=1"
    yield "tag-empty-key", b"cpu,=a v=1"
    yield "invalid-utf8", b"cpu,host=\xff\xfe v=1"
    yield "nul-in-tag-value", b"cpu,host=a,site=x\x00y v=1"
    yield "control-in-tag-value", b"cpu,host=a,site=x\x07y v=1"
    yield "label-value-5000", f"cpu,host=a,site={LONG} v=1".encode()
    yield "label-value-1mib", b"cpu,host=a,site=" + b"y" * (1 << 20) + b" v=1"
    yield "tag-key-5000", f"cpu,host=a,{LONG}=1 v=1".encode()
    yield "measurement-5000", f"{LONG},host=a v=1".encode()
    yield "field-key-5000", f"cpu,host=a {LONG}=1".encode()
    yield "resource-id-5000", f"cpu,host={LONG} v=1".encode()
    yield "no-resource", b"cpu,site=a v=1"
    yield (
        "too-many-tags",
        ("cpu,host=a," + ",".join(f"t{i}=v" for i in range(200)) + " v=1").encode(),
    )
    yield "too-many-fields", ("cpu,host=a " + ",".join(f"f{i}=1" for i in range(2000))).encode()
    yield "100k-commas", b"cpu,host=a" + b"," * 100_000 + b" v=1"
    yield "text-after-timestamp", b"cpu,host=a v=1 1 extra"
    yield "only-spaces-and-commas", b" , , , "
    yield "only-equals", b"="
    yield "bad-line-after-good", f"{ok}\ncpu,host=a v=oops".encode()
    yield "string-reject-field-key-empty", b'cpu,host=a ="x"'


def _json_bodies() -> Iterator[tuple[str, bytes]]:
    yield "not-json", b"{nope"
    yield "truncated", b'{"resource_id": "a", "metrics": {"x": 1'
    yield "nested-600", b"[" * 600 + b"]" * 600
    yield "nested-5000", b"[" * 5000 + b"]" * 5000
    yield "nested-objects-300", b'{"a":' * 300 + b"1" + b"}" * 300
    yield "number", b"42"
    yield "string", b'"text"'
    yield "array-of-numbers", b"[1, 2, 3]"
    yield "metrics-not-object", b'{"resource_id": "a", "metrics": [1]}'
    yield "metrics-missing", b'{"resource_id": "a"}'
    yield "unknown-key", b'{"resource_id": "a", "metrics": {"x": 1}, "extra": 1}'
    yield "value-string", b'{"resource_id": "a", "metrics": {"x": "1"}}'
    yield "value-null", b'{"resource_id": "a", "metrics": {"x": null}}'
    yield "value-5000-digits", b'{"resource_id": "a", "metrics": {"x": ' + b"9" * 5000 + b"}}"
    yield "value-1e400", b'{"resource_id": "a", "metrics": {"x": 1e400}}'
    yield "value-nan-literal", b'{"resource_id": "a", "metrics": {"x": NaN}}'
    yield (
        "counter-1e300",
        b'{"resource_id": "a", "metrics": {"x": {"value": 1e300, "kind": "counter"}}}',
    )
    yield (
        "counter-negative",
        b'{"resource_id": "a", "metrics": {"x": {"value": -1, "kind": "counter"}}}',
    )
    yield "kind-unknown", b'{"resource_id": "a", "metrics": {"x": {"value": 1, "kind": "gaugey"}}}'
    yield "kind-not-string", b'{"resource_id": "a", "metrics": {"x": {"value": 1, "kind": 3}}}'
    yield (
        "time-5000-digits",
        b'{"resource_id": "a", "time": ' + b"9" * 5000 + b', "metrics": {"x": 1}}',
    )
    yield "time-text", b'{"resource_id": "a", "time": "yesterday", "metrics": {"x": 1}}'
    yield (
        "time-far-future",
        orjson.dumps({"resource_id": "a", "time": NOW_S + 10**8, "metrics": {"x": 1}}),
    )
    yield "resource-id-number", b'{"resource_id": 5, "metrics": {"x": 1}}'
    yield "resource-id-empty", b'{"resource_id": "", "metrics": {"x": 1}}'
    yield "resource-id-nul", b'{"resource_id": "a\\u0000b", "metrics": {"x": 1}}'
    yield "resource-id-5000", orjson.dumps({"resource_id": LONG, "metrics": {"x": 1}})
    yield "metric-name-invalid", b'{"resource_id": "a", "metrics": {"1x-y": 1}}'
    yield "metric-name-5000", orjson.dumps({"resource_id": "a", "metrics": {LONG: 1}})
    yield "labels-not-object", b'{"resource_id": "a", "labels": [1], "metrics": {"x": 1}}'
    yield "label-value-number", b'{"resource_id": "a", "labels": {"k": 1}, "metrics": {"x": 1}}'
    yield "label-name-invalid", b'{"resource_id": "a", "labels": {"1-k": "v"}, "metrics": {"x": 1}}'
    yield (
        "label-value-newline",
        b'{"resource_id": "a", "labels": {"k": "a\\nb"}, "metrics": {"x": 1}}',
    )
    yield (
        "label-value-5000",
        orjson.dumps({"resource_id": "a", "labels": {"k": LONG}, "metrics": {"x": 1}}),
    )
    yield (
        "too-many-labels",
        orjson.dumps(
            {"resource_id": "a", "labels": {f"k{i}": "v" for i in range(100)}, "metrics": {"x": 1}}
        ),
    )
    yield "invalid-utf8", b'{"resource_id": "\xff", "metrics": {"x": 1}}'


def _remote_write_bodies() -> Iterator[tuple[str, bytes]]:
    def snappy(data: bytes) -> bytes:
        return bytes(cramjam.snappy.compress_raw(data))

    def series(*labels: tuple[str, str], value: float = 1.0) -> bytes:
        request = pb.WriteRequest()
        ts = request.timeseries.add()
        for name, text in labels:
            ts.labels.add(name=name, value=text)
        ts.samples.add(value=value, timestamp=NOW_S * 1000)
        return snappy(request.SerializeToString())

    yield "not-snappy", b"plain text, not snappy"
    yield "empty", b""
    yield "snappy-length-only", b"\xff\xff\xff\xff\x0f"
    yield "snappy-announces-4gib", b"\xff\xff\xff\xff\x0f" + b"\x00" * 10
    yield "snappy-of-garbage", snappy(b"\xff" * 64)
    yield "snappy-truncated", snappy(b"\x0a\x10" + b"\x0a\x05" * 20)[:-3]
    yield "protobuf-bad-wire-type", snappy(b"\x0f\x01\x02")
    yield "protobuf-huge-length", snappy(b"\x0a\xff\xff\xff\xff\x0f")
    yield "protobuf-varint-11-bytes", snappy(b"\x08" + b"\xff" * 10 + b"\x01")
    yield "label-value-5000", series(("__name__", "up"), ("instance", "a:1"), ("job", LONG))
    yield "label-value-nul", series(("__name__", "up"), ("instance", "a:1"), ("job", "x\x00y"))
    yield "metric-name-5000", series(("__name__", LONG), ("instance", "a:1"))
    yield "no-name", series(("instance", "a:1"))
    yield "nan-value", series(("__name__", "up"), ("instance", "a:1"), value=float("nan"))


def _otlp_bodies() -> Iterator[tuple[str, dict[str, str], bytes]]:
    yield "pb-garbage", OTLP_PB, b"\xff\xfe\xfd\xfc" * 16
    yield "pb-huge-length", OTLP_PB, b"\x0a\xff\xff\xff\xff\x0f"
    yield "pb-truncated", OTLP_PB, b"\x0a\x20\x0a\x10"
    yield "pb-bad-wire-type", OTLP_PB, b"\x0f\x01"
    yield "json-not-json", OTLP_JSON, b"{nope"
    yield "json-nested-5000", OTLP_JSON, b"[" * 5000 + b"]" * 5000
    yield (
        "json-nested-objects",
        OTLP_JSON,
        b'{"resourceMetrics": [' + b'{"a":' * 200 + b"1" + b"}" * 200 + b"]}",
    )
    yield "json-wrong-type", OTLP_JSON, b'{"resourceMetrics": 5}'
    yield "json-unknown-field", OTLP_JSON, b'{"resourceMetricz": []}'
    yield (
        "json-bad-int",
        OTLP_JSON,
        (
            b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "x", "gauge": '
            b'{"dataPoints": [{"asInt": "' + b"9" * 5000 + b'"}]}}]}]}]}'
        ),
    )
    yield (
        "json-time-not-number",
        OTLP_JSON,
        (
            b'{"resourceMetrics": [{"scopeMetrics": [{"metrics": [{"name": "x", "gauge": '
            b'{"dataPoints": [{"timeUnixNano": "soon", "asDouble": 1}]}}]}]}]}'
        ),
    )
    yield "json-array", OTLP_JSON, b"[]"
    yield "json-label-value-5000", OTLP_JSON, orjson.dumps({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "host.name", "value": {"stringValue": "a"}}]},
        "scopeMetrics": [{"metrics": [{"name": "x", "gauge": {"dataPoints": [{
            "asDouble": 1, "attributes": [{"key": "k", "value": {"stringValue": LONG}}]}]}}]}],
    }]})  # fmt: skip
    yield "wrong-content-type", {"Content-Type": "text/plain"}, b"x"


def _gzip_bodies() -> Iterator[tuple[str, bytes]]:
    member = gzip.compress(b"cpu,host=corpus-gz v=1\n")
    yield "gzip-corrupt", b"\x1f\x8b\x08\x00garbage-garbage"
    yield "gzip-truncated", gzip.compress(b"cpu,host=a v=1\n" * 100)[:-8]
    yield "gzip-not-gzip", b"cpu,host=a v=1"
    yield "gzip-empty", b""
    yield "gzip-200k-members", member * 200_000
    yield "gzip-bomb-32mib", gzip.compress(b"0" * (32 << 20))
    yield "gzip-trailing-garbage", member + b"trailing"


def corpus() -> list[Case]:
    """Every malformed body, with the path and headers it is sent with."""
    cases: list[Case] = []
    cases += [(f"lp-{name}", "/api/v2/write?precision=s", LP, body) for name, body in _lines()]
    cases += [(f"json-{name}", "/api/v1/push", JSON, body) for name, body in _json_bodies()]
    cases += [(f"rw-{name}", "/api/v1/write", RW, body) for name, body in _remote_write_bodies()]
    cases += [(f"otlp-{name}", "/v1/metrics", h, body) for name, h, body in _otlp_bodies()]
    gz = {**LP, "Content-Encoding": "gzip"}
    cases += [(name, "/api/v2/write?precision=s", gz, body) for name, body in _gzip_bodies()]
    cases += [
        ("lp-bad-precision", "/api/v2/write?precision=fortnight", LP, b"cpu,host=a v=1"),
        ("lp-encoding-br", "/api/v2/write", {**LP, "Content-Encoding": "br"}, b"x"),
        ("json-form-type", "/api/v1/push", {"Content-Type": "text/html"}, b"{}"),
    ]
    return cases
