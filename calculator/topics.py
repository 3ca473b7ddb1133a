"""The calculator's topics: raw in, metrics out, group inputs in between. Values are the
protobuf bytes of :mod:`kemi_stats.codec`, so topics carry them raw."""

from __future__ import annotations

from faust import TopicT

from calculator.app import app, calc_settings
from kemi_stats.topics import ALL_TOPICS, TopicSpec

__all__ = ["groups_topic", "raw_topic", "topic_specs"]


def _topic(name: str) -> TopicT:
    return app.topic(
        name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )


raw_topic = _topic(calc_settings.input_topic)
groups_topic = _topic(calc_settings.groups_topic)


def topic_specs() -> tuple[TopicSpec, ...]:
    """How to create the three topics (overridden names get the standard partitions/configs)."""
    standard = {s.name: s for s in ALL_TOPICS}
    out = []
    for name, like in (
        (calc_settings.input_topic, "kemi.metrics.raw"),
        (calc_settings.output_topic, "kemi.metrics"),
        (calc_settings.groups_topic, "kemi.metrics.groups"),
    ):
        base = standard[like]
        out.append(TopicSpec(name, calc_settings.partitions, base.replication, dict(base.configs)))
    return tuple(out)
