"""The snmpsim data files: sorted OIDs, moving counters, one community per device."""

from __future__ import annotations

from pathlib import Path

import pytest

from kemi_stats.errors import StackError
from kemi_stats.stack.snmpsim import SnmpdUser, device_records, write_device_data, write_snmpd_conf


def test_records_sorted_and_counters_move(tmp_path: Path) -> None:
    lines = device_records("sw-1", interfaces=3)
    oids = [tuple(int(p) for p in line.split("|")[0].split(".")) for line in lines]
    assert oids == sorted(oids)
    hc_in = [line for line in lines if line.startswith("1.3.6.1.2.1.31.1.1.1.6.")]
    assert len(hc_in) == 3 and all("|70:numeric|rate=" in line for line in hc_in)
    assert device_records("sw-1") == device_records("sw-1")
    assert device_records("sw-1") != device_records("sw-2")
    path = write_device_data(tmp_path, "sw-1")
    assert path.name == "sw-1.snmprec"
    with pytest.raises(StackError):
        write_device_data(tmp_path, "../evil")


def test_snmpd_conf(tmp_path: Path) -> None:
    conf = write_snmpd_conf(
        tmp_path / "snmpd.conf", users=(SnmpdUser("u", priv=None, priv_key=None),)
    )
    text = conf.read_text()
    assert "rocommunity public 127.0.0.1" in text
    assert "createUser u SHA authpass123\n" in text and "rouser u auth" in text
