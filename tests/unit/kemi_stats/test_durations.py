from __future__ import annotations

import pytest

from kemi_stats.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("60s", 60), ("5m", 300), ("2h", 7200), ("1h30m", 5400), ("90", 90), ("500ms", 0.5), (15, 15)],
)
def test_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5x", "", "m5", "-3", "1m 2s"])
def test_bad_durations_name_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="duration|negative"):
        parse_duration(text)


def test_format_is_shortest_exact() -> None:
    assert [format_duration(s) for s in (0, 90, 300, 7200, 86400)] == [
        "0s",
        "90s",
        "5m",
        "2h",
        "1d",
    ]
