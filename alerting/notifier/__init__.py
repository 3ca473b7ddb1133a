"""The notifier: kemi.alerts -> grouped, silenced, deduplicated, signed, retried webhooks."""

from __future__ import annotations

from alerting.notifier.payload import PAYLOAD_VERSION, build_payload, request_parts
from alerting.notifier.pipeline import Pipeline, ReceiverWorker
from alerting.notifier.signature import HEADER, sign, verify

__all__ = [
    "HEADER",
    "PAYLOAD_VERSION",
    "Pipeline",
    "ReceiverWorker",
    "build_payload",
    "request_parts",
    "sign",
    "verify",
]
