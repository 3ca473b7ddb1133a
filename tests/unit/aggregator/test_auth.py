"""Tokens: a push before the tokens were read is retried later, never told its token is unknown."""

from __future__ import annotations

import pytest

from aggregator.auth import TokenIndex, token_hash
from aggregator.rejection import Rejection
from kemi_stats.registry.models import Token


def test_before_the_tokens_are_read_a_push_is_503_with_retry_after() -> None:
    index = TokenIndex()
    with pytest.raises(Rejection) as info:
        index.authenticate("Bearer s3cret")
    assert info.value.status == 503 and info.value.retry_after == 1
    assert "nothing was written" in info.value.message


def test_once_read_a_known_token_is_granted_and_an_unknown_one_is_401() -> None:
    index = TokenIndex()
    index.load({"ops": Token(hash=token_hash("s3cret"), resource_prefix="host:")})
    assert index.authenticate("Bearer s3cret").resource_prefix == "host:"
    with pytest.raises(Rejection) as info:
        index.authenticate("Bearer wrong")
    assert info.value.status == 401
