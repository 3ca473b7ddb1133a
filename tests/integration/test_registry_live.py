"""The live view follows adds, updates and removes, and survives an etcd restart."""

from __future__ import annotations

import queue

import orjson
import pytest

from kemi_stats.registry.live import Change, LiveView
from kemi_stats.registry.models import Credential, Derived, Target
from kemi_stats.registry.store import Registry
from tests.servers import RunningServer

pytestmark = pytest.mark.integration


def _target(host: str = "127.0.0.1") -> Target:
    return Target(host=host, credential="lab", profiles=["system"])


def _next(changes: queue.Queue[Change], timeout: float = 1.0) -> Change:
    return changes.get(timeout=timeout)


def test_live_view_sees_add_update_remove_within_1s(registry: Registry) -> None:
    registry.create("credential", "lab", Credential(community="public"))
    view = LiveView(registry, kinds=["target", "credential"]).start()
    changes: queue.Queue[Change] = queue.Queue()
    view.subscribe(changes.put)
    try:
        assert "lab" in view.get("credential")
        registry.create("target", "sw1", _target())
        c = _next(changes)
        assert (c.action, c.kind, c.name) == ("add", "target", "sw1")
        registry.update("target", "sw1", _target("127.0.0.2"))
        c = _next(changes)
        assert c.action == "update" and c.new.host == "127.0.0.2"
        registry.delete("target", "sw1")
        c = _next(changes)
        assert c.action == "remove" and "sw1" not in view.get("target")
    finally:
        view.stop()


def test_invalid_entry_is_skipped_and_reported(registry: Registry) -> None:
    registry.client.put(registry.key("target", "broken"), orjson.dumps({"host": "not a host!"}))
    registry.create("target", "good", _target())
    view = LiveView(registry, kinds=["target"]).start()
    try:
        assert list(view.get("target")) == ["good"]
        assert registry.key("target", "broken") in view.invalid
    finally:
        view.stop()


def test_expression_too_large_to_run_is_skipped_and_reported_in_snapshot_and_watch(
    registry: Registry,
) -> None:
    huge_sum = orjson.dumps({"expr": " + ".join(["x"] * 20_000)})
    registry.client.put(registry.key("derived", "huge-before"), huge_sum)
    registry.create("derived", "good", Derived(expr="x * 2"))
    view = LiveView(registry, kinds=["derived"]).start()
    changes: queue.Queue[Change] = queue.Queue()
    view.subscribe(changes.put)
    try:
        assert list(view.get("derived")) == ["good"]
        registry.client.put(registry.key("derived", "huge-after"), huge_sum)
        registry.create("derived", "good-after", Derived(expr="x * 3"))
        assert _next(changes).name == "good-after"
        assert sorted(view.get("derived")) == ["good", "good-after"]
        for name in ("huge-before", "huge-after"):
            reason = view.invalid[registry.key("derived", name)]
            assert reason == (
                f"derived {name}: field 'expr': expression is 79997 characters long, at most 4096"
            )
        assert view.reloads == 1, "a bad entry must not make the view reload"
    finally:
        view.stop()


def test_change_made_while_etcd_restarts_is_delivered(
    registry: Registry, etcd: RunningServer
) -> None:
    view = LiveView(registry, kinds=["target"], retry_interval=0.2).start()
    changes: queue.Queue[Change] = queue.Queue()
    view.subscribe(changes.put)
    try:
        etcd.stop()
        etcd.start()
        # written right after the restart, possibly before the watch is re-established
        registry.create("target", "during-restart", _target())
        c = _next(changes, timeout=15)
        assert (c.action, c.name) == ("add", "during-restart")
        registry.delete("target", "during-restart")
        assert _next(changes, timeout=5).action == "remove"
    finally:
        view.stop()
