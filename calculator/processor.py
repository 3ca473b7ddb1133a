"""The per-batch path: one raw batch of one resource in, derived samples and group inputs out.

Pure logic over plain data (no Kafka, no Faust): the agent feeds it a decoded batch
and the resource's state from its table, and writes back what it returns. Every
sample that yields no value is counted with its reason, per definition.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from calculator.counters import Reading, StepKind, counter_step
from calculator.definitions import CompiledDefinition, DefinitionSet
from calculator.state import ResourceState, labels_key, parse_labels_key, split_series_key
from calculator.windows import Closed, window_add, window_expired
from kemi_stats.expressions import EvalFailure
from kemi_stats.model import MetricKind, Sample, SampleBatch, Source

__all__ = ["UPTIME_METRIC", "BatchProcessor", "Contribution", "Result"]

#: the scalar whose drop tells a reboot (counter reset) from a wrap
UPTIME_METRIC = "sysUpTime"
COUNTER_RESET = "counter_reset"
_SEP = "\x1f"
_GAUGE = MetricKind.GAUGE
_FNS = ("rate", "increase", "delta")


@dataclass(slots=True)
class Contribution:
    """One resource's value for a group aggregate, to be repartitioned by the group key."""

    definition: str
    group_labels: dict[str, str]
    resource_id: str
    series_labels: dict[str, str]
    time_ms: int
    value: float


@dataclass(slots=True)
class Result:
    """What one batch produced."""

    derived: list[SampleBatch] = field(default_factory=list)
    contributions: list[Contribution] = field(default_factory=list)
    #: (definition, reason) -> samples not produced
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)
    #: counter step kinds (ok, wrap, reset, duplicate, ...)
    steps: Counter[str] = field(default_factory=Counter)
    produced: int = 0


@dataclass(slots=True)
class _Readings:
    """One batch's values per label set, why some are missing, and the expression inputs."""

    #: label-set key -> metric -> value (raw gauges, rates, then point definitions)
    points: dict[str, dict[str, float | int]] = field(default_factory=dict)
    #: label-set key -> metric -> why it has no value this time (seed, reset, ...)
    blocked: dict[str, dict[str, str]] = field(default_factory=dict)
    #: label-set key -> its labels
    label_sets: dict[str, dict[str, str]] = field(default_factory=dict)
    #: label-set key -> the environment expressions are evaluated in
    envs: dict[str, dict[str, float | int]] = field(default_factory=dict)


