"""The IETF base MIB modules as minimal SMI text, for networks with no copy of them.

Debian's net-snmp packages leave the IETF MIBs out (their RFC licence is not free
enough for Debian), yet nearly every vendor MIB imports SNMPv2-SMI, SNMPv2-TC and
SNMPv2-CONF. pysmi never generates code for these, but it must parse them to learn
the OIDs and types other modules import. These texts hold just that: the registration
tree, the application types and the common textual conventions, with no
descriptions. A real copy found in a searched directory is used instead.
"""

from __future__ import annotations

__all__ = ["BASE_MIBS", "HCNUM_CONVENTIONS", "TEXTUAL_CONVENTIONS"]

_SNMPV2_SMI = """
SNMPv2-SMI DEFINITIONS ::= BEGIN

org            OBJECT IDENTIFIER ::= { iso 3 }
dod            OBJECT IDENTIFIER ::= { org 6 }
internet       OBJECT IDENTIFIER ::= { dod 1 }
directory      OBJECT IDENTIFIER ::= { internet 1 }
mgmt           OBJECT IDENTIFIER ::= { internet 2 }
mib-2          OBJECT IDENTIFIER ::= { mgmt 1 }
transmission   OBJECT IDENTIFIER ::= { mib-2 10 }
experimental   OBJECT IDENTIFIER ::= { internet 3 }
private        OBJECT IDENTIFIER ::= { internet 4 }
enterprises    OBJECT IDENTIFIER ::= { private 1 }
security       OBJECT IDENTIFIER ::= { internet 5 }
snmpV2         OBJECT IDENTIFIER ::= { internet 6 }
snmpDomains    OBJECT IDENTIFIER ::= { snmpV2 1 }
snmpProxys     OBJECT IDENTIFIER ::= { snmpV2 2 }
snmpModules    OBJECT IDENTIFIER ::= { snmpV2 3 }

Integer32 ::= INTEGER (-2147483648..2147483647)
IpAddress ::= [APPLICATION 0] IMPLICIT OCTET STRING (SIZE (4))
Counter32 ::= [APPLICATION 1] IMPLICIT INTEGER (0..4294967295)
Gauge32 ::= [APPLICATION 2] IMPLICIT INTEGER (0..4294967295)
Unsigned32 ::= [APPLICATION 2] IMPLICIT INTEGER (0..4294967295)
TimeTicks ::= [APPLICATION 3] IMPLICIT INTEGER (0..4294967295)
Opaque ::= [APPLICATION 4] IMPLICIT OCTET STRING
Counter64 ::= [APPLICATION 6] IMPLICIT INTEGER (0..18446744073709551615)

END
"""

_SNMPV2_CONF = """
SNMPv2-CONF DEFINITIONS ::= BEGIN
END
"""

#: SNMPv2-TC's textual conventions and the syntax each one refines
TEXTUAL_CONVENTIONS: dict[str, str] = {
    "DisplayString": "OCTET STRING (SIZE (0..255))",
    "PhysAddress": "OCTET STRING",
    "MacAddress": "OCTET STRING (SIZE (6))",
    "TruthValue": "INTEGER { true(1), false(2) }",
    "TestAndIncr": "INTEGER (0..2147483647)",
    "AutonomousType": "OBJECT IDENTIFIER",
    "InstancePointer": "OBJECT IDENTIFIER",
    "VariablePointer": "OBJECT IDENTIFIER",
    "RowPointer": "OBJECT IDENTIFIER",
    "RowStatus": (
        "INTEGER { active(1), notInService(2), notReady(3), createAndGo(4), "
        "createAndWait(5), destroy(6) }"
    ),
    "TimeStamp": "TimeTicks",
    "TimeInterval": "INTEGER (0..2147483647)",
    "DateAndTime": "OCTET STRING (SIZE (8 | 11))",
    "StorageType": ("INTEGER { other(1), volatile(2), nonVolatile(3), permanent(4), readOnly(5) }"),
    "TDomain": "OBJECT IDENTIFIER",
    "TAddress": "OCTET STRING (SIZE (1..255))",
}


#: HCNUM-TC's (RFC 2856) 64-bit conventions: a gauge and a counter with Counter64 syntax
HCNUM_CONVENTIONS: dict[str, str] = {
    "CounterBasedGauge64": "Counter64",
    "ZeroBasedCounter64": "Counter64",
}


def _tc_module(module: str, imports: str, conventions: dict[str, str]) -> str:
    tcs = "\n".join(
        f'{name} ::= TEXTUAL-CONVENTION\n    STATUS current\n    DESCRIPTION ""\n'
        f"    SYNTAX {syntax}\n"
        for name, syntax in conventions.items()
    )
    return (
        f"\n{module} DEFINITIONS ::= BEGIN\n\nIMPORTS\n    {imports} FROM SNMPv2-SMI;\n\n"
        f"{tcs}\nEND\n"
    )


#: module name -> SMI text
BASE_MIBS: dict[str, str] = {
    "SNMPv2-SMI": _SNMPV2_SMI,
    "SNMPv2-TC": _tc_module("SNMPv2-TC", "TimeTicks", TEXTUAL_CONVENTIONS),
    "SNMPv2-CONF": _SNMPV2_CONF,
    "HCNUM-TC": _tc_module("HCNUM-TC", "Counter64", HCNUM_CONVENTIONS),
}
