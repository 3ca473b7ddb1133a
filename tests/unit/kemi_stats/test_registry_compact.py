"""Registry views hold a target in under 1 KB: what targets repeat is held once."""

from __future__ import annotations

import tracemalloc

import orjson

from kemi_stats.registry.compact import compact
from kemi_stats.registry.models import Target
from kemi_stats.registry.store import dump_doc, parse_doc


def _doc(i: int) -> bytes:
    return orjson.dumps({
        "host": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", "credential": "core-v2",
        "profiles": ["system", "if-mib"], "interval": "60s", "resource_id": f"net:dev-{i:06d}",
        "labels": {"site": f"site-{i % 3}", "rack": f"r{i % 40}"},
    })  # fmt: skip


def test_a_compacted_target_is_the_same_document() -> None:
    plain = parse_doc("target", "dev-1", orjson.loads(_doc(1)))
    held = compact(parse_doc("target", "dev-1", orjson.loads(_doc(1))))
    assert held == plain
    assert dump_doc(held) == dump_doc(plain)
    assert held.model_fields_set == plain.model_fields_set


def test_targets_share_what_they_repeat() -> None:
    a = compact(parse_doc("target", "a", orjson.loads(_doc(1))))
    b = compact(parse_doc("target", "b", orjson.loads(_doc(4))))
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__
    assert a.profiles[1] is b.profiles[1]
    assert a.credential is b.credential
    assert a.interval is b.interval
    c = compact(parse_doc("target", "c", orjson.loads(_doc(121))))  # same site and rack as a
    assert a.labels is c.labels and a.labels == {"site": "site-1", "rack": "r1"}
    assert a.labels is not b.labels


def test_a_view_of_20000_targets_holds_under_1_kb_each() -> None:
    docs = [_doc(i) for i in range(20_000)]
    tracemalloc.start()
    try:  # held as a view holds them: by name
        held = {f"dev-{i:06d}": compact(Target.model_validate_json(d)) for i, d in enumerate(docs)}
        size, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size / len(held) < 1024, f"{size / len(held):.0f} bytes per target"
