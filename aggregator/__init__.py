"""kemi-stats aggregator: the HTTP push endpoint for agents (JSON and InfluxDB line protocol).

Run it with ``python -m aggregator`` or ``kemi-stats run aggregator``; settings in
:class:`AggregatorSettings` (``KEMI_AGGREGATOR_*``) and the shared ``KEMI_*``.
"""

from aggregator.app import PushHandler, build_app
from aggregator.auth import TokenIndex, token_hash
from aggregator.delivery import Delivery
from aggregator.grant import Grant
from aggregator.jsonpush import JsonPushParser
from aggregator.lineprotocol import LineProtocolParser
from aggregator.openapi import openapi_document
from aggregator.rejection import Rejection
from aggregator.settings import AggregatorSettings

__all__ = [
    "AggregatorSettings",
    "Delivery",
    "Grant",
    "JsonPushParser",
    "LineProtocolParser",
    "PushHandler",
    "Rejection",
    "TokenIndex",
    "build_app",
    "openapi_document",
    "token_hash",
]
