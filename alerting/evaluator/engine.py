"""The evaluation engine: routes samples to (rule, series) states and turns transitions into events.

No I/O here: the service feeds it decoded batches and clock ticks, and persists
what :meth:`Engine.drain` hands back. Routing is resolved once per distinct series
(resource, target labels, metric, sample labels) and cached, so the per-sample path
is one dict lookup plus one state-machine step per matching rule.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from alerting.evaluator.store import SeriesRow
from alerting.fingerprint import fingerprint
from alerting.rules import CompiledRule
from alerting.state import AlertKind, Phase, SeriesState, Transition, on_sample, on_tick
from kemi_stats.durations import format_duration
from kemi_stats.model import AlertEvent, SampleBatch
from kemi_stats.registry.models import Rule

__all__ = ["Engine", "Series", "SilenceCheck"]

log = logging.getLogger(__name__)

LabelTuple = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, str, LabelTuple]  # resource, metric, sample labels
#: (alert labels, time in seconds) -> whether an active silence covers them
SilenceCheck = Callable[[Mapping[str, str], float], bool]


def _skey_text(key: SeriesKey) -> str:
    return orjson.dumps([key[0], key[1], [list(p) for p in key[2]]]).decode()


def _skey_parse(text: str) -> SeriesKey:
    resource, metric, labels = orjson.loads(text)
    return resource, metric, tuple((k, v) for k, v in labels)


@dataclass(slots=True, eq=False)
class Series:
    """One (rule, series): its identity, labels, state and whether it needs saving."""

    rule: CompiledRule
    key: SeriesKey
    labels: dict[str, str]
    partition: int
    state: SeriesState = field(default_factory=SeriesState)
    fingerprint: str = ""
    nodata_fingerprint: str = ""
    dirty: bool = False

    def __post_init__(self) -> None:
        if not self.fingerprint:
            resource, metric, sample_labels = self.key
            name = self.rule.name
            self.fingerprint = fingerprint(name, resource, metric, sample_labels, "threshold")
            self.nodata_fingerprint = fingerprint(name, resource, metric, sample_labels, "no_data")

    def row(self) -> SeriesRow:
        s = self.state
        data = {
            "labels": self.labels,
            "phase": s.phase.value,
            "since_ms": s.since_ms,
            "clear_since_ms": s.clear_since_ms,
            "value": s.value,
            "last_ms": s.last_ms,
            "notified_ms": s.notified_ms,
            "nodata_since_ms": s.nodata_since_ms,
            "nodata_notified_ms": s.nodata_notified_ms,
        }
        return SeriesRow(self.rule.name, _skey_text(self.key), self.partition, data)


def _state_from(data: Mapping[str, Any]) -> SeriesState:
    return SeriesState(
        phase=Phase(data["phase"]),
        since_ms=int(data["since_ms"]),
        clear_since_ms=int(data["clear_since_ms"]),
        value=float(data["value"]),
        last_ms=int(data["last_ms"]),
        notified_ms=int(data["notified_ms"]),
        nodata_since_ms=int(data["nodata_since_ms"]),
        nodata_notified_ms=int(data["nodata_notified_ms"]),
    )


class Engine:
    """All (rule, series) states of the partitions this evaluator owns."""

    def __init__(
        self,
        *,
        silenced: SilenceCheck | None = None,
        history_size: int = 1000,
        series_ttl_ms: int = 86_400_000,
    ) -> None:
        self.rules: dict[str, CompiledRule] = {}
        self.invalid_rules: dict[str, str] = {}
        self.series: dict[tuple[str, SeriesKey], Series] = {}
        self.history: deque[AlertEvent] = deque(maxlen=history_size)
        self.watermark_ms = 0
        self.samples_total = 0
        self.transitions_total = 0
        self._silenced: SilenceCheck = silenced or (lambda labels, now: False)
        self._series_ttl_ms = series_ttl_ms
        self._by_metric: dict[str, list[CompiledRule]] = {}
        self._routes: dict[tuple[str, LabelTuple, str, LabelTuple], list[Series]] = {}
        self._dirty: list[Series] = []
        self._deleted: set[tuple[str, str]] = set()
        self._new_history: list[AlertEvent] = []
        self._rules_changed = True

    # --- configuration ------------------------------------------------------------

    def set_rules(self, docs: Mapping[str, Rule], revision: int = 0) -> list[AlertEvent]:
        """Load the rule set; alerts of removed rules (or series no longer selected) resolve."""
        compiled: dict[str, CompiledRule] = {}
        invalid: dict[str, str] = {}
        for name, rule in docs.items():
            old = self.rules.get(name)
            if old is not None and old.rule == rule:
                compiled[name] = old
                continue
            try:
                compiled[name] = CompiledRule.compile(name, rule, revision)
            except ValueError as exc:
                invalid[name] = str(exc)
                if self.invalid_rules.get(name) != str(exc):
                    log.error("rule %s skipped: %s", name, exc)
                if old is not None:
                    compiled[name] = old  # keep the last good version
        self.invalid_rules = invalid
        events: list[AlertEvent] = []
        for key, ser in list(self.series.items()):
            new = compiled.get(key[0])
            if new is ser.rule:
                continue
            resource, metric, _ = ser.key
            if (
                new is None
                or new.rule.metric != metric
                or not new.selector.matches(resource, ser.labels)
            ):
                events.extend(self._retire(ser, "rule removed" if new is None else "rule changed"))
                continue
            ser.rule = new
            if new.timing.fire is None and ser.state.phase is not Phase.OK:
                events.extend(self._retire_threshold(ser, "rule has no condition any more"))
        self.rules = compiled
        by_metric: dict[str, list[CompiledRule]] = {}
        for r in compiled.values():
            by_metric.setdefault(r.rule.metric, []).append(r)
        self._by_metric = by_metric
        self._routes.clear()
        self._rules_changed = True
        return events

    def rule_docs(self) -> dict[str, dict[str, Any]]:
        return {n: r.rule.model_dump(mode="json", by_alias=True) for n, r in self.rules.items()}

    @property
    def metrics(self) -> Container[str]:
        """The metrics some rule reads: a batch's other samples change nothing here."""
        return self._by_metric.keys()

    # --- the hot path -------------------------------------------------------------

    def process(self, batch: SampleBatch, partition: int = 0) -> list[AlertEvent]:
        """Apply one batch; return the alert transitions it caused."""
        t = batch.time_ms
        if t > self.watermark_ms:
            self.watermark_ms = t
        by_metric = self._by_metric
        routes = self._routes
        resource = batch.resource_id
        blabels = batch.labels
        bkey: LabelTuple = tuple(sorted(blabels.items())) if blabels else ()
        events: list[AlertEvent] = []
        n = 0
        for sample in batch.samples:
            metric = sample.metric
            if metric not in by_metric:
                continue
            n += 1
            slabels = sample.labels
            skey: LabelTuple = tuple(sorted(slabels.items())) if slabels else ()
            rkey = (resource, bkey, metric, skey)
            targets = routes.get(rkey)
            if targets is None:
                targets = self._route(resource, blabels, metric, slabels, skey, partition)
                routes[rkey] = targets
            value = float(sample.value)
            for ser in targets:
                st = ser.state
                new, transitions = on_sample(st, ser.rule.timing, value, t)
                if new is not st:
                    self._advance(ser, new, transitions, events)
        self.samples_total += n
        return events

    def _advance(
        self,
        ser: Series,
        new: SeriesState,
        transitions: Sequence[Transition],
        events: list[AlertEvent],
    ) -> None:
        """The series moved to ``new``: mark it for the next checkpoint, emit its transitions."""
        ser.state = new
        if not ser.dirty:
            ser.dirty = True
            self._dirty.append(ser)
        for tr in transitions:
            events.append(self._event(ser, tr))

    def _route(
        self,
        resource: str,
        blabels: Mapping[str, str],
        metric: str,
        slabels: Mapping[str, str],
        skey: LabelTuple,
        partition: int,
    ) -> list[Series]:
        labels = {**blabels, **slabels, "resource": resource, "metric": metric}
        out: list[Series] = []
        key: SeriesKey = (resource, metric, skey)
        for rule in self._by_metric.get(metric, ()):
            if not rule.selector.matches(resource, labels):
                continue
            ser = self.series.get((rule.name, key))
            if ser is None:
                ser = Series(rule, key, labels, partition)
                self.series[(rule.name, key)] = ser
            else:
                ser.labels = labels
                ser.partition = partition
            out.append(ser)
        return out

    def tick(self, now_ms: int) -> list[AlertEvent]:
        """Run the clock-driven timers (no-data, repeat) and forget long-silent ok series."""
        events: list[AlertEvent] = []
        expired: list[tuple[str, SeriesKey]] = []
        ttl = self._series_ttl_ms
        for key, ser in self.series.items():
            st = ser.state
            timing = ser.rule.timing
            if (
                st.phase is not Phase.FIRING
                and not st.nodata_since_ms
                and timing.no_data_ms is None
            ):
                if st.phase is Phase.OK and now_ms - st.last_ms > ttl:
                    expired.append(key)
                continue
            new, transitions = on_tick(st, timing, now_ms)
            if new is not st:
                self._advance(ser, new, transitions, events)
        if expired:
            for key in expired:
                ser = self.series.pop(key)
                self._deleted.add((key[0], _skey_text(key[1])))
            self._routes.clear()
        return events

    # --- events -------------------------------------------------------------------

    def _event(self, ser: Series, tr: Transition, reason: str = "") -> AlertEvent:
        crule = ser.rule
        rule = crule.rule
        resource, metric, _ = ser.key
        kind = tr.kind
        labels = self._labels(ser, kind)
        status = tr.status
        if not reason:
            if kind is AlertKind.NO_DATA:
                reason = (
                    f"no data for {format_duration(rule.no_data or 0)}"
                    if status != "resolved"
                    else "data is back"
                )
            elif status == "resolved":
                clear = rule.effective_clear
                reason = f"{metric} {tr.value:g} {clear} for {format_duration(rule.clear_for)}"
            elif status == "ok":
                window = format_duration(rule.for_)
                reason = f"{metric} {tr.value:g} no longer {rule.condition} before {window}"
            else:
                reason = f"{metric} {tr.value:g} {rule.condition}"
        cond = rule.condition
        event = AlertEvent(
            fingerprint=ser.fingerprint if kind is AlertKind.THRESHOLD else ser.nodata_fingerprint,
            rule=crule.name,
            status=status,
            severity=rule.severity,
            resource_id=resource,
            metric=metric,
            labels=labels,
            annotations=crule.render(kind, resource, tr.value, status, labels),
            value=tr.value,
            threshold=cond.threshold if cond is not None else 0.0,
            starts_at_ms=tr.starts_at_ms,
            ends_at_ms=tr.ends_at_ms,
            event_time_ms=tr.at_ms,
            receivers=list(rule.receivers),
            silenced=self._silenced(labels, tr.at_ms / 1000.0),
            config_revision=crule.revision,
            group_by=list(rule.group_by),
            reason=reason,
        )
        self.transitions_total += 1
        self.history.append(event)
        self._new_history.append(event)
        return event

    @staticmethod
    def _labels(ser: Series, kind: AlertKind) -> dict[str, str]:
        """An alert's labels: the series', the rule's, and alertname/severity/kind."""
        rule = ser.rule.rule
        return {
            **ser.labels,
            **rule.labels,
            "alertname": ser.rule.name,
            "severity": rule.severity,
            "kind": kind.value,
        }

    def _retire_threshold(self, ser: Series, reason: str) -> list[AlertEvent]:
        st = ser.state
        at = max(st.last_ms, self.watermark_ms)
        events: list[AlertEvent] = []
        if st.phase is Phase.FIRING:
            tr = Transition(AlertKind.THRESHOLD, "resolved", st.since_ms, at, at, st.value)
            events.append(self._event(ser, tr, reason))
        elif st.phase is Phase.PENDING:
            tr = Transition(AlertKind.THRESHOLD, "ok", st.since_ms, at, at, st.value)
            events.append(self._event(ser, tr, reason))
        ser.state = SeriesState(
            value=st.value,
            last_ms=st.last_ms,
            nodata_since_ms=st.nodata_since_ms,
            nodata_notified_ms=st.nodata_notified_ms,
        )
        if not ser.dirty:
            ser.dirty = True
            self._dirty.append(ser)
        return events

    def _retire(self, ser: Series, reason: str) -> list[AlertEvent]:
        """Resolve whatever a series has active and forget it."""
        events = self._retire_threshold(ser, reason)
        st = ser.state
        if st.nodata_since_ms:
            at = max(st.last_ms, self.watermark_ms)
            tr = Transition(AlertKind.NO_DATA, "resolved", st.nodata_since_ms, at, at, st.value)
            events.append(self._event(ser, tr, reason))
        key = (ser.rule.name, ser.key)
        self.series.pop(key, None)
        self._deleted.add((key[0], _skey_text(ser.key)))
        return events

    # --- persistence --------------------------------------------------------------

    def restore(
        self, rows: Iterable[SeriesRow], rule_docs: Mapping[str, Mapping[str, Any]] | None = None
    ) -> list[AlertEvent]:
        """Load persisted states. Call after :meth:`set_rules`; alerts of rules deleted
        meanwhile resolve (using the rule as it was saved, from ``rule_docs``)."""
        events: list[AlertEvent] = []
        orphans: dict[str, CompiledRule | None] = {}
        for row in rows:
            key = _skey_parse(row.skey)
            if (row.rule, key) in self.series:
                continue
            rule = self.rules.get(row.rule)
            orphan = rule is None
            if orphan:
                if row.rule not in orphans:
                    orphans[row.rule] = None
                    doc = (rule_docs or {}).get(row.rule)
                    if doc is not None:
                        try:
                            orphans[row.rule] = CompiledRule.compile(
                                row.rule, Rule.model_validate(doc)
                            )
                        except ValueError:
                            log.warning(
                                "saved rule %s no longer loads; dropping its state", row.rule
                            )
                rule = orphans[row.rule]
                if rule is None:
                    self._deleted.add((row.rule, row.skey))
                    continue
            assert rule is not None
            ser = Series(rule, key, dict(row.data["labels"]), row.partition, _state_from(row.data))
            self.series[(row.rule, key)] = ser
            if (
                orphan
                or rule.rule.metric != key[1]
                or not rule.selector.matches(key[0], ser.labels)
            ):
                events.extend(self._retire(ser, "rule removed"))
        if self.series:
            self.watermark_ms = max(
                self.watermark_ms, max(s.state.last_ms for s in self.series.values())
            )
        self._routes.clear()
        return events

    def forget_partitions(self, partitions: Iterable[int]) -> int:
        """Drop in-memory states of partitions this instance no longer owns."""
        parts = set(partitions)
        gone = [k for k, s in self.series.items() if s.partition in parts]
        for k in gone:
            del self.series[k]
        self._dirty = [s for s in self._dirty if s.partition not in parts]
        self._routes.clear()
        return len(gone)

    def drain(self) -> tuple[list[SeriesRow], list[tuple[str, str]], list[AlertEvent], bool]:
        """What changed since the last drain: upserts, deletes, new history, rules changed."""
        upserts = []
        for ser in self._dirty:
            ser.dirty = False
            if (ser.rule.name, ser.key) in self.series:
                upserts.append(ser.row())
        self._dirty = []
        deletes = list(self._deleted)
        self._deleted.clear()
        history, self._new_history = self._new_history, []
        changed, self._rules_changed = self._rules_changed, False
        return upserts, deletes, history, changed

    # --- views --------------------------------------------------------------------

    def active(self, now_s: float) -> list[dict[str, Any]]:
        """Pending and firing alerts (threshold and no-data), oldest first."""
        out: list[dict[str, Any]] = []
        for ser in self.series.values():
            st = ser.state
            resource, metric, _ = ser.key
            rule = ser.rule.rule
            base = {
                "rule": ser.rule.name,
                "severity": rule.severity,
                "resource": resource,
                "metric": metric,
                "value": st.value,
                "last_sample_ms": st.last_ms,
            }
            if st.phase is not Phase.OK:
                labels = self._labels(ser, AlertKind.THRESHOLD)
                out.append(
                    {
                        **base,
                        "labels": labels,
                        "silenced": self._silenced(labels, now_s),
                        "fingerprint": ser.fingerprint,
                        "kind": "threshold",
                        "status": st.phase.value,
                        "since_ms": st.since_ms,
                        "condition": str(rule.condition),
                    }
                )
            if st.nodata_since_ms:
                labels = self._labels(ser, AlertKind.NO_DATA)
                out.append(
                    {
                        **base,
                        "labels": labels,
                        "silenced": self._silenced(labels, now_s),
                        "fingerprint": ser.nodata_fingerprint,
                        "kind": "no_data",
                        "status": "firing",
                        "since_ms": st.nodata_since_ms,
                        "condition": f"no data for {format_duration(rule.no_data or 0)}",
                    }
                )
        out.sort(key=lambda a: (a["since_ms"], a["fingerprint"]))
        return out
