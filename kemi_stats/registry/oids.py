"""MIB object names known offline, resolved to numeric OIDs once at load time.

Like snmp_exporter's generator, names are turned into numbers before anything
polls: profiles may say ``IF-MIB::ifHCInOctets`` or ``ifHCInOctets``; the poller
only ever sees ``1.3.6.1.2.1.31.1.1.1.6``.
"""

from __future__ import annotations

import re

__all__ = ["SYMBOLS", "resolve_oid"]

SYMBOLS: dict[str, str] = {
    # SNMPv2-MIB system
    "sysDescr": "1.3.6.1.2.1.1.1",
    "sysObjectID": "1.3.6.1.2.1.1.2",
    "sysUpTime": "1.3.6.1.2.1.1.3",
    "sysContact": "1.3.6.1.2.1.1.4",
    "sysName": "1.3.6.1.2.1.1.5",
    "sysLocation": "1.3.6.1.2.1.1.6",
    # IF-MIB ifTable / ifXTable
    "ifIndex": "1.3.6.1.2.1.2.2.1.1",
    "ifDescr": "1.3.6.1.2.1.2.2.1.2",
    "ifSpeed": "1.3.6.1.2.1.2.2.1.5",
    "ifAdminStatus": "1.3.6.1.2.1.2.2.1.7",
    "ifOperStatus": "1.3.6.1.2.1.2.2.1.8",
    "ifInOctets": "1.3.6.1.2.1.2.2.1.10",
    "ifInUcastPkts": "1.3.6.1.2.1.2.2.1.11",
    "ifInDiscards": "1.3.6.1.2.1.2.2.1.13",
    "ifInErrors": "1.3.6.1.2.1.2.2.1.14",
    "ifOutOctets": "1.3.6.1.2.1.2.2.1.16",
    "ifOutUcastPkts": "1.3.6.1.2.1.2.2.1.17",
    "ifOutDiscards": "1.3.6.1.2.1.2.2.1.19",
    "ifOutErrors": "1.3.6.1.2.1.2.2.1.20",
    "ifName": "1.3.6.1.2.1.31.1.1.1.1",
    "ifHCInOctets": "1.3.6.1.2.1.31.1.1.1.6",
    "ifHCInUcastPkts": "1.3.6.1.2.1.31.1.1.1.7",
    "ifHCOutOctets": "1.3.6.1.2.1.31.1.1.1.10",
    "ifHCOutUcastPkts": "1.3.6.1.2.1.31.1.1.1.11",
    "ifHighSpeed": "1.3.6.1.2.1.31.1.1.1.15",
    "ifAlias": "1.3.6.1.2.1.31.1.1.1.18",
    # HOST-RESOURCES-MIB
    "hrSystemUptime": "1.3.6.1.2.1.25.1.1",
    "hrProcessorLoad": "1.3.6.1.2.1.25.3.3.1.2",
    "hrStorageDescr": "1.3.6.1.2.1.25.2.3.1.3",
    "hrStorageAllocationUnits": "1.3.6.1.2.1.25.2.3.1.4",
    "hrStorageSize": "1.3.6.1.2.1.25.2.3.1.5",
    "hrStorageUsed": "1.3.6.1.2.1.25.2.3.1.6",
    # UCD-SNMP-MIB
    "laLoad": "1.3.6.1.4.1.2021.10.1.3",
    "laNames": "1.3.6.1.4.1.2021.10.1.2",
    "laLoadInt": "1.3.6.1.4.1.2021.10.1.5",
    "memTotalReal": "1.3.6.1.4.1.2021.4.5",
    "memAvailReal": "1.3.6.1.4.1.2021.4.6",
    "memTotalSwap": "1.3.6.1.4.1.2021.4.3",
    "memAvailSwap": "1.3.6.1.4.1.2021.4.4",
    "memBuffer": "1.3.6.1.4.1.2021.4.14",
    "memCached": "1.3.6.1.4.1.2021.4.15",
    "ssCpuRawUser": "1.3.6.1.4.1.2021.11.50",
    "ssCpuRawNice": "1.3.6.1.4.1.2021.11.51",
    "ssCpuRawSystem": "1.3.6.1.4.1.2021.11.52",
    "ssCpuRawIdle": "1.3.6.1.4.1.2021.11.53",
    "ssCpuRawWait": "1.3.6.1.4.1.2021.11.54",
    "ssCpuRawInterrupt": "1.3.6.1.4.1.2021.11.56",
    "ssCpuRawSoftIRQ": "1.3.6.1.4.1.2021.11.61",
}

_NUMERIC = re.compile(r"^\.?(\d+)(\.\d+)+$")
_NAMED = re.compile(r"^(?:[A-Za-z][\w-]*::)?([A-Za-z][\w]*)((?:\.\d+)*)$")


def resolve_oid(text: str) -> str:
    """The numeric form of ``text`` (``IF-MIB::ifName.3`` -> ``1.3.6.1.2.1.31.1.1.1.1.3``)."""
    s = text.strip()
    if _NUMERIC.match(s):
        s = s.lstrip(".")
        first = int(s.split(".", 1)[0])
        if first > 2:
            raise ValueError(f"{text!r} is not an OID (first arc must be 0, 1 or 2)")
        return s
    m = _NAMED.match(s)
    if m and m.group(1) in SYMBOLS:
        return SYMBOLS[m.group(1)] + m.group(2)
    raise ValueError(
        f"{text!r} is not an OID (expected numeric like 1.3.6.1.2.1.1.3 or a known name like ifHCInOctets)"
    )
