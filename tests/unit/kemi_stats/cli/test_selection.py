"""Which registry entries ``--match``, ``--label`` and the per-kind filters select, and
what ``--set`` changes."""

from __future__ import annotations

import click
import pytest

from kemi_stats.cli.selection import EntryFilter, apply_sets, entry_labels
from kemi_stats.registry.models import Credential, Rule, Target
from kemi_stats.registry.store import Entry


def _target(name: str, **fields: object) -> Entry:
    doc = Target(**{"host": "127.0.0.1", "credential": "lab", "profiles": ["if-mib"], **fields})
    return Entry("target", name, doc)


def test_labels_are_name_fields_and_target_labels() -> None:
    labels = entry_labels(_target("sw-1", labels={"site": "pangyo", "host": "label-wins"}))
    assert labels["name"] == "sw-1"
    assert labels["site"] == "pangyo"
    assert labels["host"] == "label-wins"  # a target's own label before a field
    # as show prints them: a duration as written, a boolean in lower case
    assert labels["enabled"] == "true" and labels["interval"] == "1m"
    assert "profiles" not in labels  # lists are not labels


def test_urls_are_never_matchable() -> None:
    entry = _target("s", scrape_url="http://127.0.0.1:9100/metrics?token=T0KEN",
                    credential=None, profiles=[])  # fmt: skip
    assert not any("url" in k for k in entry_labels(entry))


def test_secret_fields_are_never_matchable() -> None:
    entry = Entry("credential", "c", Credential(version="2c", community="s3cret"))
    assert "community" not in entry_labels(entry)
    assert not EntryFilter.from_options(("community=s3cret",)).matches(entry)


@pytest.mark.parametrize(
    ("matchers", "labels", "selected"),
    [
        (("site=pangyo",), (), {"a"}),
        (("site!=pangyo",), (), {"b", "c"}),  # absent counts as empty, as in rules
        (("site=~pan.*|seo.*",), (), {"a", "b"}),
        (("name!~[ab]",), (), {"c"}),
        ((), ("site=seoul",), {"b"}),
        (("rack=r1",), ("site=pangyo",), {"a"}),
        (("site=",), (), {"c"}),
        ((), ("site=~pan.*",), set()),  # --label is literal, not a regex
        (("interval=1m",), (), {"a", "b", "c"}),
    ],
)
def test_matchers_and_labels_are_anded(
    matchers: tuple[str, ...], labels: tuple[str, ...], selected: set[str]
) -> None:
    entries = [
        _target("a", labels={"site": "pangyo", "rack": "r1"}),
        _target("b", labels={"site": "seoul", "rack": "r1"}),
        _target("c"),
    ]
    chosen = EntryFilter.from_options(matchers, labels)
    assert {e.name for e in entries if chosen.matches(e)} == selected


def test_target_filters() -> None:
    entries = [
        _target("a", profiles=["if-mib", "system"]),
        _target("b", credential="core", enabled=False),
        _target("c"),
    ]

    def names(**kw: object) -> set[str]:
        chosen = EntryFilter.from_options(**kw)  # type: ignore[arg-type]
        return {e.name for e in entries if chosen.matches(e)}

    assert names(profile="system") == {"a"}
    assert names(credential="core") == {"b"}
    assert names(enabled=False) == {"b"}
    assert names(enabled=True, credential="lab") == {"a", "c"}
    assert not EntryFilter.from_options().active
    assert EntryFilter.from_options(profile="x").text == "profile=x"


def test_filters_apply_to_every_kind() -> None:
    rule = Entry("rule", "cpu", Rule(metric="cpu", condition={"op": ">", "threshold": 90},
                                     severity="critical"))  # fmt: skip
    assert EntryFilter.from_options(("severity=critical", "metric=cpu")).matches(rule)
    assert not EntryFilter.from_options(("severity=warning",)).matches(rule)


def test_set_gives_text_the_model_converts_and_one_label() -> None:
    raw = {"host": "h", "labels": {"site": "pangyo"}, "resource_id": "x"}
    out = apply_sets("target", raw, ("interval=30s", "enabled=false", "retries=3",
                                     "labels.tier=core", "profiles=[a, b]", "resource_id="))  # fmt: skip
    assert out == {"host": "h", "interval": "30s", "enabled": "false", "retries": "3",
                   "labels": {"site": "pangyo", "tier": "core"}, "profiles": ["a", "b"]}  # fmt: skip
    # a string field keeps digits as text
    assert apply_sets("credential", {}, ("community=123456",)) == {"community": "123456"}


def test_set_names_an_unknown_field() -> None:
    with pytest.raises(click.BadParameter, match="target has no field 'colour'"):
        apply_sets("target", {}, ("colour=red",))
    with pytest.raises(click.BadParameter, match="not key=value"):
        apply_sets("target", {}, ("interval",))
    with pytest.raises(click.BadParameter, match="field 'interval' is not a mapping"):
        apply_sets("target", {"interval": "1m"}, ("interval.x=1",))
