"""Object names in a profile resolved to numeric OIDs at write time."""

from __future__ import annotations

from kemi_stats.mibs import resolve_profile_names

BY_NAME = {"laLoad": "1.3.6.1.4.1.2021.10.1.3", "memTotalReal": "1.3.6.1.4.1.2021.4.5"}


def test_names_module_prefixes_and_instances_become_numbers() -> None:
    doc = {
        "scalars": [
            {"name": "m", "oid": "UCD-SNMP-MIB::memTotalReal.0"},
            {"name": "u", "oid": "1.3.6.1.2.1.1.3"},
            {"name": "x", "oid": "sysUpTime"},  # not in these MIBs: left for the model
        ],
        "tables": [{"name": "t", "columns": [{"name": "l", "oid": "laLoad"}], "lookups": []}],
    }
    out = resolve_profile_names(doc, BY_NAME)
    assert [s["oid"] for s in out["scalars"]] == [
        "1.3.6.1.4.1.2021.4.5.0", "1.3.6.1.2.1.1.3", "sysUpTime"]  # fmt: skip
    assert out["tables"][0]["columns"][0]["oid"] == "1.3.6.1.4.1.2021.10.1.3"
