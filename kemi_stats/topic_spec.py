"""What a topic is made of, shared by :mod:`kemi_stats.topics` and its admin clients."""

from __future__ import annotations

from dataclasses import dataclass, field

from kemi_stats.errors import BrokerError

__all__ = ["MIN_INSYNC", "ConfigsUnreadable", "TopicSpec"]

#: the topic config that says how many copies must hold a record before it is acked
MIN_INSYNC = "min.insync.replicas"


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """A topic and how it is created."""

    name: str
    partitions: int
    configs: dict[str, str] = field(default_factory=dict)
    description: str = ""
    #: a sample topic: created with the settings' ``sample_partitions``, not ``partitions``
    sample: bool = False


class ConfigsUnreadable(BrokerError):
    """The broker did not answer a request for topic configs (one without DescribeConfigs)."""
