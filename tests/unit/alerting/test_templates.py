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
