"""Annotation templates: ``{value}``, ``{threshold}``, ``{resource}``, ``{labels.site}``.

Templates are parsed when a rule is loaded (an unknown placeholder makes the rule
invalid, reported with its name); rendering is a join of pre-split parts. Only the
fields below exist, so a template can never reach attributes of Python objects.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["FIELDS", "Template", "TemplateError"]

#: placeholders a template may use besides ``labels.<name>``
FIELDS = frozenset(
    {"value", "threshold", "op", "resource", "metric", "rule", "severity", "for", "status"}
)
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)(?::([^{}]*))?\}")


class TemplateError(ValueError):
    """A template names an unknown field or has a bad format spec."""


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
            try:
                format(1.5, spec)
            except ValueError as exc:
                raise TemplateError(
                    f"bad format {spec!r} for {{{name}}} in {text!r}: {exc}"
                ) from None
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
