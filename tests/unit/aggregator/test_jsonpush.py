"""The JSON push format: shapes, kinds, times, and 400s naming the JSON path."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from aggregator.grant import Grant
from aggregator.grouping import BatchBuilder
from aggregator.jsonpush import JsonPushParser
from aggregator.rejection import Rejection
from aggregator.settings import AggregatorSettings
from aggregator.timestamps import TimeWindow
from kemi_stats.model import MetricKind, SampleBatch
from tests.unit.aggregator.support import make_grant

NOW_MS = 1_714_564_800_000
WINDOW = TimeWindow.around(NOW_MS, 7 * 86400, 600)


GRANT = make_grant()


def parse(doc: Any, grant: Grant = GRANT) -> list[SampleBatch]:
    out = BatchBuilder(config_revision=7)
    JsonPushParser(AggregatorSettings()).parse(orjson.dumps(doc), WINDOW, out, grant)
    return out.batches()


def reject(doc: Any, grant: Grant = GRANT, status: int = 400) -> Rejection:
    body = doc if isinstance(doc, bytes) else orjson.dumps(doc)
    with pytest.raises(Rejection) as info:
        JsonPushParser(AggregatorSettings()).parse(body, WINDOW, BatchBuilder(), grant)
    assert info.value.status == status
    return info.value


def test_object_with_plain_and_typed_metrics() -> None:
    (batch,) = parse(
        {
            "resource_id": "host:web-01",
            "time": NOW_MS // 1000,
            "labels": {"env": "prod"},
            "metrics": {
                "cpu_user": 12.5,
                "up": True,
                "rx": {"value": 10, "kind": "counter", "labels": {"interface": "eth0"}},
            },
        }
    )
    assert (batch.resource_id, batch.time_ms, batch.config_revision) == ("host:web-01", NOW_MS, 7)
    samples = {s.metric: s for s in batch.samples}
    assert samples["cpu_user"].value == 12.5 and samples["cpu_user"].labels == {"env": "prod"}
    assert samples["up"].value == 1
    assert samples["rx"].kind is MetricKind.COUNTER64
    assert samples["rx"].labels == {"env": "prod", "interface": "eth0"}


@pytest.mark.parametrize(
    "time", [NOW_MS / 1000, NOW_MS, "2024-05-01T12:00:00Z", "2024-05-01T21:00:00+09:00"]
)
def test_time_forms(time: object) -> None:
    (batch,) = parse({"resource_id": "h", "time": time, "metrics": {"a": 1}})
    assert batch.time_ms == NOW_MS


def test_array_groups_by_resource_and_time() -> None:
    batches = parse(
        [
            {"resource_id": "h", "time": NOW_MS, "metrics": {"a": 1}},
            {"resource_id": "h", "time": NOW_MS, "labels": {"device": "sda"}, "metrics": {"a": 2}},
            {"resource_id": "h", "time": NOW_MS + 1000, "metrics": {"a": 3}},
        ]
    )
    assert [(b.time_ms, len(b.samples)) for b in batches] == [(NOW_MS, 2), (NOW_MS + 1000, 1)]


@pytest.mark.parametrize(
    ("doc", "path"),
    [
        ({"resource_id": "h", "metrics": {"a": "x"}}, "$.metrics.a"),
        ([{"resource_id": "h", "metrics": {}}, 5], "$[1]"),
        ({"metrics": {}}, "$.resource_id"),
        ({"resource_id": "", "metrics": {}}, "$.resource_id"),
        ({"resource_id": "h", "metrics": {"a": 1}, "extra": 1}, "$.extra"),
        ({"resource_id": "h", "time": NOW_MS + 86_400_000, "metrics": {}}, "$.time"),
        ({"resource_id": "h", "time": "yesterday", "metrics": {}}, "$.time"),
        ({"resource_id": "h", "metrics": {"bad name": 1}}, "$.metrics.bad name"),
        ({"resource_id": "h", "labels": {"k": 1}, "metrics": {}}, "$.labels.k"),
        (
            {"resource_id": "h", "metrics": {"a": {"value": -1, "kind": "counter"}}},
            "$.metrics.a.value",
        ),
        (
            {"resource_id": "h", "metrics": {"a": {"value": 1.5, "kind": "counter"}}},
            "$.metrics.a.value",
        ),
        (
            {"resource_id": "h", "metrics": {"a": {"value": 1, "kind": "histogram"}}},
            "$.metrics.a.kind",
        ),
        ({"resource_id": "h", "metrics": {"a": {"kind": "gauge"}}}, "$.metrics.a.value"),
        ("just a string", "$"),
    ],
)
def test_invalid_documents_name_the_path(doc: Any, path: str) -> None:
    err = reject(doc)
    assert err.path == path, err.message
    assert err.expected


@pytest.mark.parametrize(
    "body", [b'{"resource_id": "h", "metrics": {"a": NaN}}', b"[1e999]", b"{", b"\xff"]
)
def test_not_json(body: bytes) -> None:
    err = reject(body)
    assert err.line == 1 and "not JSON" in err.message


def test_empty_body_and_empty_array_write_nothing() -> None:
    out = BatchBuilder()
    JsonPushParser(AggregatorSettings()).parse(b"", WINDOW, out, GRANT)
    JsonPushParser(AggregatorSettings()).parse(b"[]", WINDOW, out, GRANT)
    assert out.batches() == []


def test_without_resource_id_the_template_builds_it_from_the_labels() -> None:
    grant = make_grant(resource_prefix="host:", resource_template="host:{host}")
    (batch,) = parse({"labels": {"host": "web-01", "env": "prod"}, "metrics": {"a": 1}}, grant)
    assert batch.resource_id == "host:web-01"
    assert dict(batch.samples[0].labels) == {"env": "prod"}
    err = reject({"labels": {"env": "prod"}, "metrics": {"a": 1}}, grant)
    assert err.path == "$.resource_id"
    assert "missing" in err.message and "no tag 'host'" in err.message


def test_an_explicit_resource_id_is_kept_and_checked_against_the_prefix() -> None:
    grant = make_grant(resource_prefix="host:", resource_template="host:{host}")
    (batch,) = parse(
        {"resource_id": "host:db-1", "labels": {"host": "x"}, "metrics": {"a": 1}}, grant
    )
    assert batch.resource_id == "host:db-1"
    assert dict(batch.samples[0].labels) == {"host": "x"}
    err = reject({"resource_id": "net:sw1", "metrics": {"a": 1}}, grant, status=403)
    assert err.path == "$.resource_id" and "'net:sw1'" in err.message
