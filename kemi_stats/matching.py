"""Label matchers compiled once (regexes anchored, like Prometheus) and applied to label sets.

One meaning of a matcher everywhere: rules, silences, ``silence query`` and the console.

A label that is absent counts as the empty string, so ``site!=pangyo`` matches a
series without ``site`` and ``site=`` matches only such series.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from kemi_stats.registry.models import Matcher

__all__ = ["Selector", "compile_matcher"]

LabelTest = Callable[[Mapping[str, str]], bool]


def compile_matcher(m: Matcher) -> LabelTest:
    """A predicate over a label set for one matcher."""
    label, value = m.label, m.value
    if m.op == "=":
        return lambda labels: labels.get(label, "") == value
    if m.op == "!=":
        return lambda labels: labels.get(label, "") != value
    pattern = re.compile(value)
    if m.op == "=~":
        return lambda labels: pattern.fullmatch(labels.get(label, "")) is not None
    return lambda labels: pattern.fullmatch(labels.get(label, "")) is None


@dataclass(frozen=True, slots=True)
class Selector:
    """All matchers (AND) plus an optional resource-id prefix."""

    tests: tuple[LabelTest, ...]
    resource_prefix: str = ""

    @classmethod
    def build(cls, matchers: Iterable[Matcher], resource_prefix: str = "") -> Selector:
        return cls(tuple(compile_matcher(m) for m in matchers), resource_prefix)

    def matches(self, resource_id: str, labels: Mapping[str, str]) -> bool:
        """Whether a series (whose ``labels`` include ``resource``) is selected."""
        if self.resource_prefix and not resource_id.startswith(self.resource_prefix):
            return False
        return all(t(labels) for t in self.tests)
