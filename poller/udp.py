"""One UDP socket per worker process for v1/v2c requests: send, match the answer, resend.

Responses are matched by request id and by the address they came from (a datagram from
anyone else, or that does not parse, is counted and dropped, as pysnmp drops it). A
request is sent again with the same id after each ``timeout`` without an answer, up to
``retries`` times, so a late answer to an earlier send still counts; then
:class:`RequestTimedOut`. Timers are loop callbacks, not tasks: a request costs one
future and one timer handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from dataclasses import dataclass, field
from typing import cast

from poller.ber import BerError, Response, decode_response

__all__ = ["RequestTimedOut", "SnmpUdp"]

_RECEIVE_BUFFER = 4 << 20


class RequestTimedOut(Exception):
    """No answer after every retry."""


@dataclass(slots=True, eq=False)
class _Pending:
    future: asyncio.Future[Response]
    address: tuple[str, int]
    datagram: bytes
    timeout: float
    retries_left: int
    timer: asyncio.TimerHandle | None = None


@dataclass(eq=False)
class SnmpUdp(asyncio.DatagramProtocol):
    """The socket and the requests waiting on it."""

    transport: asyncio.DatagramTransport | None = None
    pending: dict[int, _Pending] = field(default_factory=dict)
    #: datagrams dropped: not a response, unknown request id, or a stranger's address
    dropped: int = 0
    _next_id: int = field(default_factory=lambda: random.randrange(1, 1 << 30))

    _starting: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Open the socket (once, however many requests wait for it)."""
        if self._starting is None:
            self._starting = asyncio.create_task(self._open())
        await asyncio.shield(self._starting)

    async def _open(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
        sock.bind(("0.0.0.0", 0))
        sock.setblocking(False)
        await asyncio.get_running_loop().create_datagram_endpoint(lambda: self, sock=sock)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def request_id(self) -> int:
        """A request id not in use (ids wrap below 2**31)."""
        n = self._next_id
        while n in self.pending:
            n = n % 0x7FFFFFFF + 1
        self._next_id = n % 0x7FFFFFFF + 1
        return n

    async def exchange(
        self,
        address: tuple[str, int],
        request_id: int,
        datagram: bytes,
        wait: float,
        retries: int,
    ) -> Response:
        """Send ``datagram`` (whose request id is ``request_id``) to ``address``; its answer.

        Sent again after each ``wait`` seconds without one, ``retries`` times.
        """
        if self.transport is None:
            await self.start()
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        entry = _Pending(loop.create_future(), address, datagram, wait, retries)
        self.pending[request_id] = entry
        try:
            self._send(entry, loop)
            return await entry.future
        finally:
            if entry.timer is not None:
                entry.timer.cancel()
            if self.pending.get(request_id) is entry:
                del self.pending[request_id]

    def _send(self, entry: _Pending, loop: asyncio.AbstractEventLoop) -> None:
        assert self.transport is not None
        self.transport.sendto(entry.datagram, entry.address)
        entry.timer = loop.call_later(entry.timeout, self._expired, entry, loop)

    def _expired(self, entry: _Pending, loop: asyncio.AbstractEventLoop) -> None:
        if entry.future.done():
            return
        if entry.retries_left <= 0:
            entry.future.set_exception(RequestTimedOut())
            return
        entry.retries_left -= 1
        try:
            self._send(entry, loop)
        except OSError as exc:
            entry.future.set_exception(exc)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            response = decode_response(data)
        except BerError:
            self.dropped += 1
            return
        entry = self.pending.get(response[0])
        if entry is None or entry.future.done() or entry.address != addr[:2]:
            self.dropped += 1
            return
        entry.future.set_result(response)

    def error_received(self, exc: Exception) -> None:
        # ICMP errors on an unconnected socket name no request: the request times out
        pass

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None
        self._starting = None
