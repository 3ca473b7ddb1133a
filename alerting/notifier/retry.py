"""The retry stage: exponential backoff with full jitter, bounded by attempts and elapsed time.

Only :class:`DeliveryError` with ``retryable`` set is retried. A ``Retry-After`` from
a 429/503 is honoured, capped at the receiver's maximum backoff.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from alerting.notifier.send import DeliveryError
from kemi_stats.registry.models import Receiver

__all__ = ["Outcome", "RetryPolicy", "deliver"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try one notification."""

    max_retries: int = 8
    initial: float = 1.0
    maximum: float = 60.0
    max_elapsed: float = 600.0

    @classmethod
    def for_receiver(
        cls, receiver: Receiver, initial: float | None = None, maximum: float | None = None
    ) -> RetryPolicy:
        """The receiver's policy, with optional overrides of the backoff bounds."""
        return cls(
            max_retries=receiver.max_retries,
            initial=initial if initial is not None else receiver.backoff_initial,
            maximum=maximum if maximum is not None else receiver.backoff_max,
            max_elapsed=receiver.max_elapsed,
        )


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a notification ended."""

    ok: bool
    attempts: int
    elapsed: float
    status: int = 0
    reason: str = ""


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, DeliveryError) and exc.retryable


class _Backoff:
    def __init__(self, policy: RetryPolicy) -> None:
        self.policy = policy
        self.jitter = wait_random_exponential(multiplier=policy.initial, max=policy.maximum)

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, DeliveryError) and exc.retry_after is not None:
            return min(exc.retry_after, self.policy.maximum)
        return float(self.jitter(state))


async def deliver(send: Callable[[], Awaitable[int]], policy: RetryPolicy) -> Outcome:
    """Call ``send`` until it succeeds, fails for good, or the policy gives up."""
    started = time.monotonic()
    attempts = 0
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_retries + 1) | stop_after_delay(policy.max_elapsed),
        wait=_Backoff(policy),
        retry=retry_if_exception(_retryable),
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                attempts += 1
                status = await send()
    except DeliveryError as exc:
        elapsed = time.monotonic() - started
        why = f"{exc}; gave up after {attempts} attempt(s) in {elapsed:.1f} s"
        return Outcome(False, attempts, elapsed, exc.status, why)
    return Outcome(True, attempts, time.monotonic() - started, status)
