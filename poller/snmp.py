"""SNMP through pysnmp 7 (asyncio): GETs in as few requests as the agent allows, table walks.

:class:`SnmpClient` owns the pysnmp engines; :meth:`SnmpClient.session` gives a
:class:`PysnmpSession` for one target, the small interface the collector uses
(``get`` and ``walk``), which unit tests replace with a fake.

Values come back as ``(type, value)`` where type is ``counter32``, ``counter64``,
``gauge`` (every other number, TimeTicks included) or ``string``. MIB names are never
resolved here (``lookupMib=False``): profiles hold numeric OIDs already.

v1/v2c targets share one engine. Each distinct v3 credential gets an engine of its
own, because pysnmp keys its USM user table by user name: two credentials with the
same user and different keys would otherwise overwrite each other mid-poll.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

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

from kemi_stats.registry.models import Credential, Target
from poller.errors import PollError

__all__ = [
    "PysnmpSession",
    "SnmpClient",
    "SnmpSession",
    "SnmpValue",
    "convert_value",
]

#: (type, value): type is counter32 | counter64 | gauge | string
SnmpValue = tuple[str, int | float | str]

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

_TOO_BIG = 1
_NO_SUCH_NAME = 2

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
    """A pysnmp value as ``(type, python value)``; None for noSuchObject/Instance/endOfMibView."""
    tags = value.tagSet
    if tags in _NUMBERS:
        return "gauge", int(value)
    if tags == _COUNTER64:
        return "counter64", int(value)
    if tags == _COUNTER32:
        return "counter32", int(value)
    if tags in _ABSENT or tags == _END:
        return None
    if tags == _OID:
        return "string", str(value)
    if tags == _IP:
        return "string", value.prettyPrint()
    if hasattr(value, "asOctets"):
        return "string", value.asOctets().decode("utf-8", "replace").rstrip("\x00")
    return "string", value.prettyPrint()


_OBJECT_TYPES: dict[str, ObjectType] = {}


def _object_type(oid: str) -> ObjectType:
    """A request varbind for ``oid``, reused across polls.

    pysnmp resolves every request varbind against its MIB view unless it is already
    resolved; reusing the resolved object skips that (a third of a GET's CPU here).
    """
    obj = _OBJECT_TYPES.get(oid)
    if obj is None:
        if len(_OBJECT_TYPES) > 200_000:
            _OBJECT_TYPES.clear()
        obj = _OBJECT_TYPES[oid] = ObjectType(ObjectIdentity(oid))
    return obj


class SnmpSession(Protocol):
    """What the collector needs from SNMP for one target."""

    async def get(self, oids: Sequence[str]) -> list[SnmpValue | None]:
        """Values aligned with ``oids`` (None where the agent has no such object)."""
        ...

    async def walk(self, roots: Sequence[str]) -> dict[str, list[tuple[str, SnmpValue]]]:
        """For each column root, its rows as ``(index, value)`` in agent order."""
        ...


class _Timeout(Exception):
    pass


@dataclass(slots=True)
class _TargetLimits:
    """What an agent has taught us: requests larger than this came back tooBig."""

    max_oids: int
    max_repetitions: int


class SnmpClient:
    """pysnmp engines, auth data and transports, cached across polls; one per worker process."""

    def __init__(self, max_oids_per_get: int = 40) -> None:
        self.max_oids_per_get = max_oids_per_get
        self._community_engine = SnmpEngine()
        self._probe_engine = SnmpEngine()
        self._v3_engines: dict[str, SnmpEngine] = {}
        self._auth: dict[str, CommunityData | UsmUserData] = {}
        self._transports: dict[tuple[str, int, float, int], UdpTransportTarget] = {}
        self._limits: dict[str, _TargetLimits] = {}
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

    async def _transport(self, target: Target) -> UdpTransportTarget:
        key = (target.host, target.port, target.timeout, target.retries)
        transport = self._transports.get(key)
        if transport is None:
            try:
                transport = await UdpTransportTarget.create(
                    (target.host, target.port), timeout=target.timeout, retries=target.retries
                )
            except Exception as exc:
                raise PollError(
                    target.host, "network", f"cannot resolve {target.host}: {exc}"
                ) from exc
            self._transports[key] = transport
        return transport

    async def session(
        self, name: str, target: Target, credential: Credential, deadline: float | None = None
    ) -> PysnmpSession:
        """A session for one poll of target ``name`` ending at ``deadline`` (time.monotonic)."""
        engine, auth = self._engine_and_auth(credential)
        limits = self._limits.get(name)
        if limits is None or limits.max_repetitions > target.max_repetitions:
            limits = self._limits[name] = _TargetLimits(
                self.max_oids_per_get, target.max_repetitions
            )
        context = (
            ContextData(contextName=credential.context) if credential.context else ContextData()
        )
        transport = await self._transport(target)
        session = PysnmpSession(
            self, name, target, credential, engine, auth, transport, context, limits
        )
        session.deadline = deadline
        return session

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

    def forget(self, name: str) -> None:
        """Drop what was learned about target ``name`` (it was removed)."""
        self._limits.pop(name, None)

    def close(self) -> None:
        for engine in (self._community_engine, self._probe_engine, *self._v3_engines.values()):
            dispatcher = engine.transport_dispatcher
            if dispatcher is not None:
                dispatcher.close_dispatcher()


@dataclass(eq=False)
class PysnmpSession:
    """GET and walk for one target; every error becomes a :class:`PollError` with a reason."""

    client: SnmpClient
    name: str
    target: Target
    credential: Credential
    engine: SnmpEngine
    auth: CommunityData | UsmUserData
    transport: UdpTransportTarget
    context: ContextData
    limits: _TargetLimits
    requests: int = 0
    #: responses received; 0 means the agent never answered this poll
    answered: int = 0
    deadline: float | None = None

    # --- errors -----------------------------------------------------------------------

    def _fail(self, reason: str, detail: str) -> PollError:
        return PollError(self.name, reason, detail)

    async def _diagnose_timeout(self, what: str) -> PollError:
        t = self.target
        detail = f"{what}: no response after {t.timeout:g} s ({t.retries} retries)"
        alive = False
        budget = t.timeout
        if self.deadline is not None:
            budget = min(budget, self.deadline - time.monotonic() - 0.05)
        if budget >= 0.1:
            try:
                alive = await self.client.probe_alive(t, budget)
            except Exception:
                alive = False
        if alive and self.credential.version in ("1", "2c"):
            return self._fail(
                "bad_community", f"{detail}; the agent answers SNMPv3, so the community is wrong"
            )
        if alive and self.credential.priv:
            return self._fail(
                "bad_priv_key",
                f"{detail}; the agent answers discovery, so the privacy key is likely wrong",
            )
        return self._fail("timeout", detail)

    def _indication(self, err: Any, what: str) -> PollError:
        if isinstance(err, errind.WrongDigest):
            return self._fail(
                "auth_wrong_digest",
                f"{what}: wrong authentication key or protocol for user {self.credential.user}",
            )
        if isinstance(err, errind.UnknownUserName):
            return self._fail(
                "auth_unknown_user", f"{what}: user {self.credential.user} unknown to the agent"
            )
        if isinstance(err, errind.DecryptionError):
            return self._fail("bad_priv_key", f"{what}: {err}")
        return self._fail("snmp_error", f"{what}: {err}")

    async def _request(self, what: str, call: Any, *args: Any) -> tuple[Any, int, list[Any]]:
        self.requests += 1
        try:
            err, status, index, varbinds = await call(
                self.engine, self.auth, self.transport, self.context, *args, lookupMib=False
            )
        except PollError:
            raise
        except OSError as exc:
            raise self._fail("network", f"{what}: {exc}") from exc
        if err is not None:
            if isinstance(err, errind.RequestTimedOut):
                raise _Timeout(what)
            raise self._indication(err, what)
        self.answered += 1
        return status, int(index), list(varbinds)

    # --- GET ----------------------------------------------------------------------------

    async def get(self, oids: Sequence[str]) -> list[SnmpValue | None]:
        out: list[SnmpValue | None] = []
        try:
            i = 0
            while i < len(oids):
                chunk = oids[i : i + self.limits.max_oids]
                values = await self._get_chunk(list(chunk))
                if values is None:  # tooBig: the limit was halved, try again from i
                    continue
                out.extend(values)
                i += len(chunk)
        except _Timeout as exc:
            raise await self._diagnose_timeout(str(exc)) from None
        return out

    async def _get_chunk(self, oids: list[str]) -> list[SnmpValue | None] | None:
        asked = list(oids)
        skipped: set[int] = set()
        while True:
            live = [o for n, o in enumerate(asked) if n not in skipped]
            if not live:
                return [None] * len(asked)
            status, index, varbinds = await self._request(
                f"get {len(live)} OIDs", get_cmd, *(_object_type(o) for o in live)
            )
            if status == _TOO_BIG and len(live) > 1:
                self.limits.max_oids = max(1, len(live) // 2)
                return None
            if status == _NO_SUCH_NAME and 0 < index <= len(live):
                # SNMPv1 names the first missing OID; ask again without it
                missing = live[index - 1]
                skipped.add(
                    next(n for n, o in enumerate(asked) if o == missing and n not in skipped)
                )
                continue
            if status:
                raise self._fail(
                    "snmp_error", f"get: agent answered {status.prettyPrint()} at index {index}"
                )
            got = iter(varbinds)
            return [
                None if n in skipped else convert_value(next(got)[1]) for n in range(len(asked))
            ]

    # --- walks --------------------------------------------------------------------------

    async def walk(self, roots: Sequence[str]) -> dict[str, list[tuple[str, SnmpValue]]]:
        try:
            if self.target.bulk and self.credential.version != "1":
                return await self._walk(roots, bulk=True)
            return await self._walk(roots, bulk=False)
        except _Timeout as exc:
            raise await self._diagnose_timeout(str(exc)) from None

    async def _walk(
        self, roots: Sequence[str], bulk: bool
    ) -> dict[str, list[tuple[str, SnmpValue]]]:
        rows: dict[str, list[tuple[str, SnmpValue]]] = {r: [] for r in roots}
        prefixes = {r: tuple(int(p) for p in r.split(".")) for r in roots}
        position = {r: prefixes[r] for r in roots}
        active = list(roots)
        while active:
            asked = [ObjectType(ObjectIdentity(".".join(map(str, position[r])))) for r in active]
            if bulk:
                reps = self.limits.max_repetitions
                status, _, varbinds = await self._request(
                    f"getbulk {len(active)} columns x {reps}", bulk_cmd, 0, reps, *asked
                )
                if status == _TOO_BIG and reps > 1:
                    self.limits.max_repetitions = max(1, reps // 2)
                    continue
            else:
                status, _, varbinds = await self._request(
                    f"getnext {len(active)} columns", next_cmd, *asked
                )
            if status == _NO_SUCH_NAME:  # v1 end of MIB
                break
            if status:
                raise self._fail("snmp_error", f"walk: agent answered {status.prettyPrint()}")
            done: set[str] = set()
            width = len(active)
            for n, (name, value) in enumerate(varbinds):
                root = active[n % width]
                if root in done:
                    continue
                oid = tuple(name.asTuple())
                prefix = prefixes[root]
                if oid[: len(prefix)] != prefix or len(oid) == len(prefix) or value.tagSet == _END:
                    done.add(root)
                    continue
                if oid <= position[root]:
                    # the agent went backwards: stop this column rather than loop forever
                    done.add(root)
                    continue
                position[root] = oid
                converted = convert_value(value)
                if converted is not None:
                    rows[root].append((".".join(map(str, oid[len(prefix) :])), converted))
            if not varbinds:
                break
            active = [r for r in active if r not in done]
        return rows
