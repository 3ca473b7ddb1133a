"""The alert evaluator's self-metrics (prefix ``kemi_alert_evaluator_``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SAMPLES = Counter("kemi_alert_evaluator_samples_total", "Samples of metrics that some rule watches")
BATCHES = Counter("kemi_alert_evaluator_batches_total", "SampleBatch records consumed")
DECODE_ERRORS = Counter("kemi_alert_evaluator_decode_errors_total", "Records that did not decode")
TRANSITIONS = Counter(
    "kemi_alert_evaluator_transitions_total", "Alert transitions sent", ["status"]
)
SERIES = Gauge("kemi_alert_evaluator_series", "(rule, series) states held")
RULES = Gauge("kemi_alert_evaluator_rules", "Rules loaded")
INVALID_RULES = Gauge("kemi_alert_evaluator_invalid_rules", "Rules skipped as invalid")
ACTIVE = Gauge("kemi_alert_evaluator_active_alerts", "Pending/firing alerts", ["status"])
CHECKPOINT = Histogram(
    "kemi_alert_evaluator_checkpoint_seconds", "Time to flush, persist and commit a checkpoint"
)
LAG = Gauge("kemi_alert_evaluator_event_lag_seconds", "Wall clock minus newest sample event time")
