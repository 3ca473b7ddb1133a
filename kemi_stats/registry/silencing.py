"""Adding and expiring silences: one way for the CLI (``kemi-stats silence``) and the console.

A silence written from the web console is the same entry ``kemi-stats silence add``
writes: same id form, same fields, same validation.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from kemi_stats.registry.models import Silence, parse_matcher

__all__ = ["expired_now", "new_silence", "new_silence_id"]


def new_silence_id() -> str:
    """A fresh silence id (12 hex characters)."""
    return uuid.uuid4().hex[:12]


def new_silence(
    matchers: Iterable[str],
    duration_s: float,
    *,
    starts_in_s: float = 0.0,
    comment: str = "",
    author: str = "",
    now: float | None = None,
) -> Silence:
    """A silence of every matcher, from now (+ ``starts_in_s``) for ``duration_s``.

    Raises ValueError naming the first invalid matcher, or the duration.
    """
    texts = list(matchers)
    if not texts:
        raise ValueError("give at least one matcher, e.g. alertname=cpu-high")
    for text in texts:
        parse_matcher(text)
    if duration_s <= 0:
        raise ValueError("the duration must be positive")
    starts_at = (time.time() if now is None else now) + starts_in_s
    return Silence.model_validate({
        "match": texts, "starts_at": starts_at, "ends_at": starts_at + duration_s,
        "reason": comment, "created_by": author,
    })  # fmt: skip


def expired_now(doc: Silence, now: float | None = None) -> Silence:
    """``doc`` ending now (it is kept, expired, until the retention removes it)."""
    at = time.time() if now is None else now
    fields = doc.model_dump(by_alias=True) | {"ends_at": at}
    fields["starts_at"] = min(doc.starts_at, at - 0.001)
    return Silence.model_validate(fields)
