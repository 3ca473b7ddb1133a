"""Self-metrics of a poll worker (Prometheus, names prefixed ``kemi_poller_``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

POLLS = Counter("kemi_poller_polls_total", "Target polls finished, by result", ["result"])
ERRORS = Counter("kemi_poller_errors_total", "Failed target polls, by reason", ["reason"])
JOBS_DROPPED = Counter(
    "kemi_poller_jobs_dropped_total", "Poll jobs not polled (late, unknown target, ...)", ["reason"]
)
IN_FLIGHT = Gauge("kemi_poller_in_flight", "Target polls running now")
VALUES = Counter("kemi_poller_values_total", "SNMP values read, and samples scraped")
POLL_DURATION = Histogram(
    "kemi_poller_poll_duration_seconds",
    "Duration of one target poll",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
TARGET_LAST_POLL = Gauge(
    "kemi_poller_target_last_poll_timestamp_seconds",
    "When this worker last polled the target",
    ["target"],
)
TARGET_UP = Gauge("kemi_poller_target_up", "1 if the target's last poll here succeeded", ["target"])
SCRAPE_DROPPED = Counter(
    "kemi_poller_scrape_dropped_total",
    "Samples of scraped pages left out (NaN or infinite, negative counters), by reason",
    ["reason"],
)
