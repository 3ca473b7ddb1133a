"""The poll worker (SNMP, and /metrics scrapes) (``python -m poller.worker``, ``kemi-stats run poller``)."""

from poller.worker.service import PollWorker, main

__all__ = ["PollWorker", "main"]
