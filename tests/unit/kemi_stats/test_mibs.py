"""Profiles generated from MIB files compiled offline: Debian's UCD-SNMP-MIB and a test MIB."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kemi_stats.errors import NotFoundError, ValidationError
from kemi_stats.mibs import DEFAULT_MIB_DIRS, MibLibrary, ProfileRequest, build_profile
from kemi_stats.registry.models import Profile

TEST_MIBS = Path(__file__).parents[2] / "data" / "mibs"


def _generate(
    library: MibLibrary, mibs: list[str], **request: Any
) -> tuple[dict[str, Any], list[str]]:
    modules = {m: library.module(m) for m in mibs}
    return build_profile(modules, ProfileRequest(**request), library.load, library.searched())


@pytest.fixture
def library(tmp_path: Path) -> MibLibrary:
    return MibLibrary([TEST_MIBS, *DEFAULT_MIB_DIRS], tmp_path / "cache")


def test_la_table_with_a_lookup(library: MibLibrary) -> None:
    doc, notes = _generate(
        library, ["UCD-SNMP-MIB"], tables=["laTable"], columns=["laLoad"], lookups=["laNames"]
    )
    assert doc["tables"] == [
        {
            "name": "laTable",
            "index_label": "laIndex",
            "lookups": [{"label": "laNames", "oid": "1.3.6.1.4.1.2021.10.1.2"}],
            "columns": [{"name": "laLoad", "oid": "1.3.6.1.4.1.2021.10.1.3", "type": "gauge"}],
        }
    ]
    assert notes == ["laLoad is text: polled as a gauge where the agent's text is a number"]
    Profile.model_validate(doc)
    # compiled into the cache, not next to the MIB
    assert (library.cache_dir / "UCD-SNMP-MIB.json").is_file()


def test_dsk_table_defaults_to_its_numeric_columns_in_table_order(library: MibLibrary) -> None:
    doc, _ = _generate(library, ["UCD-SNMP-MIB"], tables=["dskTable"], scalars=["ssCpuRawUser"])
    (table,) = doc["tables"]
    names = [c["name"] for c in table["columns"]]
    assert names[:3] == ["dskMinimum", "dskMinPercent", "dskTotal"]
    assert "dskPath" not in names and "dskIndex" not in names
    assert doc["scalars"] == [
        {"name": "ssCpuRawUser", "oid": "1.3.6.1.4.1.2021.11.50", "type": "counter"}
    ]
    Profile.model_validate(doc)


@pytest.mark.parametrize(
    ("mib", "request_", "error", "words"),
    [
        ("NO-SUCH-MIB", {"tables": ["laTable"]}, NotFoundError, ["NO-SUCH-MIB", str(TEST_MIBS)]),
        ("UCD-SNMP-MIB", {"tables": ["noTable"]}, NotFoundError, ["noTable", "UCD-SNMP-MIB"]),
        (
            "UCD-SNMP-MIB",
            {"tables": ["laTable"], "columns": ["noColumn"]},
            NotFoundError,
            ["noColumn", "/usr/share/snmp/mibs"],
        ),
        (
            "UCD-SNMP-MIB",
            {"tables": ["laTable"], "columns": ["dskTotal"]},
            ValidationError,
            ["dskTotal", "laTable"],
        ),
        ("UCD-SNMP-MIB", {"tables": ["memTotalReal"]}, ValidationError, ["not a table"]),
        ("UCD-SNMP-MIB", {"scalars": ["laLoad"]}, ValidationError, ["not a scalar"]),
    ],
)
def test_errors_name_the_mib_table_column_and_dirs(
    library: MibLibrary,
    mib: str,
    request_: dict[str, Any],
    error: type[Exception],
    words: list[str],
) -> None:
    with pytest.raises(error) as exc:
        _generate(library, [mib], **request_)
    message = str(exc.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_a_mib_dir_with_a_mib_importing_the_base_modules(tmp_path: Path) -> None:
    # only the test directory: SNMPv2-SMI and SNMPv2-TC come from the bundled base modules
    library = MibLibrary([TEST_MIBS], tmp_path)
    doc, notes = _generate(
        library,
        ["KEMI-TEST-MIB"],
        tables=["kemiPortTable"],
        lookups=["kemiPortName"],
        scalars=["kemiUptime"],
    )
    assert notes == []
    assert doc["scalars"] == [{"name": "kemiUptime", "oid": "1.3.6.1.4.1.99999.1", "type": "gauge"}]
    assert doc["tables"] == [
        {
            "name": "kemiPortTable",
            "index_label": "kemiPortIndex",
            "lookups": [{"label": "kemiPortName", "oid": "1.3.6.1.4.1.99999.2.1.2"}],
            "columns": [
                {"name": "kemiPortOctets", "oid": "1.3.6.1.4.1.99999.2.1.3", "type": "counter"},
                # a textual convention of the MIB itself, over INTEGER
                {"name": "kemiPortState", "oid": "1.3.6.1.4.1.99999.2.1.4", "type": "gauge"},
            ],
        }
    ]
    Profile.model_validate(doc)


def test_a_base_module_is_not_a_profile_source(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="SNMPv2-SMI"):
        MibLibrary([TEST_MIBS], tmp_path).module("SNMPv2-SMI")
