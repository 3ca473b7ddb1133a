"""SNMP for the poll: GETs in as few requests as the agent allows, table walks.

:class:`SnmpClient` is one per worker process; :meth:`SnmpClient.session` gives a
:class:`PollSession` for one poll of one target, the small interface the collector uses
(``get`` and ``walk``), which unit tests replace with a fake.

Requests of v1/v2c targets go through the lean path: :mod:`poller.ber` builds and reads
the datagrams, :mod:`poller.udp` sends them on one socket per process. SNMPv3 goes
through pysnmp (:mod:`poller.pysnmp_engine`), which also probes an agent that did not
answer. Both give the session the same thing, ``(status, index, [(oid bytes, value)])``,
so one GET and one walk algorithm, with the same errors, serve every version.

Values come back as ``(type, value)`` where type is ``counter32``, ``counter64``,
``gauge`` (every other number, TimeTicks included) or ``string``.

A walk asks for as many rows as the table had at the last poll, plus one to see its
end, so a table that did not grow takes one request; a new table, or one that grew,
goes on with the target's max-repetitions.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from kemi_stats.registry.models import Credential, Target
from poller.ber import (
    END_OF_MIB,
    GET,
    GETBULK,
    GETNEXT,
    BerError,
    SnmpValue,
    encode_request,
    oid_bytes,
    suffix_text,
)
from poller.errors import ExchangeTimedOut, PollError
from poller.udp import RequestTimedOut, SnmpUdp

if TYPE_CHECKING:
    from poller.pysnmp_engine import PysnmpEngines

__all__ = ["AgentLimits", "Exchange", "PollSession", "SnmpClient", "SnmpSession", "SnmpValue"]

_TOO_BIG = 1
_NO_SUCH_NAME = 2
#: RFC 3416 error-status names
_STATUS = (
    "noError", "tooBig", "noSuchName", "badValue", "readOnly", "genErr", "noAccess",
    "wrongType", "wrongLength", "wrongEncoding", "wrongValue", "noCreation",
    "inconsistentValue", "resourceUnavailable", "commitFailed", "undoFailed",
    "authorizationError", "notWritable", "inconsistentName",
)  # fmt: skip

Varbinds = list[tuple[bytes, SnmpValue | None]]


class Exchange(Protocol):
    """Sends one request of a session: ``(error status, error index, varbinds)``."""

    async def __call__(
        self, what: str, pdu: int, oids: list[bytes], max_repetitions: int
    ) -> tuple[int, int, Varbinds]: ...


class SnmpSession(Protocol):
    """What the collector needs from SNMP for one target."""

    async def get(self, oids: Sequence[str]) -> list[SnmpValue | None]:
        """Values aligned with ``oids`` (None where the agent has no such object)."""
        ...

    async def walk(self, roots: Sequence[str]) -> dict[str, list[tuple[str, SnmpValue]]]:
        """For each column root, its rows as ``(index, value)`` in agent order."""
        ...


@dataclass(slots=True)
class AgentLimits:
    """What an agent has taught us: request sizes that came back tooBig, and table sizes."""

    max_oids: int
    max_repetitions: int
    #: first column OID of a walk -> rows it had at the last poll
    rows: dict[bytes, int] = field(default_factory=dict)


# the OIDs a plan asks for and the index suffixes a table answers with repeat every poll:
# encode and decode each once per process (bounded, least recently used dropped first)
_oid = functools.lru_cache(maxsize=200_000)(oid_bytes)
_suffix = functools.lru_cache(maxsize=200_000)(suffix_text)


@dataclass(eq=False, slots=True)
class LeanExchange:
    """v1/v2c requests through :mod:`poller.ber` and the process's UDP socket."""

    udp: SnmpUdp
    address: tuple[str, int]
    version: int
    community: bytes
    timeout: float
    retries: int
    name: str

    async def __call__(
        self, what: str, pdu: int, oids: list[bytes], max_repetitions: int
    ) -> tuple[int, int, Varbinds]:
        rid = self.udp.request_id()
        datagram = encode_request(self.version, self.community, pdu, rid, oids, 0, max_repetitions)
        try:
            _, status, index, varbinds = await self.udp.exchange(
                self.address, rid, datagram, self.timeout, self.retries
            )
        except RequestTimedOut:
            raise ExchangeTimedOut(what) from None
        except OSError as exc:
            raise PollError(self.name, "network", f"{what}: {exc}") from exc
        return status, index, varbinds


