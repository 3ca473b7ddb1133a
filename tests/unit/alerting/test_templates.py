from __future__ import annotations

import pytest

from alerting.templates import Template, TemplateError


def test_renders_fields_labels_and_format_specs() -> None:
    t = Template.parse("{resource} at {value:.1f} over {threshold:g} in {labels.site}{labels.none}")
    out = t.render({"resource": "host:a", "value": 93.456, "threshold": 90.0}, {"site": "pangyo"})
    assert out == "host:a at 93.5 over 90 in pangyo"


@pytest.mark.parametrize("text", ["{value.__class__}", "{nope}", "{value:zz}"])
def test_rejects_unknown_fields_and_bad_specs(text: str) -> None:
    with pytest.raises(TemplateError):
        Template.parse(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{value:4000000000}", "width 4000000000 is over 1000"),
        ("{value:.4000000000f}", "precision 4000000000 is over 1000"),
        ("{labels.site:>1001}", "width 1001 is over 1000"),
        ("{value:" + "9" * 5000 + "}", "width 9+ is over 1000"),
    ],
)
def test_widths_and_precisions_are_bounded(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        Template.parse(text)


def test_widths_up_to_the_bound_render() -> None:
    out = Template.parse("{value:>1000.3f}|{value:01000}").render({"value": 1.5}, {})
    assert out == " " * 995 + "1.500|" + "0" * 997 + "1.5"
