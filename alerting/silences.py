"""Registry ``silence`` entries compiled into selectors; asks whether an alert is silenced now."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from kemi_stats.matching import Selector
from kemi_stats.registry.models import Silence

__all__ = ["SilenceSet"]


@dataclass(frozen=True, slots=True)
class _Compiled:
    name: str
    silence: Silence
    selector: Selector


class SilenceSet:
    """The current silences; replaced wholesale on every registry change (they are few)."""

    def __init__(self) -> None:
        self._items: tuple[_Compiled, ...] = ()

    def update(self, docs: Mapping[str, Silence]) -> None:
        self._items = tuple(
            _Compiled(name, s, Selector.build(s.match)) for name, s in sorted(docs.items())
        )

    def covering(self, labels: Mapping[str, str], now: float) -> str | None:
        """The name of an active silence whose matchers all match ``labels``, else None."""
        for item in self._items:
            if item.silence.active(now) and item.selector.matches("", labels):
                return item.name
        return None

    def covers(self, labels: Mapping[str, str], now: float) -> bool:
        return self.covering(labels, now) is not None

    def __len__(self) -> int:
        return len(self._items)
