"""Annotation templates: ``{value}``, ``{threshold}``, ``{resource}``, ``{labels.site}``.

Templates are parsed when a rule is loaded (an unknown placeholder, or a width or
precision over :data:`MAX_FORMAT_WIDTH`, makes the rule invalid, reported with its
name); rendering is a join of pre-split parts. Only the fields below exist, so a
template can never reach attributes of Python objects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["FIELDS", "MAX_FORMAT_WIDTH", "Template", "TemplateError"]

#: placeholders a template may use besides ``labels.<name>``
FIELDS = frozenset(
    {"value", "threshold", "op", "resource", "metric", "rule", "severity", "for", "status"}
)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)(?::([^{}]*))?\}")
#: the widest width or precision a format spec may ask for (``{value:>12.3f}``)
MAX_FORMAT_WIDTH = 1000
_SPEC_NUMBER = re.compile(r"(\.?)(\d+)")


class TemplateError(ValueError):
    """A template names an unknown field or has a bad format spec."""


def _over_max_width(digits: str) -> bool:
    number = digits.lstrip("0")
    # compared by length first: int() refuses strings of more than 4300 digits
    return len(number) > len(str(MAX_FORMAT_WIDTH)) or int(number or "0") > MAX_FORMAT_WIDTH


def _check_spec(spec: str, name: str, text: str) -> None:
    """Raise TemplateError if ``spec`` is not a format spec or asks for too wide a value."""
    for m in _SPEC_NUMBER.finditer(spec):
        if _over_max_width(m.group(2)):
            what = "precision" if m.group(1) else "width"
            raise TemplateError(
                f"bad format {spec!r} for {{{name}}} in {text!r}: "
                f"{what} {m.group(2)} is over {MAX_FORMAT_WIDTH}"
            )
    try:
        format(1.5, spec)
    except ValueError as exc:
        raise TemplateError(f"bad format {spec!r} for {{{name}}} in {text!r}: {exc}") from None


@dataclass(frozen=True, slots=True)
class Template:
    """A parsed template: literal text and (field, format spec) parts."""

    parts: tuple[str | tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        parts: list[str | tuple[str, str]] = []
        pos = 0
        for m in _PLACEHOLDER.finditer(text):
            parts.append(text[pos : m.start()])
            name, spec = m.group(1), m.group(2) or ""
            if name not in FIELDS and not (name.startswith("labels.") and len(name) > 7):
                raise TemplateError(
                    f"unknown placeholder {{{name}}} in {text!r} "
                    f"(expected one of {', '.join(sorted(FIELDS))} or labels.<name>)"
                )
            _check_spec(spec, name, text)
            parts.append((name, spec))
            pos = m.end()
        parts.append(text[pos:])
        return cls(tuple(p for p in parts if p != ""))

    def render(self, fields: Mapping[str, object], labels: Mapping[str, str]) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            name, spec = part
            value = labels.get(name[7:], "") if name.startswith("labels.") else fields.get(name, "")
            try:
                out.append(format(value, spec))
            except (ValueError, TypeError):
                out.append(str(value))
        return "".join(out)
