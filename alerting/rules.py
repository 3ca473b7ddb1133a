"""Registry ``rule`` documents compiled once into what the hot path needs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from alerting.state import AlertKind, Timing
from alerting.templates import Template, TemplateError
from kemi_stats.durations import format_duration
from kemi_stats.matching import Selector
from kemi_stats.registry.models import Condition, Rule

__all__ = ["DEFAULT_ANNOTATIONS", "CompiledRule", "compile_condition"]

DEFAULT_ANNOTATIONS: dict[AlertKind, dict[str, str]] = {
    AlertKind.THRESHOLD: {
        "summary": "{rule}: {metric} on {resource} is {value:g} ({op} {threshold:g})",
    },
    AlertKind.NO_DATA: {
        "summary": "{rule}: no {metric} from {resource} for {for}",
    },
}

_OPS: dict[str, Callable[[float], Callable[[float], bool]]] = {
    ">": lambda t: lambda v: v > t,
    ">=": lambda t: lambda v: v >= t,
    "<": lambda t: lambda v: v < t,
    "<=": lambda t: lambda v: v <= t,
    "==": lambda t: lambda v: v == t,
    "!=": lambda t: lambda v: v != t,
}


def compile_condition(c: Condition | None) -> Callable[[float], bool] | None:
    """A plain closure for ``value <op> threshold`` (cheaper per sample than a match)."""
    return None if c is None else _OPS[c.op](c.threshold)


def _annotation(key: str, text: str) -> Template:
    try:
        return Template.parse(text)
    except TemplateError as exc:
        raise TemplateError(f"annotation {key!r}: {exc}") from None


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    """A rule resolved for evaluation: selector, timing, parsed annotation templates."""

    name: str
    rule: Rule
    selector: Selector
    timing: Timing
    annotations: dict[AlertKind, dict[str, Template]] = field(default_factory=dict)
    revision: int = 0

    @classmethod
    def compile(cls, name: str, rule: Rule, revision: int = 0) -> CompiledRule:
        """Compile ``rule``; raise TemplateError (a ValueError) for a bad annotation template."""
        timing = Timing(
            fire=compile_condition(rule.condition),
            clear=compile_condition(rule.effective_clear),
            for_ms=_ms(rule.for_),
            clear_for_ms=_ms(rule.clear_for),
            no_data_ms=_ms(rule.no_data) if rule.no_data is not None else None,
            repeat_ms=max(1000, _ms(rule.repeat_interval)),
        )
        annotations: dict[AlertKind, dict[str, Template]] = {}
        for kind, defaults in DEFAULT_ANNOTATIONS.items():
            texts = {**defaults, **rule.annotations}
            annotations[kind] = {k: _annotation(k, v) for k, v in texts.items()}
        selector = Selector.build(rule.match, rule.resource_prefix)
        return cls(name, rule, selector, timing, annotations, revision)

    def fields(
        self, kind: AlertKind, resource: str, value: float, status: str
    ) -> dict[str, object]:
        """The values annotation templates can use."""
        cond = self.rule.condition
        if kind is AlertKind.NO_DATA:
            window = format_duration(self.rule.no_data or 0.0)
        else:
            window = format_duration(self.rule.for_)
        return {
            "value": value,
            "threshold": cond.threshold if cond else 0.0,
            "op": cond.op if cond else "",
            "resource": resource,
            "metric": self.rule.metric,
            "rule": self.name,
            "severity": self.rule.severity,
            "for": window,
            "status": status,
        }

    def render(
        self, kind: AlertKind, resource: str, value: float, status: str, labels: Mapping[str, str]
    ) -> dict[str, str]:
        fields = self.fields(kind, resource, value, status)
        return {k: t.render(fields, labels) for k, t in self.annotations[kind].items()}
