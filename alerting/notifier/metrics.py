"""The notifier process's self-metrics (prefix ``kemi_notifier_``; the delivery stages count in :mod:`alerting.notifier.pipeline`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

RECORDS = Counter("kemi_notifier_records_total", "kemi.alerts records consumed")
DECODE_ERRORS = Counter("kemi_notifier_decode_errors_total", "Records that did not decode")
IN_FLIGHT = Gauge("kemi_notifier_in_flight_records", "Records not yet finished by every receiver")
