"""Grants as the aggregator builds them: from Token and Counters documents."""

from __future__ import annotations

from typing import Any

from aggregator.auth import TokenIndex, token_hash
from aggregator.grant import Grant
from kemi_stats.registry.models import Counters, Token


def make_grant(counter_sets: dict[str, Counters] | None = None, **token: Any) -> Grant:
    """The grant of a token with fields ``token``, with registry counter sets ``counter_sets``."""
    index = TokenIndex()
    index.load({"test": Token(hash=token_hash("s3cret"), **token)}, counter_sets)
    return index.authenticate("Bearer s3cret")
