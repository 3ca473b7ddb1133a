"""The exception tree of kemi-stats.

Every error a user can see derives from :class:`KemiError`; its message says
which target, rule or key, which value, and what was expected::

    KemiError
    ├── ConfigError            settings, flags or environment are wrong
    ├── ValidationError        a document or field is invalid (names the field)
    │   └── InvalidName        a metric, label or resource name breaks the name rules
    │                          (kemi_stats.names; also a ValueError for pydantic)
    ├── RegistryError          etcd failed or refused an operation
    │   ├── NotFoundError      no such entry
    │   ├── AlreadyExistsError an entry with that name exists
    │   ├── ConflictError      an entry changed between a read and a write based on it
    │   └── BackendUnavailable etcd cannot be reached
    ├── BrokerError            Kafka failed or cannot be reached
    │   └── TopicReplicationError  a topic keeps fewer copies than the settings require
    ├── CodecError             a record cannot be decoded
    └── StackError             the local stack could not start or stop a component
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "BackendUnavailable",
    "BrokerError",
    "CodecError",
    "ConfigError",
    "ConflictError",
    "KemiError",
    "NotFoundError",
    "RegistryError",
    "StackError",
    "TopicReplicationError",
    "ValidationError",
]


class KemiError(Exception):
    """Root of every kemi-stats error."""


class ConfigError(KemiError):
    """Settings, flags or environment variables are wrong."""


class ValidationError(KemiError):
    """A document or a field of one is invalid."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RegistryError(KemiError):
    """The registry (etcd) failed or refused an operation."""


class NotFoundError(RegistryError):
    """No registry entry has that name."""


class AlreadyExistsError(RegistryError):
    """A registry entry with that name exists already."""


class ConflictError(RegistryError):
    """An entry changed (or went) between a read and the write that was based on it."""


class BackendUnavailable(RegistryError):
    """etcd cannot be reached."""


class BrokerError(KemiError):
    """Kafka failed or cannot be reached."""


class TopicReplicationError(BrokerError):
    """A topic exists with fewer replicas than ``KEMI_KAFKA_REPLICATION_FACTOR`` requires."""


class CodecError(KemiError):
    """A record on a topic cannot be decoded."""


class StackError(KemiError):
    """The local stack could not start or stop one of its components."""

    def __init__(self, message: str, *, component: str | None = None) -> None:
        super().__init__(message)
        self.component = component
