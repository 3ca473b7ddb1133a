"""GET and walk semantics of a poll session, against a fake agent that answers as SNMP does."""

from __future__ import annotations

import bisect
from collections.abc import Iterator

import pytest

from kemi_stats.registry.models import Credential, Target
from poller.ber import END_OF_MIB, GET, GETBULK, GETNEXT, SnmpValue, oid_bytes, oid_text
from poller.errors import PollError
from poller.snmp import AgentLimits, PollSession, SnmpClient

IF_TABLE = "1.3.6.1.2.1.2.2.1"


class FakeAgent:
    """An agent over a fixed set of objects: GET, GETNEXT and GETBULK as RFC 3416 says.

    ``max_varbinds`` truncates a GETBULK answer as net-snmp does (100 by default there);
    ``too_big`` answers tooBig to a GETBULK asking for more varbinds than that.
    """

    def __init__(
        self,
        objects: dict[str, SnmpValue],
        max_varbinds: int = 10_000,
        too_big: int | None = None,
        backwards_after: str | None = None,
    ) -> None:
        self.max_varbinds = max_varbinds
        self.too_big = too_big
        self.backwards_after = backwards_after
        self.requests: list[tuple[int, int, int]] = []  # (pdu, oids, reps)
        self.load(objects)

    def load(self, objects: dict[str, SnmpValue]) -> None:
        keys = sorted(objects, key=lambda o: tuple(int(p) for p in o.split(".")))
        self.keys = [tuple(int(p) for p in k.split(".")) for k in keys]
        self.values = [objects[k] for k in keys]

    def _next(self, oid: tuple[int, ...]) -> tuple[tuple[int, ...], SnmpValue]:
        if self.backwards_after and oid == tuple(map(int, self.backwards_after.split("."))):
            return self.keys[0], self.values[0]
        i = bisect.bisect_right(self.keys, oid)
        if i == len(self.keys):
            return oid, END_OF_MIB
        return self.keys[i], self.values[i]

    async def __call__(
        self, what: str, pdu: int, oids: list[bytes], max_repetitions: int
    ) -> tuple[int, int, list[tuple[bytes, SnmpValue | None]]]:
        self.requests.append((pdu, len(oids), max_repetitions))
        asked = [_numbers(o) for o in oids]
        out: list[tuple[tuple[int, ...], SnmpValue | None]] = []
        if pdu == GET:
            for oid in asked:
                i = bisect.bisect_left(self.keys, oid)
                found = i < len(self.keys) and self.keys[i] == oid
                out.append((oid, self.values[i] if found else None))
        elif pdu == GETNEXT:
            out = [self._next(o) for o in asked]
        else:
            assert pdu == GETBULK
            if self.too_big is not None and len(asked) * max_repetitions > self.too_big:
                return 1, 0, []
            row = asked
            for _ in range(max_repetitions):
                got = [self._next(o) for o in row]
                out += got
                row = [o for o, _ in got]
            out = out[: self.max_varbinds]
        return 0, 0, [(oid_bytes(".".join(map(str, o))), v) for o, v in out]


def _numbers(raw: bytes) -> tuple[int, ...]:
    return tuple(int(p) for p in oid_text(raw).split("."))


def _table(
    rows: int, columns: int = 10, holes: tuple[tuple[int, int], ...] = ()
) -> dict[str, SnmpValue]:
    objects: dict[str, SnmpValue] = {"1.3.6.1.2.1.1.3.0": ("gauge", 99)}
    for c in range(1, columns + 1):
        for r in range(1, rows + 1):
            if (c, r) not in holes:
                objects[f"{IF_TABLE}.{c}.{r}"] = ("counter32", c * 1000 + r)
    objects["1.3.6.1.2.1.31.1.1.1.1.1"] = ("string", "lo")  # what follows ifTable
    return objects


def _expected(
    objects: dict[str, SnmpValue], roots: list[str]
) -> dict[str, list[tuple[str, SnmpValue]]]:
    out: dict[str, list[tuple[str, SnmpValue]]] = {}
    for root in roots:
        rows = [
            (oid[len(root) + 1 :], v) for oid, v in objects.items() if oid.startswith(root + ".")
        ]
        out[root] = sorted(rows, key=lambda r: tuple(int(p) for p in r[0].split(".")))
    return out


@pytest.fixture(scope="module")
def client() -> Iterator[SnmpClient]:
    c = SnmpClient()
    yield c
    c.close()


