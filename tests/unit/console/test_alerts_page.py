"""The alerts page's pure helpers: filtering and grouping."""

from __future__ import annotations

from typing import Any

from console.pages.alerts import _filter, _groups

NOW_MS = 1_000_000


def _alert(
    rule: str,
    resource: str,
    *,
    severity: str = "warning",
    status: str = "firing",
    since_ms: int = 1000,
    silenced: bool = False,
    **labels: str,
) -> dict[str, Any]:
    return {
        "rule": rule,
        "severity": severity,
        "resource": resource,
        "metric": "snmp_up",
        "value": 0.0,
        "labels": {"alertname": rule, "severity": severity, "resource": resource, **labels},
        "silenced": silenced,
        "fingerprint": f"{rule}/{resource}",
        "kind": "threshold",
        "status": status,
        "since_ms": since_ms,
        "condition": "< 1",
    }


ALERTS = [
    _alert("device-down", "net:sw-dead", site="pangyo"),
    _alert("device-down", "net:sw-2", site="seoul"),
    _alert("device-down", "net:rt-1", site="pangyo"),
    _alert("cpu-high", "net:sw-3", severity="critical", site="pangyo"),
    _alert("disk-full", "srv:db-1", severity="info", site="pangyo"),
]


def _ids(alerts: list[dict[str, Any]]) -> list[str]:
    return [a["resource"] for a in alerts]


def test_no_filter_keeps_everything() -> None:
    assert _filter(ALERTS, "", "") == (ALERTS, "")
    assert _filter(ALERTS, "", " , ") == (ALERTS, "")


def test_severity_filter() -> None:
    shown, error = _filter(ALERTS, "critical", "")
    assert error == "" and _ids(shown) == ["net:sw-3"]
    assert _filter(ALERTS, "nonesuch", "") == ([], "")


def test_matchers_are_anded_space_or_comma_separated() -> None:
    for match in ("site=pangyo resource=~net:sw-.*", "site=pangyo,resource=~net:sw-.*",
                  " site=pangyo ,  resource=~net:sw-.* "):  # fmt: skip
        shown, error = _filter(ALERTS, "", match)
        assert error == ""
        assert _ids(shown) == ["net:sw-dead", "net:sw-3"]


def test_matchers_and_severity_together() -> None:
    shown, error = _filter(ALERTS, "warning", "site=pangyo resource=~net:sw-.*")
    assert (error, _ids(shown)) == ("", ["net:sw-dead"])


def test_negative_matchers() -> None:
    shown, _ = _filter(ALERTS, "", "site!=pangyo")
    assert _ids(shown) == ["net:sw-2"]
    shown, _ = _filter(ALERTS, "", "resource!~net:.*")
    assert _ids(shown) == ["srv:db-1"]


def test_an_invalid_matcher_returns_the_unfiltered_list_and_an_error() -> None:
    shown, error = _filter(ALERTS, "", "site=pangyo bogus")
    assert shown == ALERTS
    assert "bogus" in error
    shown, error = _filter(ALERTS, "", "resource=~net:sw-[")
    assert shown == ALERTS
    assert "regular expression" in error
    # the severity filter still applies
    shown, error = _filter(ALERTS, "critical", "bogus")
    assert _ids(shown) == ["net:sw-3"] and error


def test_groups_by_rule_ordered_by_severity_then_firing_count() -> None:
    alerts = [
        _alert("b-warn-one", "r:1"),
        _alert("info-rule", "r:2", severity="info"),
        _alert("a-warn-two", "r:3"),
        _alert("a-warn-two", "r:4"),
        _alert("crit", "r:5", severity="critical", status="pending"),
        _alert("a-warn-one", "r:6"),
        _alert("unknown-sev", "r:7", severity="page"),
    ]
    groups = _groups(alerts, NOW_MS)
    assert [g["rule"] for g in groups] == [
        "crit",
        "a-warn-two",
        "a-warn-one",
        "b-warn-one",
        "info-rule",
        "unknown-sev",
    ]
    assert [g["severity"] for g in groups[:2]] == ["critical", "warning"]


def test_firing_before_pending_and_counts() -> None:
    alerts = [
        _alert("device-down", "r:p1", status="pending", since_ms=100),
        _alert("device-down", "r:f2", since_ms=5000, silenced=True),
        _alert("device-down", "r:f1", since_ms=2000),
        _alert("device-down", "r:p2", status="pending", since_ms=50, silenced=True),
    ]
    (group,) = _groups(alerts, NOW_MS)
    assert [a["resource"] for a in group["alerts"]] == ["r:f1", "r:f2", "r:p2", "r:p1"]
    assert (group["firing"], group["pending"], group["silenced"]) == (2, 2, 2)
    assert group["alerts"][0]["ago"] == "16m 38s"  # (1_000_000 - 2000) ms
    # the input alerts are not changed
    assert "ago" not in alerts[0]


def test_no_alerts_no_groups() -> None:
    assert _groups([], NOW_MS) == []
