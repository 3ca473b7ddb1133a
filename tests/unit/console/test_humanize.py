"""Durations for people."""

from __future__ import annotations

import pytest

from console.humanize import about


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.4, "0s"),
        (59, "59s"),
        (60, "1m"),
        (61, "1m 1s"),
        (3599, "59m 59s"),
        (3725, "1h 2m"),
        (86400, "1d"),
        (90061, "1d 1h"),
        (-5, "0s"),
    ],
)
def test_about(seconds: float, text: str) -> None:
    assert about(seconds) == text
