"""The calculator's topics: raw in, metrics out, group inputs in between. Values are the
protobuf bytes of :mod:`kemi_stats.codec`, so topics carry them raw."""

from __future__ import annotations

from faust import TopicT

from calculator.app import app, calc_settings, settings
from kemi_stats.topics import METRICS, METRICS_GROUPS, METRICS_RAW, TopicSpec, renamed_specs

__all__ = ["groups_topic", "raw_topic", "topic_specs"]


def _topic(name: str) -> TopicT:
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


raw_topic = _topic(calc_settings.input_topic)
groups_topic = _topic(calc_settings.groups_topic)


def topic_specs() -> tuple[TopicSpec, ...]:
    """How to create the three topics (overridden names get the standard partitions/configs)."""
    # one count for all three: the tables are co-partitioned with the input and groups topics
    return renamed_specs(
        {
            METRICS_RAW: calc_settings.input_topic,
            METRICS: calc_settings.output_topic,
            METRICS_GROUPS: calc_settings.groups_topic,
        },
        partitions=calc_settings.table_partitions(settings),
    )
