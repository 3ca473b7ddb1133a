"""The kemi-stats push agent: reads /proc every interval and pushes JSON to the aggregator.

``kemi-stats agent --url http://aggregator:8080 --token ...`` runs it.
"""

from kemi_stats.agent.procfs import ProcReader
from kemi_stats.agent.pusher import Pusher, PushResult, push_url, retry_after_seconds
from kemi_stats.agent.runner import Agent, AgentStats, default_resource_id

__all__ = [
    "Agent",
    "AgentStats",
    "ProcReader",
    "PushResult",
    "Pusher",
    "default_resource_id",
    "push_url",
    "retry_after_seconds",
]
