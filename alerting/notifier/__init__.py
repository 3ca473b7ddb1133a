"""The notifier: kemi.alerts -> grouped, silenced, deduplicated, signed, retried webhooks."""

from __future__ import annotations

from alerting.notifier.payload import build_payload, request_parts
from alerting.notifier.pipeline import Pipeline, ReceiverWorker

__all__ = ["Pipeline", "ReceiverWorker", "build_payload", "request_parts"]
