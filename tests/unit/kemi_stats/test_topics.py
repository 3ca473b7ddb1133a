"""Renamed standard topics are created like the standard ones."""

from __future__ import annotations

import pytest

from kemi_stats.topics import ALERTS, ALL_TOPICS, METRICS, METRICS_RAW, renamed_specs

_STANDARD = {spec.name: spec for spec in ALL_TOPICS}


def test_renamed_specs_keep_partitions_and_configs() -> None:
    raw, alerts = renamed_specs({METRICS_RAW: "test.raw", ALERTS: "test.alerts"})
    assert (raw.name, alerts.name) == ("test.raw", "test.alerts")
    for spec, standard in ((raw, METRICS_RAW), (alerts, ALERTS)):
        like = _STANDARD[standard]
        assert (spec.partitions, spec.replication, spec.configs) == (
            like.partitions,
            like.replication,
            like.configs,
        )
        assert spec.configs is not like.configs


def test_renamed_specs_may_override_partitions() -> None:
    (spec,) = renamed_specs({METRICS: METRICS}, partitions=3)
    assert (spec.name, spec.partitions) == (METRICS, 3)
    assert spec.configs == _STANDARD[METRICS].configs


def test_an_unknown_standard_topic_is_named() -> None:
    with pytest.raises(ValueError, match="'kemi.nope' is not a standard topic"):
        renamed_specs({"kemi.nope": "x"})
