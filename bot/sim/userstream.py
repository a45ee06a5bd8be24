"""The user data stream: listenKeys and the websocket host that delivers each account's
ORDER_TRADE_UPDATE / ACCOUNT_UPDATE events, on its own port as on Binance.

Events are queued per connection the moment the engine produces them and written by one task per
connection, so an account's events keep their order and nothing batches them.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from bot.sim.accounts import SimError
from bot.sim.jsonfast import dumps
from bot.sim.limits import Limits
from bot.sim.marketstream import PublicStreams
from bot.sim.markprice import BinanceMarkPrices
from bot.sim.matching import MatchingEngine
from bot.sim.socket_faults import FaultableConn, SocketFaults

_CLOSE = object()  # queue marker: close the socket normally after what is queued


@dataclass(slots=True)
class _Key:
    api_key: str
    expires_at: float  # time.monotonic()


@dataclass(eq=False, slots=True)
class _Conn:
    ws: ServerConnection
    api_key: str
    listen_key: str
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    stalled_until: float = 0.0


def listen_key_of(path: str) -> str | None:
    """`/ws/<key>`, `/private/ws?listenKey=<key>` or `/ws?listenKey=<key>`."""
    parts = urlsplit(path)
    if parts.path.startswith("/ws/") and len(parts.path) > 4:
        return parts.path[4:]
    if parts.path in ("/ws", "/private/ws", "/ws/"):
        values = parse_qs(parts.query).get("listenKey")
        return values[0] if values else None
    return None


def is_public(path: str) -> bool:
    """The market streams: `/market/ws[/<id>]` (where ccxt sends them) or a bare `/ws`."""
    parts = urlsplit(path)
    if parts.path == "/market/ws" or parts.path.startswith("/market/ws/"):
        return True
    return parts.path in ("/ws", "/ws/") and "listenKey" not in parse_qs(parts.query)


class UserStream(SocketFaults):
    def __init__(self, engine: MatchingEngine, limits: Limits | None = None) -> None:
        self.engine = engine
        self.limits = limits  # connection attempts per source address
        self.ttl_s = engine.config.listen_key_ttl_s
        self.keys: dict[str, _Key] = {}
        self._key_of_account: dict[str, str] = {}
        self._conns: dict[str, set[_Conn]] = {}
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self.url = ""
        self.public = PublicStreams(BinanceMarkPrices(engine))  # the market streams, same host
        engine.publish = self.publish
        engine.wants = self._conns.__contains__

    # -- listenKeys (called from the REST host) ---------------------------------------------------

    def create_key(self, api_key: str) -> str:
        """Binance hands back the account's live key (extended) if it has one."""
        key = self._key_of_account.get(api_key)
        if key is None or key not in self.keys:
            key = secrets.token_urlsafe(48)
            self._key_of_account[api_key] = key
        self.keys[key] = _Key(api_key, time.monotonic() + self.ttl_s)
        return key

    def keepalive(self, api_key: str) -> str:
        key = self._key_of_account.get(api_key)
        if key is None or key not in self.keys:
            raise SimError(-1125, "This listenKey does not exist.")
        self.keys[key].expires_at = time.monotonic() + self.ttl_s
        return key

    def close_key(self, api_key: str) -> None:
        key = self._key_of_account.pop(api_key, None)
        if key is not None:
            self.keys.pop(key, None)
            for conn in list(self._conns.get(api_key, ())):
                if conn.listen_key == key:
                    conn.queue.put_nowait(_CLOSE)

    def expire(self, api_key: str | None = None) -> int:
        """Expire the listenKeys of one account (or all): listenKeyExpired, then the socket closes."""
        victims = [k for k, st in self.keys.items() if api_key is None or st.api_key == api_key]
        now_ms = time.time_ns() // 1_000_000
        for key in victims:
            state = self.keys.pop(key)
            self._key_of_account.pop(state.api_key, None)
            event = {"e": "listenKeyExpired", "E": now_ms, "listenKey": key}
            for conn in list(self._conns.get(state.api_key, ())):
                if conn.listen_key == key:
                    conn.queue.put_nowait(dumps(event))
                    conn.queue.put_nowait(_CLOSE)
        return len(victims)

    # -- events ---------------------------------------------------------------------------------

    def publish(self, api_key: str, event: dict[str, Any]) -> None:
        conns = self._conns.get(api_key)
        if not conns:
            return
        data = dumps(event)
        now = time.monotonic()
        for conn in conns:
            if conn.stalled_until <= now:  # a half-dead socket loses what is sent meanwhile
                conn.queue.put_nowait(data)

    def connections(self, api_key: str | None = None) -> list[_Conn]:
        return [c for k, cs in self._conns.items() if api_key in (None, k) for c in cs]

    def sockets(self, api_key: str | None = None) -> list[FaultableConn]:
        """What a fault hits: an account's sockets, or every socket of the host (public too)."""
        private: list[FaultableConn] = list(self.connections(api_key))
        return private + list(self.public.connections(api_key))

    # -- the websocket host -----------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if self.limits is not None:
            address = str(connection.remote_address[0]) if connection.remote_address else ""
            if not self.limits.ws_attempt(address):
                cfg = self.engine.config
                msg = (
                    f"Too many connection attempts; current limit of IP({address}) is "
                    f"{cfg.ws_connect_limit} per {cfg.ws_connect_window_s:g} s."
                )
                return Response(
                    HTTPStatus.TOO_MANY_REQUESTS.value,
                    "Too Many Requests",
                    Headers([("Content-Type", "application/json")]),
                    dumps({"code": -1003, "msg": msg}),
                )
        if is_public(request.path):
            return None
        key = listen_key_of(request.path)
        state = self.keys.get(key or "")
        if state is None or state.expires_at <= time.monotonic():
            return Response(
                HTTPStatus.BAD_REQUEST.value,
                "Bad Request",
                Headers([("Content-Type", "application/json")]),
                b'{"code":-1125,"msg":"This listenKey does not exist."}',
            )
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        if ws.request is not None and is_public(ws.request.path):
            await self.public.handle(ws)
            return
        key = listen_key_of(ws.request.path if ws.request else "") or ""
        state = self.keys.get(key)
        if state is None:  # expired between handshake and here
            await ws.close(1008, "listenKey expired")
            return
        conn = _Conn(ws, state.api_key, key)
        self._conns.setdefault(conn.api_key, set()).add(conn)
        try:
            await self._write(conn)
        finally:
            conns = self._conns.get(conn.api_key)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self._conns[conn.api_key]

    async def _write(self, conn: _Conn) -> None:
        closed = asyncio.ensure_future(conn.ws.wait_closed())
        try:
            while True:
                getter = asyncio.ensure_future(conn.queue.get())
                await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    return
                item = getter.result()
                if item is _CLOSE:
                    await conn.ws.close()
                    return
                if conn.stalled_until > time.monotonic():
                    continue
                with contextlib.suppress(ConnectionClosed):
                    await conn.ws.send(item, text=True)
        finally:
            closed.cancel()

    async def _sweep(self) -> None:
        interval = min(1.0, self.ttl_s / 4)
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for key, state in list(self.keys.items()):
                if state.expires_at <= now and key in self.keys:
                    self._expire_key(key)

    def _expire_key(self, key: str) -> None:
        state = self.keys[key]
        # expire() works per account; an account has one live key, so this is the same thing
        self.expire(state.api_key)

    async def start(self, host: str, port: int) -> str:
        ping = self.engine.config.ping_interval_s
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._process_request,
            ping_interval=ping,
            ping_timeout=ping,
            compression=None,
            max_queue=64,
        )
        sock_port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://{host}:{sock_port}"
        self._sweeper = asyncio.ensure_future(self._sweep())
        return self.url

    async def stop(self) -> None:
        await self.public.stop()
        if self._sweeper is not None:
            self._sweeper.cancel()
        for task in list(self._tasks):
            task.cancel()
        self.cut_stalled()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
