"""SNMP through pysnmp 7 (asyncio), for what the lean path does not do: SNMPv3 and probes.

:class:`PysnmpEngines` owns the engines, auth data and transports, cached across polls;
:class:`PysnmpExchange` sends one request for a session and returns its answer in the
form the lean path gives (OID content bytes, converted values), so one walk and one GET
algorithm serve both. MIB names are never resolved here (``lookupMib=False``).

v1/v2c probes share one engine. Each distinct v3 credential gets an engine of its own,
because pysnmp keys its USM user table by user name: two credentials with the same user
and different keys would otherwise overwrite each other mid-poll.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass
from typing import Any

from kemi_stats.registry.models import Credential, Target
from poller.ber import END_OF_MIB, GET, GETBULK, SnmpValue, oid_bytes, oid_text
from poller.errors import ExchangeTimedOut, PollError

# pysnmp imports its MIB compiler whenever pysmi is installed (and it is: the CLI compiles
# MIBs with it), and pysmi brings requests, jinja2 and lark: 8 MiB and 70 ms in every
# poller process. The poller sends numeric OIDs only, so pysnmp is imported with pysmi
# hidden (its compiler then says "not available" if ever asked); pysmi stays importable.
_HIDE_PYSMI = "pysmi" not in sys.modules
if _HIDE_PYSMI:
    sys.modules["pysmi"] = None  # type: ignore[assignment]
try:
    from pysnmp.hlapi.v3arch.asyncio import (
        USM_AUTH_HMAC96_MD5,
        USM_AUTH_HMAC96_SHA,
        USM_AUTH_HMAC128_SHA224,
        USM_AUTH_HMAC192_SHA256,
        USM_AUTH_HMAC256_SHA384,
        USM_AUTH_HMAC384_SHA512,
        USM_AUTH_NONE,
        USM_PRIV_CBC56_DES,
        USM_PRIV_CFB128_AES,
        USM_PRIV_CFB192_AES,
        USM_PRIV_CFB256_AES,
        USM_PRIV_NONE,
        CommunityData,
        ContextData,
        ObjectIdentity,
        ObjectType,
        SnmpEngine,
        UdpTransportTarget,
        UsmUserData,
        bulk_cmd,
        get_cmd,
        next_cmd,
    )
    from pysnmp.proto import errind, rfc1902, rfc1905
finally:
    if _HIDE_PYSMI:
        del sys.modules["pysmi"]

__all__ = ["ExchangeTimedOut", "PysnmpEngines", "PysnmpExchange", "convert_value"]

_AUTH = {
    None: USM_AUTH_NONE,
    "MD5": USM_AUTH_HMAC96_MD5,
    "SHA": USM_AUTH_HMAC96_SHA,
    "SHA224": USM_AUTH_HMAC128_SHA224,
    "SHA256": USM_AUTH_HMAC192_SHA256,
    "SHA384": USM_AUTH_HMAC256_SHA384,
    "SHA512": USM_AUTH_HMAC384_SHA512,
}
_PRIV = {
    None: USM_PRIV_NONE,
    "DES": USM_PRIV_CBC56_DES,
    "AES": USM_PRIV_CFB128_AES,
    "AES128": USM_PRIV_CFB128_AES,
    "AES192": USM_PRIV_CFB192_AES,
    "AES256": USM_PRIV_CFB256_AES,
}

_COUNTER32 = rfc1902.Counter32.tagSet
_COUNTER64 = rfc1902.Counter64.tagSet
_NUMBERS = frozenset(
    t.tagSet
    for t in (
        rfc1902.Integer32,
        rfc1902.Integer,
        rfc1902.Gauge32,
        rfc1902.Unsigned32,
        rfc1902.TimeTicks,
    )
)
_ABSENT = frozenset(t.tagSet for t in (rfc1905.NoSuchObject, rfc1905.NoSuchInstance))
_END = rfc1905.EndOfMibView.tagSet
_OID = rfc1902.ObjectIdentifier.tagSet
_IP = rfc1902.IpAddress.tagSet


def convert_value(value: Any) -> SnmpValue | None:
    """A pysnmp value as ``(type, python value)``; None for noSuchObject/Instance."""
    tags = value.tagSet
    if tags in _NUMBERS:
        return "gauge", int(value)
    if tags == _COUNTER64:
        return "counter64", int(value)
    if tags == _COUNTER32:
        return "counter32", int(value)
    if tags in _ABSENT:
        return None
    if tags == _END:
        return END_OF_MIB
    if tags == _OID:
        return "string", str(value)
    if tags == _IP:
        return "string", value.prettyPrint()
    if hasattr(value, "asOctets"):
        return "string", value.asOctets().decode("utf-8", "replace").rstrip("\x00")
    return "string", value.prettyPrint()


_OBJECT_TYPES: dict[bytes, ObjectType] = {}


def _object_type(oid: bytes) -> ObjectType:
    """A request varbind for ``oid``, reused across polls.

    pysnmp resolves every request varbind against its MIB view unless it is already
    resolved; reusing the resolved object skips that (a third of a GET's CPU here).
    """
    obj = _OBJECT_TYPES.get(oid)
    if obj is None:
        if len(_OBJECT_TYPES) > 200_000:
            _OBJECT_TYPES.clear()
        obj = _OBJECT_TYPES[oid] = ObjectType(ObjectIdentity(oid_text(oid)))
    return obj


def _name_bytes(name: Any) -> bytes:
    return oid_bytes(".".join(map(str, name.asTuple())))


class PysnmpEngines:
    """pysnmp engines, auth data and transports, cached across polls; one per worker process."""

    def __init__(self) -> None:
        self._community_engine = SnmpEngine()
        self._probe_engine = SnmpEngine()
        self._v3_engines: dict[str, SnmpEngine] = {}
        self._auth: dict[str, CommunityData | UsmUserData] = {}
        self._transports: dict[tuple[str, int, float, int], UdpTransportTarget] = {}
        # the live view hands out the same Credential object until it changes
        self._by_object: dict[int, tuple[Credential, SnmpEngine, CommunityData | UsmUserData]] = {}

    def _engine_and_auth(self, cred: Credential) -> tuple[SnmpEngine, CommunityData | UsmUserData]:
        known = self._by_object.get(id(cred))
        if known is not None and known[0] is cred:
            return known[1], known[2]
        engine, auth = self._engine_and_auth_slow(cred)
        if len(self._by_object) > 100_000:
            self._by_object.clear()
        self._by_object[id(cred)] = (cred, engine, auth)
        return engine, auth

    def _engine_and_auth_slow(
        self, cred: Credential
    ) -> tuple[SnmpEngine, CommunityData | UsmUserData]:
        key = hashlib.sha256(cred.model_dump_json().encode()).hexdigest()
        auth = self._auth.get(key)
        if cred.version in ("1", "2c"):
            if auth is None:
                auth = self._auth[key] = CommunityData(
                    cred.community or "", mpModel=0 if cred.version == "1" else 1
                )
            return self._community_engine, auth
        engine = self._v3_engines.get(key)
        if engine is None:
            engine = self._v3_engines[key] = SnmpEngine()
        if auth is None:
            auth = self._auth[key] = UsmUserData(
                cred.user or "",
                authKey=cred.auth_key if cred.auth else None,
                privKey=cred.priv_key if cred.priv else None,
                authProtocol=_AUTH[cred.auth],
                privProtocol=_PRIV[cred.priv],
            )
        return engine, auth

    async def _transport(self, name: str, target: Target) -> UdpTransportTarget:
        key = (target.host, target.port, target.timeout, target.retries)
        transport = self._transports.get(key)
        if transport is None:
            try:
                transport = await UdpTransportTarget.create(
                    (target.host, target.port), timeout=target.timeout, retries=target.retries
                )
            except Exception as exc:
                raise PollError(name, "network", f"cannot resolve {target.host}: {exc}") from exc
            self._transports[key] = transport
        return transport

    async def exchange(self, name: str, target: Target, credential: Credential) -> PysnmpExchange:
        """What sends the requests of one poll of target ``name``."""
        engine, auth = self._engine_and_auth(credential)
        context = (
            ContextData(contextName=credential.context) if credential.context else ContextData()
        )
        transport = await self._transport(name, target)
        return PysnmpExchange(name, credential, engine, auth, transport, context)

    async def probe_alive(self, target: Target, wait: float) -> bool:
        """Whether an SNMP agent answers at the target (SNMPv3 discovery with an unknown user)."""
        transport = await UdpTransportTarget.create(
            (target.host, target.port), timeout=wait, retries=0
        )
        err, _, _, _ = await get_cmd(
            self._probe_engine, UsmUserData("kemi-probe"), transport, ContextData(),
            ObjectType(ObjectIdentity("1.3.6.1.2.1.1.3.0")), lookupMib=False,
        )  # fmt: skip
        return not isinstance(err, errind.RequestTimedOut)

    def close(self) -> None:
        for engine in (self._community_engine, self._probe_engine, *self._v3_engines.values()):
            dispatcher = engine.transport_dispatcher
            if dispatcher is not None:
                dispatcher.close_dispatcher()


@dataclass(eq=False)
class PysnmpExchange:
    """One request at a time through pysnmp; errors become PollError or ExchangeTimedOut."""

    name: str
    credential: Credential
    engine: SnmpEngine
    auth: CommunityData | UsmUserData
    transport: UdpTransportTarget
    context: ContextData

    def _indication(self, err: Any, what: str) -> PollError:
        user = self.credential.user
        if isinstance(err, errind.WrongDigest):
            return PollError(
                self.name,
                "auth_wrong_digest",
                f"{what}: wrong authentication key or protocol for user {user}",
            )
        if isinstance(err, errind.UnknownUserName):
            return PollError(
                self.name, "auth_unknown_user", f"{what}: user {user} unknown to the agent"
            )
        if isinstance(err, errind.DecryptionError):
            return PollError(self.name, "bad_priv_key", f"{what}: {err}")
        return PollError(self.name, "snmp_error", f"{what}: {err}")

    async def __call__(
        self, what: str, pdu: int, oids: list[bytes], max_repetitions: int
    ) -> tuple[int, int, list[tuple[bytes, SnmpValue | None]]]:
        asked = [_object_type(o) for o in oids]
        if pdu == GETBULK:
            call: Any = bulk_cmd
            args: tuple[Any, ...] = (0, max_repetitions, *asked)
        else:
            call, args = (get_cmd if pdu == GET else next_cmd), tuple(asked)
        try:
            err, status, index, varbinds = await call(
                self.engine, self.auth, self.transport, self.context, *args, lookupMib=False
            )
        except OSError as exc:
            raise PollError(self.name, "network", f"{what}: {exc}") from exc
        if err is not None:
            if isinstance(err, errind.RequestTimedOut):
                raise ExchangeTimedOut(what)
            raise self._indication(err, what)
        return (
            int(status),
            int(index),
            [(_name_bytes(name), convert_value(value)) for name, value in varbinds],
        )