def _session(
    client: SnmpClient, agent: FakeAgent, limits: AgentLimits, *, bulk: bool = True
) -> PollSession:
    target = Target(host="127.0.0.1", credential="c", profiles=["p"], bulk=bulk,
                    max_repetitions=limits.max_repetitions)  # fmt: skip
    cred = Credential(version="2c", community="public")
    return PollSession(client, "dev", target, cred, agent, limits)


ROOTS = [f"{IF_TABLE}.{c}" for c in range(1, 11)]


@pytest.mark.parametrize("max_varbinds", [7, 100, 10_000])
@pytest.mark.parametrize("reps", [1, 3, 25])
async def test_bulk_walks_equal_getnext_walks_whatever_the_agent_truncates(
    client: SnmpClient, max_varbinds: int, reps: int
) -> None:
    objects = _table(6, holes=((2, 3), (4, 1), (10, 6)))
    agent = FakeAgent(objects, max_varbinds=max_varbinds)
    bulk = await _session(client, agent, AgentLimits(40, reps)).walk(ROOTS)
    slow = await _session(client, agent, AgentLimits(40, reps), bulk=False).walk(ROOTS)
    assert bulk == slow == _expected(objects, ROOTS)


async def test_a_table_that_did_not_change_takes_one_request(client: SnmpClient) -> None:
    objects = _table(4)
    agent = FakeAgent(objects)
    limits = AgentLimits(40, 25)
    await _session(client, agent, limits).walk(ROOTS)
    assert agent.requests[-1] == (GETBULK, 10, 25)
    agent.requests.clear()
    rows = await _session(client, agent, limits).walk(ROOTS)
    assert agent.requests == [(GETBULK, 10, 5)]  # 4 rows and the end of each column
    assert rows == _expected(objects, ROOTS)


async def test_a_table_that_grew_or_shrank_is_walked_whole(client: SnmpClient) -> None:
    agent = FakeAgent(_table(4))
    limits = AgentLimits(40, 25)
    await _session(client, agent, limits).walk(ROOTS)
    agent.load(grown := _table(60))
    assert await _session(client, agent, limits).walk(ROOTS) == _expected(grown, ROOTS)
    assert [r[2] for r in agent.requests[1:]] == [5, 25, 25, 25]
    agent.load(shrunk := _table(2))
    assert await _session(client, agent, limits).walk(ROOTS) == _expected(shrunk, ROOTS)
    agent.load(empty := _table(0))
    assert await _session(client, agent, limits).walk(ROOTS) == _expected(empty, ROOTS)


async def test_too_big_halves_the_repetitions(client: SnmpClient) -> None:
    objects = _table(30)
    agent = FakeAgent(objects, too_big=60)
    limits = AgentLimits(40, 25)
    assert await _session(client, agent, limits).walk(ROOTS) == _expected(objects, ROOTS)
    assert limits.max_repetitions == 6
    assert [r[2] for r in agent.requests[:3]] == [25, 12, 6]


async def test_an_agent_that_goes_backwards_ends_the_column(client: SnmpClient) -> None:
    objects = _table(5, columns=2)
    agent = FakeAgent(objects, backwards_after=f"{IF_TABLE}.1.3")
    rows = await _session(client, agent, AgentLimits(40, 2)).walk(ROOTS[:2])
    assert [i for i, _ in rows[ROOTS[0]]] == ["1", "2", "3"]
    assert [i for i, _ in rows[ROOTS[1]]] == ["1", "2", "3", "4", "5"]


async def test_get_aligns_values_and_absent_objects(client: SnmpClient) -> None:
    agent = FakeAgent(_table(2))
    session = _session(client, agent, AgentLimits(3, 25))
    oids = ["1.3.6.1.2.1.1.3.0", "1.3.6.1.2.1.1.5.0", f"{IF_TABLE}.1.2", f"{IF_TABLE}.9.9"]
    values = await session.get(oids)
    assert values == [("gauge", 99), None, ("counter32", 1002), None]
    assert session.requests == 2  # 3 OIDs per request


async def test_an_error_status_names_the_request(client: SnmpClient) -> None:
    class Failing(FakeAgent):
        async def __call__(self, what: str, pdu: int, oids: list[bytes], max_repetitions: int):  # type: ignore[no-untyped-def]
            return 5, 2, []

    with pytest.raises(PollError) as err:
        await _session(client, Failing({}), AgentLimits(40, 25)).get(["1.3.6.1.2.1.1.3.0"])
    assert err.value.reason == "snmp_error"
    assert "genErr at index 2" in str(err.value)