class BatchProcessor:
    """Runs a :class:`DefinitionSet` over batches; holds no per-resource state itself."""

    def __init__(
        self, definitions: DefinitionSet, *, grace_ms: int = 10_000, series_ttl_ms: int = 86_400_000
    ) -> None:
        self.defs = definitions
        self.grace_ms = grace_ms
        self.series_ttl_ms = series_ttl_ms
        self._fn_names: dict[str, tuple[str, str, str]] = {
            m: (f"rate({m})", f"increase({m})", f"delta({m})") for m in definitions.counter_metrics
        }
        self._window_names = {d.name: d for d in definitions.window}
        #: the gauges a batch is read for: any definition's input, and the uptime that
        #: tells a reboot. Other gauges change nothing here, so they need not be decoded
        #: (every counter is: its state is kept for a rate() to come, and its resets are
        #: reported)
        self.gauges_read: frozenset[str] = frozenset(
            {UPTIME_METRIC}
            | {i.metric for d in definitions.by_name.values() for i in d.expr.inputs}
        )

    # --- the batch --------------------------------------------------------------------

    def process(self, batch: SampleBatch, state: ResourceState) -> Result:
        """Advance ``state`` (in place) by ``batch``; return derived batches and group inputs."""
        res = Result()
        t = batch.time_ms
        rid = batch.resource_id
        defs = self.defs
        rebooted = self._uptime(batch, state)
        rd = _Readings()
        points, blocked, label_sets, envs = rd.points, rd.blocked, rd.label_sets, rd.envs
        series = state.series
        tracked = defs.tracked_gauges
        fn_names = self._fn_names
        extra: list[Sample] = []
        touched = 0
        for s in batch.samples:
            lk = labels_key(s.labels) if s.labels else ""
            names = points.get(lk)
            if names is None:
                names = points[lk] = {}
                label_sets[lk] = s.labels
            metric, value, kind = s.metric, s.value, s.kind
            names[metric] = value
            if kind is _GAUGE and metric not in tracked:
                continue
            key = metric + _SEP + lk
            last = series.get(key)
            touched += 1
            fns = fn_names.get(metric)
            if kind is _GAUGE:
                if last is not None and t > last[1]:
                    if fns is not None:
                        names[fns[2]] = value - last[0]
                    series[key] = [value, t]
                else:
                    if last is None:
                        series[key] = [value, t]
                    if fns is not None:
                        why = "no_previous_sample" if last is None else "counter_duplicate"
                        blocked.setdefault(lk, {})[fns[2]] = why
                continue
            step = counter_step(
                Reading(last[0], last[1]) if last is not None else None,
                value,
                t,
                kind.modulus,
                rebooted=rebooted,
            )
            res.steps[step.kind] += 1
            if step.state is not None and step.state.time_ms == t:
                series[key] = [value, t]
            if step.accepted:
                if fns is not None:
                    names[fns[0]] = step.rate  # type: ignore[assignment]
                    names[fns[1]] = step.increase  # type: ignore[assignment]
                    names[fns[2]] = step.increase  # type: ignore[assignment]
                continue
            if step.kind is StepKind.RESET:
                extra.append(Sample(COUNTER_RESET, 1, {**s.labels, "counter": metric}))
            if fns is not None:
                b = blocked.setdefault(lk, {})
                why = f"counter_{step.kind.value}"
                b[fns[0]] = b[fns[1]] = b[fns[2]] = why
        if len(series) > touched:
            self._forget_stale(series, t)
        out: list[Sample] = []
        for d in defs.point:
            if d.applies_to(rid):
                for lk, value in self._evaluate(d, rd, res):
                    labels = label_sets.get(lk) or {}
                    out.append(
                        Sample(d.name, value, {**labels, **d.labels} if d.labels else labels)
                    )
                    points.setdefault(lk, {})[d.name] = value
                    if lk == "":
                        for env in envs.values():
                            env.setdefault(d.name, value)
                    elif lk in envs:
                        envs[lk][d.name] = value
        closed_batches: list[SampleBatch] = []
        if state.windows or defs.window:
            self._windows(batch, state, rd, res, closed_batches)
        for d in defs.group:
            if d.applies_to(rid):
                self._contribute(d, batch, rd, res)
        samples = out + extra
        if samples:
            res.derived.append(self._batch(batch, t, samples))
        res.derived.extend(closed_batches)
        res.produced = len(out) + sum(len(b.samples) for b in closed_batches)
        return res

    def _uptime(self, batch: SampleBatch, state: ResourceState) -> bool:
        """Record sysUpTime; True if it went down since the last batch that carried it."""
        for s in batch.samples:
            if s.metric == UPTIME_METRIC and not s.labels:
                last = state.uptime
                if last is None or batch.time_ms > last[1]:
                    state.uptime = [s.value, batch.time_ms]
                    return last is not None and s.value < last[0]
                return False
        return False

    def _forget_stale(self, series: dict[str, list[float | int]], now_ms: int) -> None:
        cutoff = now_ms - self.series_ttl_ms
        for key in [k for k, (_, t) in series.items() if t < cutoff]:
            del series[key]

    # --- evaluation -------------------------------------------------------------------

    def _evaluate(
        self, d: CompiledDefinition, rd: _Readings, res: Result
    ) -> Iterable[tuple[str, float]]:
        """(label set, value) for every label set of the batch the definition applies to."""
        points, blocked, envs = rd.points, rd.blocked, rd.envs
        needed = d.input_names
        base = points.get("", {})
        base_blocked = blocked.get("", {})

        def present(lk: str) -> bool:
            names, blk = points[lk], blocked.get(lk, {})
            return any(n in names or n in blk for n in needed)

        labelled = [lk for lk in points if lk and present(lk)]
        if labelled:
            candidates = labelled
            if all(n in base or n in base_blocked for n in needed):
                candidates = [*labelled, ""]
        elif "" in points and present(""):
            candidates = [""]
        else:
            return
        for lk in candidates:
            if lk:
                env = envs.get(lk)
                if env is None:
                    env = envs[lk] = {**base, **points[lk]} if base else points[lk]
            else:
                env = base
            missing = next((n for n in needed if n not in env), None)
            if missing is not None:
                why = blocked.get(lk, {}).get(missing) or base_blocked.get(missing)
                res.reasons[(d.name, why or "missing_input")] += 1
                continue
            if d.max_rate is not None and any(env[n] > d.max_rate for n in d.rate_names):
                res.reasons[(d.name, "rate_ceiling")] += 1
                continue
            try:
                yield lk, d.expr.evaluate(env)
            except EvalFailure as exc:
                res.reasons[(d.name, exc.reason)] += 1

    def _windows(
        self,
        batch: SampleBatch,
        state: ResourceState,
        rd: _Readings,
        res: Result,
        closed_out: list[SampleBatch],
    ) -> None:
        windows = state.windows
        # a removed or changed definition leaves windows nobody will close by a sample
        for key in [k for k in windows if split_series_key(k)[0] not in self._window_names]:
            del windows[key]
        for d in self.defs.window:
            if not d.applies_to(batch.resource_id):
                continue
            assert d.window_ms is not None and d.expr.fold is not None
            for lk, value in self._evaluate(d, rd, res):
                key = d.name + _SEP + lk
                w, closed, status = window_add(windows.get(key), value, batch.time_ms, d.window_ms)
                if status == "late":
                    res.reasons[(d.name, "late_sample")] += 1
                elif w is not None:
                    windows[key] = w
                if closed is not None:
                    labels = rd.label_sets.get(lk) or parse_labels_key(lk)
                    closed_out.append(self._closed_batch(batch, d, labels, closed))

    def _contribute(
        self, d: CompiledDefinition, batch: SampleBatch, rd: _Readings, res: Result
    ) -> None:
        for lk, value in self._evaluate(d, rd, res):
            labels = rd.label_sets.get(lk) or {}
            group: dict[str, str] = {}
            for g in d.group_by:
                v = labels.get(g) or batch.labels.get(g)
                if v is None and g == "resource":
                    v = batch.resource_id
                if v is None:
                    break
                group[g] = v
            else:
                res.contributions.append(
                    Contribution(d.name, group, batch.resource_id, labels, batch.time_ms, value)
                )
                continue
            res.reasons[(d.name, "missing_group_label")] += 1

    # --- windows closed by the clock ----------------------------------------------------

    def expire(self, resource_id: str, state: ResourceState, now_ms: int) -> list[SampleBatch]:
        """Close the windows of one resource whose end + grace the wall clock has passed."""
        out: list[SampleBatch] = []
        for key in list(state.windows):
            name, lk = split_series_key(key)
            d = self._window_names.get(name)
            if d is None:
                del state.windows[key]
                continue
            assert d.window_ms is not None
            w = state.windows[key]
            if window_expired(w, now_ms, d.window_ms, self.grace_ms):
                del state.windows[key]
                template = SampleBatch(resource_id, now_ms, Source.CALC)
                out.append(
                    self._closed_batch(template, d, parse_labels_key(lk), Closed(w[0], w[2]))
                )
        return out

    # --- output -----------------------------------------------------------------------

    def _batch(self, batch: SampleBatch, time_ms: int, samples: list[Sample]) -> SampleBatch:
        return SampleBatch(
            resource_id=batch.resource_id,
            time_ms=time_ms,
            source=Source.CALC,
            samples=samples,
            labels=batch.labels,
            config_revision=self.defs.revision,
        )

    def _closed_batch(
        self, batch: SampleBatch, d: CompiledDefinition, labels: dict[str, str], closed: Closed
    ) -> SampleBatch:
        assert d.expr.fold is not None
        value = float(d.expr.fold(closed.values))
        sample = Sample(d.name, value, {**labels, **d.labels})
        return self._batch(batch, closed.start_ms, [sample])
