"""Definitions that follow the registry: recompiled when its ``derived`` entries change."""

from __future__ import annotations

import logging
from typing import Any

from calculator import metrics
from calculator.definitions import DefinitionSet, compile_definitions
from calculator.groups import GroupAggregator
from calculator.processor import BatchProcessor
from calculator.settings import CalculatorSettings
from kemi_stats.registry.etcd import EtcdConfig
from kemi_stats.registry.live import Change, LiveView
from kemi_stats.registry.store import Registry
from kemi_stats.settings import Settings

__all__ = ["LiveDefinitions"]

log = logging.getLogger(__name__)


class LiveDefinitions:
    """The processor and group aggregator for the registry's current ``derived`` entries.

    The registry watch runs in its own thread; the per-batch path only compares the
    identity of the view's dict with the one it compiled (no lock, no etcd call).
    """

    def __init__(self, settings: Settings, calc: CalculatorSettings) -> None:
        self.settings = settings
        self.calc = calc
        self.view: LiveView | None = None
        self._source: Any = None
        self._set = DefinitionSet()
        self.processor = self._make_processor(self._set)
        self.aggregator = self._make_aggregator(self._set)

    def start(self) -> None:
        """Connect to etcd and read the first snapshot (raises KemiError if it cannot)."""
        registry = Registry(EtcdConfig.from_settings(self.settings), self.settings.etcd_prefix)
        self.view = LiveView(registry, kinds=["derived"])
        self.view.subscribe(self._on_change)
        self.view.start()
        self.refresh()

    def stop(self) -> None:
        if self.view is not None:
            self.view.stop()

    def _on_change(self, change: Change) -> None:
        log.info("derived %s: %s (revision %s)", change.name, change.action, change.revision)

    def refresh(self) -> None:
        """Recompile if the registry's ``derived`` entries changed since the last call."""
        if self.view is None:
            return
        docs = self.view.get("derived")
        if docs is self._source:
            return
        self._source = docs
        defs = compile_definitions(docs, self.calc.max_rate)
        defs.revision = self.view.revision
        self._set = defs
        self.processor = self._make_processor(defs)
        self.aggregator = self._make_aggregator(defs)
        metrics.RELOADS.inc()
        for mode in ("point", "window", "group"):
            metrics.DEFINITIONS.labels(mode).set(len(getattr(defs, mode)))
        metrics.DEFINITIONS_INVALID.set(len(defs.invalid))
        log.info(
            "definitions: %d in force (%d point, %d window, %d group), %d invalid",
            len(defs),
            len(defs.point),
            len(defs.window),
            len(defs.group),
            len(defs.invalid),
        )

    @property
    def definitions(self) -> DefinitionSet:
        return self._set

    def _make_processor(self, defs: DefinitionSet) -> BatchProcessor:
        return BatchProcessor(
            defs,
            grace_ms=int(self.calc.grace * 1000),
            series_ttl_ms=int(self.calc.series_ttl * 1000),
        )

    def _make_aggregator(self, defs: DefinitionSet) -> GroupAggregator:
        return GroupAggregator(
            defs,
            default_bucket_ms=int(self.calc.group_interval * 1000),
            grace_ms=int(self.calc.grace * 1000),
        )
