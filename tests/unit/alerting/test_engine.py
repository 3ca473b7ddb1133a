"""The engine: routing, events, rule changes, persistence round trip."""

from __future__ import annotations

from pathlib import Path

from alerting.evaluator.engine import Engine
from alerting.evaluator.store import SeriesRow, StateStore
from alerting.silences import SilenceSet
from kemi_stats.model import Sample, SampleBatch, Source
from kemi_stats.registry.models import Rule, Silence
from tests.alerting_rules import cpu_rule

CPU = Rule.model_validate(
    cpu_rule("2s", "1s", annotations={"summary": "{resource} cpu {value:g}% > {threshold:g}"})
)


def batch(t: int, value: float, resource: str = "host:web-01", site: str = "pangyo") -> SampleBatch:
    return SampleBatch(
        resource,
        t,
        Source.PUSH,
        [Sample("cpu_usage_pct", value), Sample("other", 1)],
        {"site": site},
    )


def test_fires_once_with_rendered_annotations_and_labels() -> None:
    e = Engine()
    e.set_rules({"cpu-high": CPU})
    events = []
    for i, v in enumerate([95, 95, 95, 95]):
        events += e.process(batch(1000 + 1000 * i, v))
    events += e.process(batch(1000, 99, site="seoul", resource="host:web-02"))
    assert [ev.status for ev in events] == ["pending", "firing"]
    fired = events[1]
    assert fired.rule == "cpu-high" and fired.severity == "critical"
    assert fired.receivers == ["ops-hook"]
    assert fired.annotations["summary"] == "host:web-01 cpu 95% > 90"
    assert fired.labels["site"] == "pangyo" and fired.labels["resource"] == "host:web-01"
    assert fired.starts_at_ms == 3000 and fired.key == fired.fingerprint.encode()
    assert [a["status"] for a in e.active(0)] == ["firing"]


def test_removed_rule_resolves_its_firing_alerts() -> None:
    e = Engine()
    e.set_rules({"cpu-high": CPU})
    for t in (1000, 3000):
        e.process(batch(t, 95))
    events = e.set_rules({})
    assert [(ev.status, ev.reason) for ev in events] == [("resolved", "rule removed")]
    assert e.series == {}


def test_silenced_flag_is_recorded() -> None:
    silences = SilenceSet()
    silences.update(
        {
            "s": Silence.model_validate(
                {"match": ["resource=host:web-01"], "starts_at": 0, "ends_at": 9e9}
            )
        }
    )
    e = Engine(silenced=silences.covers)
    e.set_rules({"cpu-high": CPU.model_copy(update={"for_": 0.0})})
    (ev,) = e.process(batch(1000, 99))
    assert ev.status == "firing" and ev.silenced


def test_state_survives_a_restart_through_the_store(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "s.sqlite")
    e = Engine()
    e.set_rules({"cpu-high": CPU})
    e.process(batch(1000, 95))  # pending since 1000
    upserts, deletes, _, changed = e.drain()
    store.checkpoint(upserts=upserts, deletes=deletes, offsets={("m", 0): 7, ("r", 0): 9},
                     history=[{"x": 1}], rules=e.rule_docs() if changed else None)  # fmt: skip
    store.close()

    store = StateStore(tmp_path / "s.sqlite")
    e2 = Engine()
    e2.set_rules({"cpu-high": CPU})
    assert e2.restore(store.load_series(), store.rule_docs()) == []
    assert store.offsets("m") == {0: 7}
    assert store.offsets("r") == {0: 9}
    events = e2.process(batch(3000, 95))
    assert [ev.status for ev in events] == ["firing"], "pending time was kept"

    # the rule was deleted while the evaluator was down: its alert resolves on restore
    e2.drain()
    upserts, deletes, _, _ = e2.drain()
    store.checkpoint(upserts=[s.row() for s in e2.series.values()], rules=e2.rule_docs())
    e3 = Engine()
    e3.set_rules({})
    events = e3.restore(store.load_series(), store.rule_docs())
    assert [(ev.status, ev.rule) for ev in events] == [("resolved", "cpu-high")]


def test_no_data_and_ttl_on_tick() -> None:
    rule = Rule.model_validate({"metric": "cpu_usage_pct", "no_data": "3s", "receivers": ["x"]})
    e = Engine(series_ttl_ms=10_000)
    e.set_rules({"quiet": rule, "cpu-high": CPU})
    e.process(batch(1000, 10))
    assert e.tick(3000) == []
    (ev,) = e.tick(4000)
    assert ev.status == "firing" and ev.labels["kind"] == "no_data"
    assert (
        ev.fingerprint != e.series[("cpu-high", ("host:web-01", "cpu_usage_pct", ()))].fingerprint
    )
    e.tick(20_000)
    assert [k[0] for k in e.series] == ["quiet"], "ok series without no-data expire"


def test_a_store_from_before_slots_moves_derived_series_to_their_slots(tmp_path: Path) -> None:
    """States saved when raw and derived samples both came from kemi.metrics partition p:
    a derived metric's series goes to slot 65536 + p, a raw one stays at p (raw partition p)."""
    store = StateStore(tmp_path / "s.sqlite")
    store.checkpoint(upserts=[
        SeriesRow("bps-high", "a", 3, {"labels": {"metric": "if_in_bps"}}),
        SeriesRow("cpu-high", "b", 3, {"labels": {"metric": "cpu_usage_pct"}}),
    ])  # fmt: skip
    store.close()

    store = StateStore(tmp_path / "s.sqlite")
    assert store.use_slots({"if_in_bps"}, 65536) == 1
    assert [r.rule for r in store.load_series([65536 + 3])] == ["bps-high"]
    assert [r.rule for r in store.load_series([3])] == ["cpu-high"]
    assert store.use_slots({"if_in_bps"}, 65536) is None, "once"
    assert StateStore(tmp_path / "new.sqlite").use_slots({"if_in_bps"}, 65536) is None
