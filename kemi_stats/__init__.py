"""kemi-stats: company-wide metrics monitoring (the shared core)."""

from kemi_stats.errors import KemiError
from kemi_stats.model import AlertEvent, MetricKind, PollJob, Sample, SampleBatch, Source

__all__ = ["AlertEvent", "KemiError", "MetricKind", "PollJob", "Sample", "SampleBatch", "Source"]
__version__ = "0.1.0"
