"""The alert fingerprint: a stable id of one alert (rule x series x kind), the Kafka key."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

__all__ = ["fingerprint"]


def fingerprint(
    rule: str, resource_id: str, metric: str, sample_labels: Iterable[tuple[str, str]], kind: str
) -> str:
    """16 hex digits of SHA-256 over the rule, the series identity and the alert kind."""
    h = hashlib.sha256()
    for part in (rule, resource_id, metric, kind):
        h.update(part.encode())
        h.update(b"\x00")
    for k, v in sorted(sample_labels):
        h.update(f"{k}={v}".encode())
        h.update(b"\x00")
    return h.hexdigest()[:16]
