"""Object names in a profile document resolved to numeric OIDs through compiled MIBs, when
the profile is written (``profile add/update --mib``): the poller only sees numbers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["resolve_profile_names"]

_NUMERIC = re.compile(r"^\.?\d+(\.\d+)+$")


def _numeric(text: str, by_name: Mapping[str, str]) -> str:
    """``UCD-SNMP-MIB::laLoad`` or ``laLoad.1`` -> its numeric OID; anything else as is
    (the profile model resolves the names it knows, and refuses the rest)."""
    if _NUMERIC.match(text):
        return text
    head, dot, suffix = text.split("::")[-1].partition(".")
    oid = by_name.get(head)
    return oid + dot + suffix if oid else text


def resolve_profile_names(doc: dict[str, Any], by_name: Mapping[str, str]) -> dict[str, Any]:
    """``doc`` (a profile's fields) with every scalar, column and lookup OID that names an
    object of ``by_name`` (name -> numeric OID) replaced by its number."""
    for scalar in doc.get("scalars") or []:
        if isinstance(scalar, dict) and isinstance(scalar.get("oid"), str):
            scalar["oid"] = _numeric(scalar["oid"], by_name)
    for table in doc.get("tables") or []:
        if not isinstance(table, dict):
            continue
        for item in [*(table.get("columns") or []), *(table.get("lookups") or [])]:
            if isinstance(item, dict) and isinstance(item.get("oid"), str):
                item["oid"] = _numeric(item["oid"], by_name)
    return doc
