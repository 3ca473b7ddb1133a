"""Adding and expiring silences (the CLI's and the console's one way)."""

from __future__ import annotations

import re

import pytest

from kemi_stats.registry.models import Silence
from kemi_stats.registry.silencing import expired_now, new_silence, new_silence_id

NOW = 1_700_000_000.0


def test_new_silence_from_now() -> None:
    s = new_silence(
        ["alertname=cpu-high", "site=~pang.*"], 3600, comment="maintenance", author="ops", now=NOW
    )
    assert isinstance(s, Silence)
    assert (s.starts_at, s.ends_at) == (NOW, NOW + 3600)
    assert (s.reason, s.created_by) == ("maintenance", "ops")
    assert [str(m) for m in s.match] == ["alertname=cpu-high", "site=~pang.*"]
    assert s.active(NOW) and not s.active(NOW + 3600)


def test_new_silence_starting_later() -> None:
    s = new_silence(["alertname=x"], 60, starts_in_s=600, now=NOW)
    assert (s.starts_at, s.ends_at) == (NOW + 600, NOW + 660)
    assert not s.active(NOW)
    assert (s.reason, s.created_by) == ("", "")


def test_new_silence_accepts_any_iterable() -> None:
    s = new_silence(iter(["alertname=x"]), 60, now=NOW)
    assert len(s.match) == 1


def test_no_matchers_is_an_error() -> None:
    with pytest.raises(ValueError, match="matcher"):
        new_silence([], 60, now=NOW)


@pytest.mark.parametrize("bad", ["bogus", "site=~pang[", "=x"])
def test_an_invalid_matcher_is_named(bad: str) -> None:
    with pytest.raises(ValueError) as err:
        new_silence(["alertname=x", bad], 60, now=NOW)
    assert repr(bad) in str(err.value)


@pytest.mark.parametrize("duration", [0, -1, -0.001])
def test_a_non_positive_duration_is_an_error(duration: float) -> None:
    with pytest.raises(ValueError, match="duration"):
        new_silence(["alertname=x"], duration, now=NOW)


def test_new_silence_id() -> None:
    ids = {new_silence_id() for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"[0-9a-f]{12}", i) for i in ids)


def test_expired_now_ends_an_active_silence_now() -> None:
    s = new_silence(["alertname=x"], 3600, comment="c", author="a", now=NOW)
    done = expired_now(s, now=NOW + 60)
    assert (done.starts_at, done.ends_at) == (NOW, NOW + 60)
    assert (done.reason, done.created_by, done.match) == ("c", "a", s.match)
    assert not done.active(NOW + 60)
    assert s.ends_at == NOW + 3600  # the original is unchanged


def test_expired_now_of_a_future_silence_keeps_starts_before_ends() -> None:
    s = new_silence(["alertname=x"], 3600, starts_in_s=600, now=NOW)
    done = expired_now(s, now=NOW)
    assert done.ends_at == NOW
    assert done.starts_at < done.ends_at
    assert not done.active(NOW)
