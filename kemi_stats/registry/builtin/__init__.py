"""Built-in registry documents shipped with kemi-stats.

- SNMP profiles, one YAML document per profile: ``kemi-stats profile import --builtin``
  stores them in the registry; the file name (without ``.yaml``) is the profile name.
- Counter sets (``counters.yaml``): in effect without being stored, unless a registry
  entry of the same name replaces one.

They are validated with the same strict models as registry entries, so a broken file
fails here, not in a service.
"""

from __future__ import annotations

from importlib import resources

import yaml

from kemi_stats.errors import ValidationError
from kemi_stats.registry.models import Counters, Profile
from kemi_stats.registry.store import parse_doc

__all__ = ["BUILTIN_PROFILES", "load_builtin_counters", "load_builtin_profiles"]

#: the built-in profile names, in the order they are listed
BUILTIN_PROFILES = ("system", "if-mib", "host-resources", "ucd-snmp")


def load_builtin_profiles() -> dict[str, Profile]:
    """Every built-in profile by name, validated."""
    root = resources.files(__package__)
    profiles: dict[str, Profile] = {}
    for name in BUILTIN_PROFILES:
        text = root.joinpath(f"{name}.yaml").read_text(encoding="utf-8")
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValidationError(f"built-in profile {name}: not valid YAML: {exc}") from exc
        profiles[name] = parse_doc("profile", name, doc)
    return profiles


def load_builtin_counters() -> dict[str, Counters]:
    """The built-in counter sets by name, validated."""
    text = resources.files(__package__).joinpath("counters.yaml").read_text(encoding="utf-8")
    docs = yaml.safe_load(text)
    return {name: parse_doc("counters", name, doc) for name, doc in docs.items()}
