"""A rule whose annotation template cannot be used is refused with the annotation's name."""

from __future__ import annotations

import pytest

from alerting.rules import CompiledRule
from alerting.state import AlertKind
from alerting.templates import TemplateError
from kemi_stats.registry.models import Rule


def _rule(summary: str) -> Rule:
    return Rule.model_validate(
        {
            "metric": "cpu",
            "condition": {"op": ">", "threshold": 90},
            "annotations": {"summary": summary},
        }
    )


def test_an_annotation_too_wide_to_render_is_refused_with_its_name() -> None:
    with pytest.raises(TemplateError) as info:
        CompiledRule.compile("cpu-hot", _rule("{resource} at {value:4000000000}"))
    assert str(info.value) == (
        "annotation 'summary': bad format '4000000000' for {value} in "
        "'{resource} at {value:4000000000}': width 4000000000 is over 1000"
    )


def test_a_bounded_annotation_renders() -> None:
    rule = CompiledRule.compile("cpu-hot", _rule("{resource} at {value:>8.1f}"))
    rendered = rule.render(AlertKind.THRESHOLD, "host:a", 93.45, "firing", {})
    assert rendered["summary"] == "host:a at     93.5"
