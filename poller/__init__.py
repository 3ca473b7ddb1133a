"""kemi-stats poller: the poll scheduler (job producer) and the poll workers (SNMP, scrapes).

``poller.scheduler`` puts one PollJob per target per interval on ``kemi.poll-jobs``;
``poller.worker`` processes consume them as one group and publish SampleBatches to
``kemi.metrics.raw``.
"""

from typing import Any

# The scheduler imports poller.scheduler, which runs this file: the SNMP client (pysnmp)
# is imported only when one of these names is used, not for every process of the package.
_EXPORTS = {
    "REASONS": "poller.errors",
    "PollError": "poller.errors",
    "PollPlan": "poller.plan",
    "PollerSettings": "poller.settings",
    "SnmpClient": "poller.snmp",
    "SnmpSession": "poller.snmp",
    "TargetState": "poller.collect",
    "collect": "poller.collect",
    "compile_plan": "poller.plan",
    "failure_batch": "poller.collect",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'poller' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
