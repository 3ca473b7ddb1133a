"""Resource templates: how the resource id of a pushed point is built from its tags.

A push token carries a template (``kemi-stats token create NAME --resource-template``)::

    host:{host}                        "host:" + the value of tag host
    {host,instance|noport,host.name}   the first of these tags the point has
                                       (the default: Telegraf's host, Prometheus'
                                       instance without its port, OTLP's host.name)
    net:{site}/{device}                several placeholders, literal text between

- ``{a,b,c}`` takes the first of the named tags the point carries; names may be
  dotted (``host.name``, as OpenTelemetry resource attributes are).
- ``{name|noport}`` drops a trailing ``:port`` (``web-01:9100`` -> ``web-01``,
  ``[::1]:9100`` -> ``::1``); the filter applies to the alternative it follows.
- Text outside braces is copied as is.

Tags a template used name the resource; they do not also become labels.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DEFAULT_RESOURCE_TEMPLATE", "MissingTags", "Placeholder", "ResourceTemplate"]

#: the template of a token that names none
DEFAULT_RESOURCE_TEMPLATE = "{host,instance|noport,host.name}"

_TAG_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_FILTERS = frozenset({"noport"})
_PORT = re.compile(r":[0-9]{1,5}$")


class MissingTags(ValueError):
    """A point has none of the tags one placeholder of the template needs."""

    def __init__(self, placeholder: Placeholder) -> None:
        super().__init__(f"no tag {placeholder.describe()}")
        self.placeholder = placeholder


def strip_port(value: str) -> str:
    """``host:9100`` -> ``host``; ``[::1]:9100`` -> ``::1``; a bare IPv6 address is kept."""
    if value.startswith("["):
        end = value.find("]")
        if end > 0 and (end == len(value) - 1 or _PORT.fullmatch(value, end + 1)):
            return value[1:end]
        return value
    if value.count(":") == 1 and _PORT.search(value):
        return value[: value.rindex(":")]
    return value


@dataclass(frozen=True, slots=True)
class Placeholder:
    """One ``{...}``: tag names tried in order, each with or without ``|noport``."""

    alternatives: tuple[tuple[str, bool], ...]

    def describe(self) -> str:
        names = [name for name, _ in self.alternatives]
        if len(names) == 1:
            return repr(names[0])
        return ", ".join(repr(n) for n in names[:-1]) + f" or {names[-1]!r}"

    def resolve(self, tags: Mapping[str, str]) -> tuple[str, str] | None:
        """(value, tag used) of the first alternative the point has, else None."""
        for name, noport in self.alternatives:
            value = tags.get(name)
            if value:
                return (strip_port(value) if noport else value), name
        return None


@dataclass(frozen=True, slots=True)
class ResourceTemplate:
    """A parsed template; :meth:`parse` is cached, so equal texts share one object."""

    text: str
    parts: tuple[str | Placeholder, ...]

    @staticmethod
    @functools.lru_cache(maxsize=1024)
    def parse(text: str) -> ResourceTemplate:
        """Parse ``text``; a ValueError says what is wrong and where."""
        parts: list[str | Placeholder] = []
        i = 0
        while i < len(text):
            open_at = text.find("{", i)
            close_at = text.find("}", i)
            if close_at != -1 and (open_at == -1 or close_at < open_at):
                raise ValueError(f"resource template {text!r}: '}}' at {close_at} has no '{{'")
            if open_at == -1:
                parts.append(text[i:])
                break
            if open_at > i:
                parts.append(text[i:open_at])
            if close_at == -1:
                raise ValueError(f"resource template {text!r}: '{{' at {open_at} is not closed")
            parts.append(_placeholder(text, text[open_at + 1 : close_at]))
            i = close_at + 1
        if not any(isinstance(p, Placeholder) for p in parts):
            raise ValueError(
                f"resource template {text!r} has no placeholder such as {{host}}; "
                "every point would get the same resource id"
            )
        return ResourceTemplate(text, tuple(parts))

    @property
    def placeholders(self) -> tuple[Placeholder, ...]:
        return tuple(p for p in self.parts if isinstance(p, Placeholder))

    def render(self, tags: Mapping[str, str]) -> tuple[str, tuple[str, ...]]:
        """The resource id and the tags used; :class:`MissingTags` if a placeholder has none."""
        out: list[str] = []
        used: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            hit = part.resolve(tags)
            if hit is None:
                raise MissingTags(part)
            out.append(hit[0])
            used.append(hit[1])
        return "".join(out), tuple(used)


def _placeholder(text: str, inner: str) -> Placeholder:
    alternatives: list[tuple[str, bool]] = []
    for raw in inner.split(","):
        name, bar, flt = raw.strip().partition("|")
        name, flt = name.strip(), flt.strip()
        if not _TAG_NAME.fullmatch(name):
            raise ValueError(
                f"resource template {text!r}: {{{inner}}}: {name!r} is not a tag name "
                "(letters, digits, _ . -)"
            )
        if bar and flt not in _FILTERS:
            raise ValueError(
                f"resource template {text!r}: {{{inner}}}: filter {flt!r} is not known "
                f"(known: {', '.join(sorted(_FILTERS))})"
            )
        alternatives.append((name, bool(bar)))
    return Placeholder(tuple(alternatives))
