"""Registry documents held by the thousand: the parts targets share, stored once.

A service's live view holds every target (100,000 in a large fleet: the poller's
scheduler and each worker). A validated :class:`~kemi_stats.registry.models.Target` costs
about 2 KB, most of it in what every target repeats: pydantic's set of the fields the
document gave (about 730 bytes, the same set for most targets), and copies of the same
profile names, credential, label names and values, and durations. :func:`compact`
makes equal parts one object:

* the set of given fields is shared by the documents that gave the same fields. Nothing
  in kemi reads it (no ``exclude_unset``), and a document of a view is never assigned to;
  an assignment would add its field to the set of every document sharing it, which
  changes only what ``model_fields_set`` says of them;
* strings and numbers of the fields a model names in ``shared_fields`` are interned, and
  equal lists and dicts there (profiles, labels) are one object.

A view's documents are read, never changed in place (nothing in kemi assigns to them or
changes their labels or profiles): a change would show in every document sharing the
part changed.

Applied to what a live view holds (the CLI streams and keeps nothing). Measured on 20,000 targets (``tests/unit/kemi_stats/test_registry_compact.py``): from
about 2,030 to under 1,000 bytes per target.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic import BaseModel

__all__ = ["compact"]

_FIELD_SETS: dict[frozenset[str], set[str]] = {}
_NUMBERS: dict[float, float] = {}
#: equal lists and dicts of string values (profiles, labels), one object each
_CONTAINERS: dict[tuple[Any, ...], Any] = {}
_MAX_CONTAINERS = 65536


def _shared(value: Any) -> Any:
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, float):
        if len(_NUMBERS) < 4096:
            return _NUMBERS.setdefault(value, value)
        return _NUMBERS.get(value, value)
    if isinstance(value, list | dict):
        key = (type(value), *(value.items() if isinstance(value, dict) else value))
        try:
            held = _CONTAINERS.get(key)
        except TypeError:  # something unhashable inside: not shared
            return value
        if held is None:
            held = (
                {_shared(k): _shared(v) for k, v in value.items()}
                if isinstance(value, dict)
                else [_shared(v) for v in value]
            )
            if len(_CONTAINERS) < _MAX_CONTAINERS:
                _CONTAINERS[key] = held
        return held
    return value


def compact(doc: Any) -> Any:
    """``doc`` with its repeated parts shared (in place); anything not a model as it is."""
    if not isinstance(doc, BaseModel):
        return doc
    key = frozenset(doc.__pydantic_fields_set__)
    shared = _FIELD_SETS.get(key)
    if shared is None and len(_FIELD_SETS) < 1024:
        # a copy: no document's own set is the shared one
        shared = _FIELD_SETS[key] = set(key)
    if shared is not None:
        object.__setattr__(doc, "__pydantic_fields_set__", shared)
    values = doc.__dict__
    for name in getattr(doc, "shared_fields", ()):
        value = values.get(name)
        if value is not None:
            values[name] = _shared(value)
    return doc
