"""Profiles generated from vendor MIB files, compiled offline with pysmi."""

from __future__ import annotations

from kemi_stats.mibs.compiler import DEFAULT_MIB_DIRS, MibLibrary
from kemi_stats.mibs.profile_builder import ProfileRequest, build_profile
from kemi_stats.mibs.profile_names import resolve_profile_names
from kemi_stats.mibs.syntax import ValueKind, value_kind

__all__ = [
    "DEFAULT_MIB_DIRS",
    "MibLibrary",
    "ProfileRequest",
    "ValueKind",
    "build_profile",
    "resolve_profile_names",
    "value_kind",
]
