"""The calculator's self-metrics (Prometheus, ``kemi_calculator_*``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BATCHES",
    "BATCH_SECONDS",
    "COUNTER_STEPS",
    "DECODE_ERRORS",
    "DEFINITIONS",
    "DEFINITIONS_INVALID",
    "DROPPED",
    "GROUP_INPUTS",
    "PROCESS_ERRORS",
    "PRODUCED",
    "RELOADS",
    "SAMPLES_IN",
]

BATCHES = Counter("kemi_calculator_batches", "Raw batches processed")
SAMPLES_IN = Counter("kemi_calculator_samples_in", "Raw samples processed")
PRODUCED = Counter("kemi_calculator_derived_samples", "Derived samples produced", ["kind"])
PROCESS_ERRORS = Counter(
    "kemi_calculator_process_errors",
    "Raw batches whose calculation failed (nothing derived from them), by topic",
    ["topic"],
)
DROPPED = Counter(
    "kemi_calculator_dropped",
    "Derived samples not produced, by definition and reason "
    "(missing_input, division_by_zero, rate_ceiling, counter_reset, late_sample, ...)",
    ["definition", "reason"],
)
COUNTER_STEPS = Counter(
    "kemi_calculator_counter_steps",
    "Counter readings by outcome (ok, wrap, reset, duplicate, out_of_order, seed)",
    ["outcome"],
)
DECODE_ERRORS = Counter(
    "kemi_calculator_decode_errors", "Records that are not a SampleBatch", ["topic"]
)
GROUP_INPUTS = Counter("kemi_calculator_group_inputs", "Group contributions by status", ["status"])
DEFINITIONS = Gauge("kemi_calculator_definitions", "Derived definitions in force", ["mode"])
DEFINITIONS_INVALID = Gauge("kemi_calculator_definitions_invalid", "Derived definitions skipped")
RELOADS = Counter("kemi_calculator_definition_reloads", "Times the definitions were recompiled")
BATCH_SECONDS = Histogram(
    "kemi_calculator_batch_seconds",
    "Time to process one raw batch (decode, compute, state, produce), averaged over its take",
    buckets=(0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05),
)
