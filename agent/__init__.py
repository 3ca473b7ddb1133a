"""The kemi-stats push agent: reads /proc every interval and pushes JSON to the aggregator.

``kemi-stats agent --url http://aggregator:8080 --token ...`` runs it.
"""

from agent.procfs import ProcReader
from agent.pusher import Pusher, PushResult, push_url, retry_after_seconds
from agent.runner import Agent, AgentStats, default_resource_id

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