class SnmpClient:
    """The lean path's socket, pysnmp's engines, and what agents taught; one per worker process."""

    def __init__(self, max_oids_per_get: int = 40, *, lean: bool = True) -> None:
        self.max_oids_per_get = max_oids_per_get
        #: v1/v2c through poller.ber (False: through pysnmp, as v3 is)
        self.lean = lean
        self.udp = SnmpUdp()
        self._pysnmp: PysnmpEngines | None = None
        self._limits: dict[str, AgentLimits] = {}
        self._addresses: dict[tuple[str, int], tuple[str, int]] = {}
        self._communities: dict[str, bytes] = {}

    @property
    def pysnmp(self) -> PysnmpEngines:
        """pysnmp's engines, made (and pysnmp imported) when SNMPv3 or a probe first needs them.

        A fleet of v1/v2c agents that answer never loads pysnmp: its import (with the
        ``cryptography`` its SNMPv3 privacy needs) and first engine hold about 15 MiB.
        """
        if self._pysnmp is None:
            from poller.pysnmp_engine import PysnmpEngines

            self._pysnmp = PysnmpEngines()
        return self._pysnmp

    async def _address(self, name: str, target: Target) -> tuple[str, int]:
        key = (target.host, target.port)
        address = self._addresses.get(key)
        if address is None:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    target.host, target.port, family=socket.AF_INET, type=socket.SOCK_DGRAM
                )
            except OSError as exc:
                raise PollError(name, "network", f"cannot resolve {target.host}: {exc}") from exc
            host, port = infos[0][4][:2]
            if len(self._addresses) > 100_000:
                self._addresses.clear()
            address = self._addresses[key] = (str(host), int(port))
        return address

    async def session(
        self, name: str, target: Target, credential: Credential, deadline: float | None = None
    ) -> PollSession:
        """A session for one poll of target ``name`` ending at ``deadline`` (time.monotonic)."""
        limits = self._limits.get(name)
        if limits is None or limits.max_repetitions > target.max_repetitions:
            limits = self._limits[name] = AgentLimits(self.max_oids_per_get, target.max_repetitions)
        exchange: Exchange
        if self.lean and credential.version in ("1", "2c"):
            community = credential.community or ""
            raw = self._communities.get(community)
            if raw is None:
                raw = self._communities[community] = community.encode()
            exchange = LeanExchange(
                self.udp, await self._address(name, target),
                0 if credential.version == "1" else 1, raw,
                target.timeout, target.retries, name,
            )  # fmt: skip
        else:
            exchange = await self.pysnmp.exchange(name, target, credential)
        return PollSession(self, name, target, credential, exchange, limits, deadline=deadline)

    async def probe_alive(self, target: Target, wait: float) -> bool:
        """Whether an SNMP agent answers at the target (SNMPv3 discovery with an unknown user)."""
        return await self.pysnmp.probe_alive(target, wait)

    def forget(self, name: str) -> None:
        """Drop what was learned about target ``name`` (it was removed)."""
        self._limits.pop(name, None)

    def close(self) -> None:
        self.udp.close()
        if self._pysnmp is not None:
            self._pysnmp.close()


