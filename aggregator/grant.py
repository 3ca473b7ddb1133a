"""What an authenticated push may do, and how its points get their resource ids.

A :class:`Grant` is one token's view: its name, resource prefix (403 outside it),
rate limit, resource template (how tags become a resource id) and counter kinds.
Parsers raise :class:`ResourceError`; each turns it into a refusal naming its own
place (line number, JSON path).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aggregator.counters import CounterKinds
from kemi_stats.names import resource_id_problem
from kemi_stats.resource_template import MissingTags, ResourceTemplate

__all__ = ["Grant", "ResourceError"]


class ResourceError(Exception):
    """A point's resource id cannot be built (400) or is outside the token's prefix (403)."""

    def __init__(self, status: int, what: str, value: str, expected: str) -> None:
        super().__init__(what)
        self.status = status
        self.what = what
        self.value = value
        self.expected = expected


@dataclass(frozen=True, slots=True)
class Grant:
    """One token's rights and naming rules."""

    name: str
    resource_prefix: str
    rate_limit: float
    template: ResourceTemplate
    counters: CounterKinds

    def resource_from_tags(self, tags: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
        """The resource id the template builds from ``tags``, and the tags it used."""
        try:
            resource, used = self.template.render(tags)
        except MissingTags as exc:
            raise ResourceError(
                400,
                f"{exc} to name the resource (token {self.name}'s resource template is "
                f"{self.template.text!r})",
                self.template.text,
                f"a tag {exc.placeholder.describe()}",
            ) from None
        problem = resource_id_problem(resource)
        if problem:
            raise ResourceError(
                400,
                f"resource id {problem} (built by template {self.template.text!r})",
                resource,
                "a resource id",
            )
        if self.resource_prefix and not resource.startswith(self.resource_prefix):
            suggestion = self.resource_prefix + "{" + ",".join(self._used_spec(used)) + "}"
            if len(used) != 1:
                suggestion = self.resource_prefix + self.template.text
            raise ResourceError(
                403,
                f"token {self.name} may only write resources starting with "
                f"{self.resource_prefix!r}; {resource!r}, built from tag "
                f"{', '.join(used)} by template {self.template.text!r}, does not. "
                f"To name them under the prefix: kemi-stats token update {self.name} "
                f"--resource-template '{suggestion}'",
                resource,
                f"a resource id starting with {self.resource_prefix!r}",
            )
        return resource, used

    def check_resource(self, resource: str) -> None:
        """A 403 :class:`ResourceError` for an explicit id outside the token's prefix."""
        if self.resource_prefix and not resource.startswith(self.resource_prefix):
            raise ResourceError(
                403,
                f"token {self.name} may only write resources starting with "
                f"{self.resource_prefix!r}; {resource!r} does not",
                resource,
                f"a resource id starting with {self.resource_prefix!r}",
            )

    def _used_spec(self, used: tuple[str, ...]) -> list[str]:
        """The placeholder text of each used tag, keeping its ``|noport``."""
        out = []
        for placeholder, tag in zip(self.template.placeholders, used, strict=True):
            noport = dict(placeholder.alternatives).get(tag, False)
            out.append(f"{tag}|noport" if noport else tag)
        return out
