"""The live view skips and reports an entry that fails to parse, whatever the reason."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

import orjson
import pytest

from kemi_stats.registry.live import LiveView
from kemi_stats.registry.store import Registry

PREFIX = "/kemi/"


class QuietRegistry:
    """A registry with a fixed snapshot and a watch that never reports a change."""

    endpoint = "fake://etcd"
    prefix = PREFIX
    split_key = Registry.split_key
    decode = Registry.decode
    keyring = None

    def __init__(self, docs: dict[str, object]) -> None:
        self.rows = [(PREFIX + key, orjson.dumps(doc), 1) for key, doc in docs.items()]

    def scan(self, prefix: str) -> tuple[int, list[tuple[str, bytes, int]]]:
        return 7, self.rows

    @property
    def client(self) -> QuietRegistry:
        return self

    def add_watch_prefix_callback(
        self, prefix: str, callback: Callable[[Any], None], start_revision: int
    ) -> int:
        return 1

    def cancel_watch(self, watch_id: int) -> None:
        return None


@pytest.fixture
def view_of() -> Iterator[Callable[[dict[str, object]], LiveView]]:
    views: list[LiveView] = []

    def start(docs: dict[str, object]) -> LiveView:
        view = LiveView(cast(Registry, QuietRegistry(docs)), kinds=["derived"])
        views.append(view.start(wait=5))
        return view

    yield start
    for view in views:
        view.stop()


def test_expressions_too_large_to_run_are_skipped_and_reported(
    view_of: Callable[[dict[str, object]], LiveView],
) -> None:
    view = view_of(
        {
            "derived/good": {"expr": "x * 2"},
            "derived/huge-sum": {"expr": " + ".join(["x"] * 20_000)},
            "derived/deep": {"expr": "-" * 4000 + "x"},
            "derived/huge-power": {"expr": "2**3999999 + x"},
        }
    )
    assert list(view.get("derived")) == ["good"]
    assert view.reloads == 1 and view.revision == 7
    invalid = view.invalid
    assert "79997 characters long, at most 4096" in invalid[PREFIX + "derived/huge-sum"]
    assert "nested too deeply" in invalid[PREFIX + "derived/deep"]
    assert "is too large for a sample" in invalid[PREFIX + "derived/huge-power"]
    assert view.invalid_total == 3


def test_an_entry_that_breaks_the_parser_itself_is_skipped_and_reported(
    view_of: Callable[[dict[str, object]], LiveView], monkeypatch: pytest.MonkeyPatch
) -> None:
    decode = Registry.decode

    def breaks_on_bad(self: Any, kind: str, name: str, value: bytes) -> Any:
        if name == "bad":
            raise RecursionError("maximum recursion depth exceeded")
        return decode(self, kind, name, value)

    monkeypatch.setattr(QuietRegistry, "decode", breaks_on_bad)
    view = view_of({"derived/good": {"expr": "x * 2"}, "derived/bad": {"expr": "x"}})
    assert list(view.get("derived")) == ["good"]
    assert view.invalid == {
        PREFIX + "derived/bad": "derived bad: RecursionError: maximum recursion depth exceeded"
    }
