"""The stream faults both websocket hosts of the local exchange share (the Binance user stream and
Bybit's private stream): cut the sockets, or stall them and cut them later (docs/sim.md, "Faults")."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol

from websockets.asyncio.server import ServerConnection


class FaultableConn(Protocol):
    ws: ServerConnection
    stalled_until: float


class SocketFaults:
    """Mixed into a stream host that keeps its background tasks in `_tasks` and lists its sockets
    with `connections(api_key)`; a host that also serves public streams widens `sockets`."""

    _tasks: set[asyncio.Task[None]]

    def connections(self, api_key: str | None = None) -> Sequence[FaultableConn]:
        raise NotImplementedError

    def sockets(self, api_key: str | None = None) -> Sequence[FaultableConn]:
        """The sockets a fault hits: `api_key`'s, or (None) every socket of the host."""
        return self.connections(api_key)

    def drop(self, api_key: str | None = None) -> int:
        """Cut the matching sockets without a close frame (the client sees 1006)."""
        conns = self.sockets(api_key)
        for conn in conns:
            conn.ws.transport.abort()
        return len(conns)

    def stall(self, seconds: float, api_key: str | None = None) -> int:
        """For `seconds` the sockets deliver nothing and answer no pings; then they are cut."""
        conns = self.sockets(api_key)
        for conn in conns:
            conn.stalled_until = time.monotonic() + seconds
            conn.ws.transport.pause_reading()
            self._spawn(self._cut_later(conn, seconds))
        return len(conns)

    def cut_stalled(self) -> None:
        """At stop: a stalled socket reads nothing, so it would hold the server's close handshake
        for its whole close timeout; cut it instead."""
        now = time.monotonic()
        for conn in self.connections():
            if conn.stalled_until > now:
                conn.ws.transport.abort()

    async def _cut_later(self, conn: FaultableConn, seconds: float) -> None:
        await asyncio.sleep(seconds)
        conn.ws.transport.abort()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
