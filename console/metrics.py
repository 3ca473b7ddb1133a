"""The console's self-metrics (prometheus_client default registry, prefix ``kemi_console_``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = ["PAGE_SECONDS", "REFRESHES", "SESSIONS", "SIGN_INS", "SILENCES", "SOURCE_ERRORS"]

PAGE_SECONDS = Histogram(
    "kemi_console_page_seconds",
    "Server time to answer a page or API request",
    ["page"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5),
)
SOURCE_ERRORS = Counter(
    "kemi_console_source_errors_total",
    "Failed reads of the evaluator, the TSDB or a service",
    ["source"],
)
REFRESHES = Counter(
    "kemi_console_refreshes_total", "Background reads of poll status and service health", ["what"]
)
SIGN_INS = Counter("kemi_console_sign_ins_total", "Sign-in attempts by result", ["result"])
SILENCES = Counter(
    "kemi_console_silences_total", "Silences added or expired from the console", ["action"]
)
SESSIONS = Gauge("kemi_console_sessions", "Sessions held", ["state"])
