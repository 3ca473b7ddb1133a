"""A target's status on the targets page."""

from __future__ import annotations

import pytest

from console.fleet import PollResult
from console.pages.targets import status_of
from kemi_stats.registry.models import Target


def _snmp(**kw: object) -> Target:
    return Target.model_validate({"host": "127.0.0.1", "credential": "c", "profiles": ["p"], **kw})


def _scrape(**kw: object) -> Target:
    return Target.model_validate({"scrape_url": "http://127.0.0.1:9100/metrics", **kw})


@pytest.mark.parametrize("make", [_snmp, _scrape])
def test_status_of(make) -> None:  # type: ignore[no-untyped-def]
    target = make()
    assert status_of(target, None) == "unknown"
    assert status_of(target, PollResult(True, 1.0)) == "ok"
    assert status_of(target, PollResult(False, 1.0, "timeout")) == "failing"


@pytest.mark.parametrize("result", [None, PollResult(True, 1.0), PollResult(False, 1.0, "x")])
def test_a_disabled_target_is_disabled_whatever_its_last_result(
    result: PollResult | None,
) -> None:
    assert status_of(_snmp(enabled=False), result) == "disabled"
    assert status_of(_scrape(enabled=False), result) == "disabled"
