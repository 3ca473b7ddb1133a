"""What an object's SMI syntax means for a profile: a counter, a gauge or text."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal

from kemi_stats.mibs.base_mibs import HCNUM_CONVENTIONS, TEXTUAL_CONVENTIONS

__all__ = ["ValueKind", "value_kind"]

#: counter and gauge become metrics; text labels rows (a lookup); other is neither
ValueKind = Literal["counter", "gauge", "text", "other"]

_BASE: dict[str, ValueKind] = {
    "Counter32": "counter",
    "Counter64": "counter",
    "Counter": "counter",
    "ZeroBasedCounter64": "counter",
    # a gauge carried in Counter64 syntax (RFC 2856)
    "CounterBasedGauge64": "gauge",
    "INTEGER": "gauge",
    "Integer32": "gauge",
    "Gauge32": "gauge",
    "Gauge": "gauge",
    "Unsigned32": "gauge",
    "TimeTicks": "gauge",
    "OCTET STRING": "text",
    "OctetString": "text",
    "IpAddress": "text",
    "NetworkAddress": "text",
    "Opaque": "text",
    "Bits": "other",
    "BITS": "other",
    "OBJECT IDENTIFIER": "other",
    "ObjectIdentifier": "other",
}


def _convention_kind(syntax: str) -> ValueKind:
    head = syntax.split("(", 1)[0].split("{", 1)[0].strip()
    return _BASE.get(head, "other")


for _name, _syntax in {**TEXTUAL_CONVENTIONS, **HCNUM_CONVENTIONS}.items():
    _BASE.setdefault(_name, _convention_kind(_syntax))


def value_kind(
    syntax: Mapping[str, Any],
    module: Mapping[str, Any],
    load: Callable[[str], Mapping[str, Any] | None],
) -> ValueKind:
    """The kind of ``syntax`` (an object's JSON syntax), following textual conventions
    defined in ``module`` or in the modules it imports them from (``load`` reads one)."""
    seen: set[str] = set()
    while True:
        name = str(syntax.get("type", ""))
        if name in _BASE:
            return _BASE[name]
        if name in seen:
            return "other"
        seen.add(name)
        owner = _owner(name, module, load)
        convention = owner.get(name) if owner is not None else None
        if not isinstance(convention, Mapping) or not isinstance(convention.get("type"), Mapping):
            return "other"
        syntax, module = convention["type"], owner  # type: ignore[assignment]


def _owner(
    name: str,
    module: Mapping[str, Any],
    load: Callable[[str], Mapping[str, Any] | None],
) -> Mapping[str, Any] | None:
    # a convention is defined in the module itself or imported by name from another one
    if name in module:
        return module
    imports = module.get("imports", {})
    for other, names in imports.items():
        if isinstance(names, list) and name in names:
            return load(other)
    return None
