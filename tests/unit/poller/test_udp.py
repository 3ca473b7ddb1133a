"""The process's SNMP socket: retries with the same id, strangers and garbage dropped, cancels."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest
from pyasn1.codec.ber import decoder, encoder
from pysnmp.proto import api

from poller.ber import GET, encode_request, oid_bytes
from poller.udp import RequestTimedOut, SnmpUdp

V2C = api.v2c
UPTIME = "1.3.6.1.2.1.1.3.0"


def _answer(request: bytes) -> bytes:
    msg, _ = decoder.decode(request, asn1Spec=V2C.Message())
    rid = V2C.apiPDU.get_request_id(V2C.apiMessage.get_pdu(msg))
    pdu = V2C.ResponsePDU()
    V2C.apiPDU.set_defaults(pdu)
    V2C.apiPDU.set_request_id(pdu, rid)
    V2C.apiPDU.set_varbinds(pdu, [(UPTIME, V2C.TimeTicks(42))])
    out = V2C.Message()
    V2C.apiMessage.set_defaults(out)
    V2C.apiMessage.set_community(out, "public")
    V2C.apiMessage.set_pdu(out, pdu)
    return bytes(encoder.encode(out))


class Agent(asyncio.DatagramProtocol):
    """Answers every request after ignoring the first ``ignore`` datagrams."""

    def __init__(self, ignore: int = 0) -> None:
        self.ignore = ignore
        self.seen: list[bytes] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        self.seen.append(data)
        if len(self.seen) > self.ignore and self.transport is not None:
            self.transport.sendto(_answer(data), addr)


async def _agent(ignore: int = 0) -> tuple[Agent, tuple[str, int]]:
    loop = asyncio.get_running_loop()
    agent = Agent(ignore)
    transport, _ = await loop.create_datagram_endpoint(lambda: agent, local_addr=("127.0.0.1", 0))
    return agent, transport.get_extra_info("sockname")[:2]


@pytest.fixture
async def udp() -> AsyncIterator[SnmpUdp]:
    u = SnmpUdp()
    yield u
    u.close()


def _request(udp: SnmpUdp) -> tuple[int, bytes]:
    rid = udp.request_id()
    return rid, encode_request(1, b"public", GET, rid, [oid_bytes(UPTIME)])


async def test_a_lost_request_is_sent_again_with_the_same_id(udp: SnmpUdp) -> None:
    agent, address = await _agent(ignore=2)
    rid, datagram = _request(udp)
    answer = await udp.exchange(address, rid, datagram, 0.05, 2)
    assert answer[0] == rid
    assert answer[3] == [(oid_bytes(UPTIME), ("gauge", 42))]
    assert agent.seen == [datagram] * 3
    assert udp.pending == {}


async def test_no_answer_after_every_retry_times_out(udp: SnmpUdp) -> None:
    agent, address = await _agent(ignore=100)
    rid, datagram = _request(udp)
    started = asyncio.get_running_loop().time()
    with pytest.raises(RequestTimedOut):
        await udp.exchange(address, rid, datagram, 0.05, 1)
    assert len(agent.seen) == 2
    assert asyncio.get_running_loop().time() - started >= 0.1
    assert udp.pending == {}


async def test_answers_from_a_stranger_or_garbage_are_dropped(udp: SnmpUdp) -> None:
    agent, address = await _agent(ignore=1)
    rid, datagram = _request(udp)
    waiting = asyncio.create_task(udp.exchange(address, rid, datagram, 0.2, 1))
    while not agent.seen:
        await asyncio.sleep(0.01)
    assert udp.transport is not None
    ours = udp.transport.get_extra_info("sockname")[:2]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        stranger.sendto(_answer(datagram), ours)  # right id, wrong address
        stranger.sendto(b"\x30\x03garbage", ours)
    answer = await waiting
    assert answer[0] == rid
    assert udp.dropped == 2


async def test_a_cancelled_request_leaves_nothing_behind(udp: SnmpUdp) -> None:
    _, address = await _agent(ignore=100)
    rid, datagram = _request(udp)
    task = asyncio.create_task(udp.exchange(address, rid, datagram, 10.0, 3))
    await asyncio.sleep(0.05)
    assert rid in udp.pending
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert udp.pending == {}


async def test_request_ids_in_use_are_not_handed_out_again(udp: SnmpUdp) -> None:
    first = udp.request_id()
    udp.pending[first + 1] = None  # type: ignore[assignment]
    assert udp.request_id() == first + 2
