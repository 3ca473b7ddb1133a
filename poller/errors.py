"""Why a poll failed: one error type whose ``reason`` is a short, stable label.

The reason is what ``snmp_up=0`` batches carry (label ``reason``) and what the
``kemi_poller_errors_total{reason}`` self-metric counts, so it must stay a small set:

    timeout             no answer at all within the target's timeout and retries
    bad_community       v1/v2c got no answer, but the agent answers SNMPv3 discovery
    auth_wrong_digest   v3 authentication key (or protocol) is wrong
    auth_unknown_user   v3 user is unknown to the agent
    bad_priv_key        v3 authPriv got no answer after discovery succeeded (privacy key)
    deadline            the whole poll did not finish within the target's deadline
    snmp_error          the agent answered with an error status (genErr, noAccess, ...)
    config              the target's credential or profiles are missing or invalid
    network             the request could not be sent (socket or name resolution error)
"""

from __future__ import annotations

from kemi_stats.errors import KemiError

__all__ = ["REASONS", "ExchangeTimedOut", "PollError"]

REASONS = (
    "timeout", "bad_community", "auth_wrong_digest", "auth_unknown_user", "bad_priv_key",
    "deadline", "snmp_error", "config", "network", "other",
)  # fmt: skip


class ExchangeTimedOut(Exception):
    """A request got no answer after the target's timeout and retries (either SNMP path)."""


class PollError(KemiError):
    """A target's poll failed; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, target: str, reason: str, detail: str) -> None:
        super().__init__(f"target {target}: {reason}: {detail}")
        self.target = target
        self.reason = reason
        self.detail = detail
