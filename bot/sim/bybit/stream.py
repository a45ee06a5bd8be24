"""The Bybit V5 private websocket (`/v5/private`) on its own port: auth op, subscribe to execution /
order / position / wallet (and their `.linear` variants), ping/pong, and the engine's events for
Bybit accounts as Bybit frames (topic, id, creationTime, data list).

Frames are queued per connection the moment the engine produces them and written by one task per
connection, so an account's frames keep their order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from bot.sim.accounts import Account, Trade
from bot.sim.bybit.auth import ws_auth_error
from bot.sim.bybit.ledger import funding_execution_json
from bot.sim.bybit.tickers import PUBLIC_PATH, BybitTickers
from bot.sim.bybit.venue import BybitVenue
from bot.sim.bybit.wire import execution_json, fees_by_order, order_json, position_json, wallet_json
from bot.sim.jsonfast import dumps
from bot.sim.marketstream import PublicStreams
from bot.sim.matching import MatchingEngine
from bot.sim.socket_faults import FaultableConn, SocketFaults

PRIVATE_PATH = "/v5/private"
TOPICS = frozenset(
    {"execution", "order", "position", "wallet", "execution.linear", "order.linear", "position.linear"}
)
_CLOSE = object()
ZERO = Decimal(0)


@dataclass(eq=False, slots=True)
class _Conn:
    ws: ServerConnection
    conn_id: str
    api_key: str = ""
    topics: set[str] = field(default_factory=set)
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    stalled_until: float = 0.0


class BybitStream(SocketFaults):
    def __init__(self, engine: MatchingEngine, venue: BybitVenue) -> None:
        self.engine = engine
        self.venue = venue
        self._conns: dict[str, set[_Conn]] = {}  # authenticated connections per api_key
        self._all: set[_Conn] = set()
        self._server: Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.url = ""
        self.public = PublicStreams(BybitTickers(engine, venue))  # `/v5/public/linear`, same host

    def wants(self, api_key: str) -> bool:
        return api_key in self._conns

    # -- engine events -> Bybit frames --------------------------------------------------------------

    def publish(self, api_key: str, event: dict[str, Any]) -> None:
        conns = self._conns.get(api_key)
        if not conns:
            return
        account = self.engine.accounts[api_key]
        kind = event.get("e")
        frames: list[tuple[str, list[dict[str, Any]]]] = []
        if kind == "ORDER_TRADE_UPDATE":
            o = event["o"]
            order = account.orders.get(o["i"])
            if order is None:
                return
            fee = fees_by_order(account, [order]).get(order.order_id, ZERO)
            if o["x"] == "TRADE":
                trade = self._trade(account, int(o["t"]))
                if trade is not None:
                    mark = self.engine.books[trade.symbol].fair
                    frames.append(
                        ("execution", [execution_json(self.venue, trade, order, mark, stream=True)])
                    )
            frames.append(("order", [order_json(self.venue, order, fee, stream=True)]))
        elif kind == "ALGO_UPDATE":  # a conditional order's Untriggered / Triggered / Deactivated
            cond = self.engine.conditionals.of(account).get(event["o"]["aid"])
            held = cond.placeholder if cond is not None else None
            if held is None or held.status not in ("UNTRIGGERED", "TRIGGERED", "DEACTIVATED"):
                return
            frames.append(("order", [order_json(self.venue, held, ZERO, stream=True)]))
        elif kind == "ACCOUNT_UPDATE":
            if event["a"].get("m") == "FUNDING_FEE":  # the funding just settled, as executions
                paid = [f for f in account.fundings if f.time_ms == event["E"]]
                data = [funding_execution_json(self.venue, f, stream=True) for f in paid]
                if data:
                    frames.append(("execution", data))
            realised = self.venue.realised(account)
            for p in event["a"]["P"]:
                m = self.venue.by_engine[p["s"]]
                mark = self.engine.books[p["s"]].fair
                pos, cum = account.position(p["s"]), realised.get(p["s"], ZERO)
                row = position_json(self.venue, m, account, pos, mark, cum, stream=True)
                frames.append(("position", [row]))
            frames.append(("wallet", [wallet_json(self.engine, account, sum(realised.values(), ZERO))]))
        now = time.monotonic()
        created = self.venue.now_ms()
        for conn in conns:
            if conn.stalled_until > now:
                continue  # a half-dead socket loses what is sent meanwhile
            for topic, data in frames:
                for name in (topic, f"{topic}.linear"):
                    if name in conn.topics:
                        frame = {"id": uuid.uuid4().hex, "topic": name, "creationTime": created, "data": data}
                        conn.queue.put_nowait(dumps(frame))

    @staticmethod
    def _trade(account: Account, trade_id: int) -> Trade | None:
        for trade in reversed(account.trades):  # the fill just appended is the last one
            if trade.trade_id == trade_id:
                return trade
        return None

    # -- faults and revocation ------------------------------------------------------------------------

    def connections(self, api_key: str | None = None) -> list[_Conn]:
        if api_key is None:
            return list(self._all)
        return list(self._conns.get(api_key, ()))

    def sockets(self, api_key: str | None = None) -> list[FaultableConn]:
        """What a fault hits: an account's sockets, or every socket of the host (public too)."""
        private: list[FaultableConn] = list(self.connections(api_key))
        return private + list(self.public.connections(api_key))

    def close_account(self, api_key: str) -> int:
        """A revoked key: its sockets are closed."""
        conns = self.connections(api_key)
        for conn in conns:
            conn.queue.put_nowait(_CLOSE)
        return len(conns)

    # -- the websocket host -------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path.split("?", 1)[0] not in (PRIVATE_PATH, PUBLIC_PATH):
            return Response(HTTPStatus.NOT_FOUND.value, "Not Found", Headers(), b"")
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path.split("?", 1)[0] == PUBLIC_PATH:
            await self.public.handle(ws)
            return
        conn = _Conn(ws, uuid.uuid4().hex[:20])
        self._all.add(conn)
        writer = asyncio.ensure_future(self._write(conn))
        try:
            async for raw in ws:
                self._on_message(conn, raw)
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            self._all.discard(conn)
            conns = self._conns.get(conn.api_key)
            if conns is not None:
                conns.discard(conn)
                if not conns:
                    del self._conns[conn.api_key]

    def _reply(self, conn: _Conn, message: dict[str, Any]) -> None:
        conn.queue.put_nowait(dumps(message))

    def _on_message(self, conn: _Conn, raw: str | bytes) -> None:
        try:
            msg = json.loads(raw)
        except ValueError:
            self._reply(conn, {"success": False, "ret_msg": "error:invalid op", "conn_id": conn.conn_id})
            return
        if not isinstance(msg, dict):
            return
        op = msg.get("op")
        base: dict[str, Any] = {"conn_id": conn.conn_id, "op": op}
        if "req_id" in msg:
            base["req_id"] = msg["req_id"]
        if op == "ping":
            self._reply(conn, base | {"op": "pong", "args": [str(self.venue.now_ms())]})
        elif op == "auth":
            account, error = ws_auth_error(self.engine.accounts, msg.get("args"), self.venue.now_ms())
            if account is None:
                self._reply(conn, base | {"success": False, "ret_msg": error})
                return
            conn.api_key = account.api_key
            self._conns.setdefault(account.api_key, set()).add(conn)
            self._reply(conn, base | {"success": True, "ret_msg": ""})
        elif op in ("subscribe", "unsubscribe"):
            args = msg.get("args")
            if not conn.api_key:
                self._reply(conn, base | {"success": False, "ret_msg": "Request not authorized"})
                return
            if not isinstance(args, list) or not all(isinstance(a, str) and a in TOPICS for a in args):
                self._reply(
                    conn, base | {"success": False, "ret_msg": f"error:handler not found,topic:{args}"}
                )
                return
            if op == "subscribe":
                conn.topics.update(args)
            else:
                conn.topics.difference_update(args)
            self._reply(conn, base | {"success": True, "ret_msg": ""})
        else:
            self._reply(conn, base | {"success": False, "ret_msg": f"error:invalid op {op}"})

    async def _write(self, conn: _Conn) -> None:
        while True:
            item = await conn.queue.get()
            if item is _CLOSE:
                await conn.ws.close()
                return
            if conn.stalled_until > time.monotonic():
                continue
            with contextlib.suppress(ConnectionClosed):
                await conn.ws.send(item, text=True)

    async def start(self, host: str, port: int) -> str:
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._process_request,
            ping_interval=self.engine.config.ping_interval_s,
            ping_timeout=self.engine.config.ping_interval_s,
            compression=None,
            max_queue=64,
        )
        sock_port = next(iter(self._server.sockets)).getsockname()[1]
        self.url = f"ws://{host}:{sock_port}"
        return self.url

    async def stop(self) -> None:
        await self.public.stop()
        for task in list(self._tasks):
            task.cancel()
        self.cut_stalled()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
