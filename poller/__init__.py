"""kemi-stats poller: the poll scheduler (job producer) and the poll workers (SNMP, scrapes).

``poller.scheduler`` puts one PollJob per target per interval on ``kemi.poll-jobs``;
``poller.worker`` processes consume them as one group and publish SampleBatches to
``kemi.metrics.raw``.
"""

from poller.collect import TargetState, collect, failure_batch
from poller.errors import REASONS, PollError
from poller.plan import PollPlan, compile_plan
from poller.settings import PollerSettings
from poller.snmp import SnmpClient, SnmpSession

__all__ = [
    "REASONS",
    "PollError",
    "PollPlan",
    "PollerSettings",
    "SnmpClient",
    "SnmpSession",
    "TargetState",
    "collect",
    "compile_plan",
    "failure_batch",
]