@dataclass(eq=False)
class PollSession:
    """GET and walk for one poll of one target; every error becomes a PollError with a reason."""

    client: SnmpClient
    name: str
    target: Target
    credential: Credential
    exchange: Exchange
    limits: AgentLimits
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

    def _status_error(self, what: str, status: int, index: int) -> PollError:
        name = _STATUS[status] if 0 <= status < len(_STATUS) else f"error status {status}"
        return self._fail("snmp_error", f"{what}: agent answered {name} at index {index}")

    async def _request(
        self, what: str, pdu: int, oids: list[bytes], max_repetitions: int = 0
    ) -> tuple[int, int, Varbinds]:
        self.requests += 1
        answer = await self.exchange(what, pdu, oids, max_repetitions)
        self.answered += 1
        return answer

    # --- GET ----------------------------------------------------------------------------

    async def get(self, oids: Sequence[str]) -> list[SnmpValue | None]:
        asked = [_oid(o) for o in oids]
        out: list[SnmpValue | None] = []
        try:
            i = 0
            while i < len(asked):
                chunk = asked[i : i + self.limits.max_oids]
                values = await self._get_chunk(chunk)
                if values is None:  # tooBig: the limit was halved, try again from i
                    continue
                out.extend(values)
                i += len(chunk)
        except ExchangeTimedOut as exc:
            raise await self._diagnose_timeout(str(exc)) from None
        return out

    async def _get_chunk(self, asked: list[bytes]) -> list[SnmpValue | None] | None:
        skipped: set[int] = set()
        while True:
            live = [o for n, o in enumerate(asked) if n not in skipped]
            if not live:
                return [None] * len(asked)
            what = f"get {len(live)} OIDs"
            status, index, varbinds = await self._request(what, GET, live)
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
                raise self._status_error("get", status, index)
            if len(varbinds) != len(live):
                raise self._fail("snmp_error", f"{what}: agent answered {len(varbinds)} values")
            got = iter(varbinds)
            values: list[SnmpValue | None] = []
            for n in range(len(asked)):
                value = None if n in skipped else next(got)[1]
                values.append(None if value is END_OF_MIB else value)
            return values

    # --- walks --------------------------------------------------------------------------

    async def walk(self, roots: Sequence[str]) -> dict[str, list[tuple[str, SnmpValue]]]:
        bulk = self.target.bulk and self.credential.version != "1"
        try:
            return await self._walk(roots, bulk)
        except ExchangeTimedOut as exc:
            raise await self._diagnose_timeout(str(exc)) from None
        except BerError as exc:
            raise self._fail("snmp_error", f"walk: {exc}") from None

    async def _walk(
        self, roots: Sequence[str], bulk: bool
    ) -> dict[str, list[tuple[str, SnmpValue]]]:
        prefixes = [_oid(r) for r in roots]
        rows: list[list[tuple[str, SnmpValue]]] = [[] for _ in roots]
        position = list(prefixes)
        last: list[tuple[int, ...]] = [() for _ in roots]
        taken = [0] * len(roots)
        active = list(range(len(roots)))
        known = self.limits.rows.get(prefixes[0]) if prefixes else None
        first = True
        while active:
            asked = [position[i] for i in active]
            if bulk:
                reps = self.limits.max_repetitions
                if first and known is not None:
                    reps = min(reps, known + 1)
                status, index, varbinds = await self._request(
                    f"getbulk {len(active)} columns x {reps}", GETBULK, asked, reps
                )
                if status == _TOO_BIG and reps > 1:
                    self.limits.max_repetitions = max(1, reps // 2)
                    continue
            else:
                status, index, varbinds = await self._request(
                    f"getnext {len(active)} columns", GETNEXT, asked
                )
            if status == _NO_SUCH_NAME:  # v1 end of MIB
                break
            if status:
                raise self._status_error("walk", status, index)
            if not varbinds:
                break
            first = False
            width = len(active)
            done: set[int] = set()
            for c, i in enumerate(active):
                prefix = prefixes[i]
                cut = len(prefix)
                out = rows[i]
                previous = last[i]
                for oid, value in varbinds[c::width]:
                    if len(oid) <= cut or not oid.startswith(prefix) or value is END_OF_MIB:
                        done.add(i)
                        break
                    text, numbers = _suffix(oid[cut:])
                    if numbers <= previous:
                        # the agent went backwards: stop this column rather than loop forever
                        done.add(i)
                        break
                    previous = numbers
                    position[i] = oid
                    taken[i] += 1
                    if value is not None:
                        out.append((text, value))
                last[i] = previous
            active = [i for i in active if i not in done]
        if prefixes:
            self.limits.rows[prefixes[0]] = max(taken)
        return dict(zip(roots, rows, strict=True))
