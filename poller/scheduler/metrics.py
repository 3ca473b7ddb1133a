"""Self-metrics of the poll scheduler (Prometheus, names prefixed ``kemi_poller_scheduler_``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

TARGETS = Gauge("kemi_poller_scheduler_targets", "Targets with a polling schedule")
LEADER = Gauge("kemi_poller_scheduler_leader", "1 while this scheduler is the active leader")
LEADER_CHANGES = Counter(
    "kemi_poller_scheduler_leader_changes_total",
    "Times this scheduler became or stopped being leader",
)
FIRES = Counter(
    "kemi_poller_scheduler_fires_total",
    "Schedule ticks, by outcome (published, standby, ...)",
    ["outcome"],
)
PUBLISHED = Counter("kemi_poller_scheduler_jobs_published_total", "Poll jobs acked by Kafka")
PUBLISH_ERRORS = Counter(
    "kemi_poller_scheduler_publish_errors_total", "Poll jobs Kafka did not accept"
)
