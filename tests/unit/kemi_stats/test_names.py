"""The name rules: one pattern and one limit per sort of name, errors naming field and value."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kemi_stats.errors import ValidationError
from kemi_stats.names import (
    InvalidName,
    check_entry_name,
    check_label_name,
    check_metric_name,
    check_resource_id,
    is_label_name,
    is_metric_name,
    name_limits,
    resource_id_problem,
    to_label_name,
    to_metric_name,
)
from kemi_stats.registry.store import parse_doc


@pytest.fixture
def fresh_limits() -> Iterator[None]:
    """Limits read again from the (monkeypatched) environment, and forgotten afterwards."""
    name_limits.cache_clear()
    yield
    name_limits.cache_clear()


@pytest.mark.parametrize("name", ["cpu", "_x", "ifHCInOctets", "node:cpu.user_pct", "a" * 256])
def test_metric_names_accepted(name: str) -> None:
    assert is_metric_name(name) and check_metric_name(name) == name


@pytest.mark.parametrize("name", ["", "1x", "cpu-user", "cpu user", "cpu\n", "é", "a" * 257])
def test_metric_names_refused(name: str) -> None:
    assert not is_metric_name(name)
    with pytest.raises(InvalidName, match=r"metric name .* is invalid \(expected .*256"):
        check_metric_name(name)


@pytest.mark.parametrize("name", ["site", "_x", "if_name", "a" * 128])
def test_label_names_accepted(name: str) -> None:
    assert is_label_name(name) and check_label_name(name) == name


@pytest.mark.parametrize("name", ["", "9x", "if.name", "if-name", "site\n", "a" * 129])
def test_label_names_refused(name: str) -> None:
    assert not is_label_name(name)
    with pytest.raises(InvalidName, match="label name"):
        check_label_name(name)


@pytest.mark.parametrize("rid", ["host:web-01", "web,01", "net:sw 3", "x" * 256, "서버"])
def test_resource_ids_accepted(rid: str) -> None:
    assert resource_id_problem(rid) is None and check_resource_id(rid) == rid


@pytest.mark.parametrize(
    ("rid", "problem"),
    [
        ("", "is empty"),
        ("x" * 257, "is 257 characters long (at most 256)"),
        ("a\tb", "contains control characters"),
        ("a\x7f", "contains control characters"),
    ],
)
def test_resource_ids_refused(rid: str, problem: str) -> None:
    assert resource_id_problem(rid) == problem
    with pytest.raises(InvalidName, match="resource id") as info:
        check_resource_id(rid)
    assert problem in str(info.value) and info.value.value == rid


def test_a_caller_may_narrow_the_resource_id_limit() -> None:
    assert resource_id_problem("x" * 11, max_length=10) == "is 11 characters long (at most 10)"


@pytest.mark.parametrize("name", ["sw1", "core-sw-3", "1st", "a.b:c_d", "a" * 128])
def test_entry_names_accepted(name: str) -> None:
    assert check_entry_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", "has space", "a/b", "x\n", "a" * 129])
def test_entry_names_refused(name: str) -> None:
    with pytest.raises(InvalidName, match="target name .* at most 128 characters"):
        check_entry_name(name, "target name")


def test_the_error_names_field_value_and_expectation() -> None:
    with pytest.raises(InvalidName) as info:
        check_label_name("if-name", "lookup label")
    err = info.value
    assert str(err).startswith("lookup label 'if-name' is invalid (expected [A-Za-z_]")
    assert (err.field, err.value) == ("lookup label", "if-name")
    # a ValueError for pydantic validators, a ValidationError for the CLI
    assert isinstance(err, ValueError) and isinstance(err, ValidationError)


@pytest.mark.parametrize(
    ("text", "metric", "label"),
    [
        ("cpu_usage", "cpu_usage", "cpu_usage"),
        ("disk.io:read", "disk.io:read", "disk_io_read"),
        ("9lives", "_9lives", "_9lives"),
        ("a b-c/é", "a_b_c__", "a_b_c__"),
    ],
)
def test_foreign_names_are_mapped(text: str, metric: str, label: str) -> None:
    assert to_metric_name(text) == metric and is_metric_name(metric)
    assert to_label_name(text) == label and is_label_name(label)


@pytest.mark.usefixtures("fresh_limits")
def test_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEMI_NAMES_METRIC_MAX_LENGTH", "8")
    monkeypatch.setenv("KEMI_NAMES_RESOURCE_ID_MAX_LENGTH", "4")
    assert is_metric_name("a" * 8) and not is_metric_name("a" * 9)
    assert resource_id_problem("host:a") == "is 6 characters long (at most 4)"
    with pytest.raises(InvalidName, match="at most 8 characters"):
        check_metric_name("a" * 9)


def test_target_resource_id_is_checked() -> None:
    base = {"host": "127.0.0.3", "credential": "lab", "profiles": ["system"]}
    assert parse_doc("target", "sw1", {**base, "resource_id": "net:sw-1"}).resource("sw1") == (
        "net:sw-1"
    )
    with pytest.raises(ValidationError, match="field 'resource_id': resource id 'a\\\\nb'"):
        parse_doc("target", "sw1", {**base, "resource_id": "a\nb"})
    with pytest.raises(ValidationError, match="field 'resource_id'"):
        parse_doc("target", "sw1", {**base, "resource_id": "x" * 257})


def test_registry_models_use_the_rules() -> None:
    with pytest.raises(ValidationError, match="field 'labels': label name 'bad-x'"):
        parse_doc("target", "sw1", {"host": "127.0.0.3", "credential": "lab",
                                    "profiles": ["system"], "labels": {"bad-x": "1"}})  # fmt: skip
    with pytest.raises(ValidationError, match="field 'scalars.0.name': metric name 'a-b'"):
        parse_doc("profile", "p", {"scalars": [{"name": "a-b", "oid": "1.3.6.1.2.1.1.3"}]})
    with pytest.raises(ValidationError, match="field 'metric': metric name"):
        parse_doc("rule", "r", {"metric": "x" * 257, "no_data": "5m"})
