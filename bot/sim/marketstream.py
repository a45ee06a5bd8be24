"""Public market streams of the local exchange: the mark price of every market, pushed over the
venues' own websocket protocols (docs/sim.md, "Public market streams").

One `MarkClock` ticks for the whole exchange; on each tick every venue's `PublicStreams` lets its
protocol queue what is due on each socket: Binance's `markPriceUpdate` every 1 s (or 3 s), Bybit's
`tickers` delta when something changed (Bybit pushes linear tickers every 100 ms). The source is the
engine's fair price (`Book.fair`: the random walk, or `POST /_sim/price`), the same figure REST
serves as markPrice. Public sockets take the same drop and stall faults as the private ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from bot.sim.jsonfast import dumps
from bot.sim.socket_faults import SocketFaults

# The finest cadence any venue pushes public market data at (Bybit linear tickers: 100 ms).
TICK_S = 0.1


@dataclass(eq=False, slots=True)
class PublicConn:
    ws: ServerConnection
    conn_id: str
    topics: set[str] = field(default_factory=set)
    queue: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    stalled_until: float = 0.0
    due: dict[str, float] = field(default_factory=dict)  # next push per topic (monotonic)
    sent: dict[str, dict[str, str]] = field(default_factory=dict)  # last fields sent per topic

    def send(self, message: dict[str, Any] | list[Any]) -> None:
        if self.stalled_until <= time.monotonic():  # a half-dead socket loses what is sent meanwhile
            self.queue.put_nowait(dumps(message))


class PublicProtocol(Protocol):
    """One venue's public-stream wire protocol."""

    def on_message(self, conn: PublicConn, message: Any) -> None:
        """A client frame, already parsed (None: not JSON): answer on `conn`."""
        ...

    def on_tick(self, conn: PublicConn, now: float) -> None:
        """Queue on `conn` what its subscriptions have due at `now` (monotonic)."""
        ...


class PublicStreams(SocketFaults):
    """The public sockets of one venue's websocket host; the host hands them over after the
    handshake (`handle`)."""

    def __init__(self, protocol: PublicProtocol) -> None:
        self.protocol = protocol
        self._conns: set[PublicConn] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._next_id = 0

    def connections(self, api_key: str | None = None) -> list[PublicConn]:
        return list(self._conns) if api_key is None else []  # public sockets belong to no account

    async def handle(self, ws: ServerConnection) -> None:
        self._next_id += 1
        conn = PublicConn(ws, f"pub-{self._next_id}")
        self._conns.add(conn)
        writer = asyncio.ensure_future(self._write(conn))
        try:
            async for raw in ws:
                try:
                    message = json.loads(raw)
                except ValueError:
                    message = None
                self.protocol.on_message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            self._conns.discard(conn)

    async def _write(self, conn: PublicConn) -> None:
        while True:
            item = await conn.queue.get()
            if conn.stalled_until > time.monotonic():
                continue
            with contextlib.suppress(ConnectionClosed):
                await conn.ws.send(item, text=True)

    def tick(self, now: float) -> None:
        for conn in list(self._conns):
            if conn.topics and conn.stalled_until <= now:
                self.protocol.on_tick(conn, now)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        now = time.monotonic()
        for conn in self._conns:  # a stalled socket reads no close frame: the server would wait on it
            if conn.stalled_until > now:
                conn.ws.transport.abort()


class MarkClock:
    """The one ticking source of public updates: every `TICK_S` each venue's public sockets get
    what is due. Idle (no socket) it costs one wake-up per tick."""

    def __init__(self, streams: Sequence[PublicStreams], clock: Callable[[], float] = time.monotonic) -> None:
        self.streams = list(streams)
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            now = self._clock()
            for streams in self.streams:
                streams.tick(now)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
