"""The poll scheduler (``python -m poller.scheduler``, ``kemi-stats run poller-scheduler``)."""

from poller.scheduler.leader import LeaderElection
from poller.scheduler.schedule import PollSchedule, nominal_time, phase
from poller.scheduler.service import JobPublisher, main

__all__ = ["JobPublisher", "LeaderElection", "PollSchedule", "main", "nominal_time", "phase"]
