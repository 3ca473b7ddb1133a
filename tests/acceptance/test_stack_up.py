"""The local stack comes up healthy, fast, and goes away completely."""

from __future__ import annotations

import pytest

from kemi_stats.catalogue import available_services
from tests.acceptance.conftest import Stack

pytestmark = pytest.mark.acceptance


def test_every_component_is_healthy_in_under_30s(stack: Stack) -> None:
    assert stack.up_seconds < 30, f"up took {stack.up_seconds:.1f} s"
    status = stack.status()
    names = {c["name"]: c["status"] for c in status["components"]}
    expected = {"broker", "etcd", "victoriametrics"} | {s.name for s in available_services()}
    assert expected <= names.keys()
    assert all(names[n] == "up" for n in expected), names
    assert {"kemi.poll-jobs", "kemi.metrics.raw", "kemi.metrics", "kemi.alerts"} <= set(
        status["topics"]
    )
