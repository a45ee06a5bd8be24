"""The Bybit private websocket: ccxt.pro's bybit watchers receiving partial fills as the price
moves, and the auth / subscribe / ping protocol and stream faults seen from a raw client."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from decimal import Decimal
from typing import Any

import ccxt.pro as ccxtpro
import pytest
from websockets.asyncio.client import ClientConnection, connect

from bot.sim.server import SimExchange
from tests.sim.bybit_clients import BYBIT_KEY, BYBIT_SECRET, THIN


async def stream_connected(sim: SimExchange, api_key: str = BYBIT_KEY, topics: int = 0) -> None:
    """Wait until the client authenticated its private stream and subscribed `topics` topics."""
    assert sim.bybit is not None
    for _ in range(200):
        conns = sim.bybit.stream.connections(api_key)
        if conns and len(conns[0].topics) >= topics:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the client never authenticated (and subscribed) its private stream")


def auth_op(expires_ms: int, secret: str = BYBIT_SECRET, api_key: str = BYBIT_KEY) -> str:
    sign = hmac.new(secret.encode(), f"GET/realtime{expires_ms}".encode(), hashlib.sha256).hexdigest()
    return json.dumps({"op": "auth", "args": [api_key, str(expires_ms), sign]})


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 5))
    return data


def private_url(sim: SimExchange) -> str:
    return sim.urls["bybit"]["ws"] + "/v5/private"


async def test_watchers_get_partial_fills_of_a_resting_limit(bybit_pro: Any, bsim: SimExchange) -> None:
    def watch_all() -> list[asyncio.Task[Any]]:
        return [
            asyncio.create_task(bybit_pro.watch_my_trades(THIN)),
            asyncio.create_task(bybit_pro.watch_orders(THIN)),
            asyncio.create_task(bybit_pro.watch_positions([THIN])),
        ]

    watchers = watch_all()
    await stream_connected(bsim, topics=3)
    created = await bybit_pro.create_order(
        THIN, "limit", "buy", 500, 0.99, params={"clientOrderId": "rest-1"}
    )
    fills: list[dict[str, Any]] = []
    statuses: list[str] = []
    positions: list[float] = []
    for fair in ("0.9870", "0.9850", "0.9700"):
        bsim.engine.set_price("THINUSDT", Decimal(fair))
        trades, orders, pos = await asyncio.wait_for(asyncio.gather(*watchers), 5)
        fills += trades
        statuses += [o["status"] for o in orders]
        positions += [p["contracts"] for p in pos]
        watchers = watch_all()
    for task in watchers:
        task.cancel()
    assert sum(t["amount"] for t in fills) == 500
    assert len(fills) >= 3
    assert all(t["price"] == 0.99 for t in fills)
    assert all(t["takerOrMaker"] == "maker" for t in fills)
    assert all(t["order"] == created["id"] for t in fills)
    assert all(t["info"]["orderLinkId"] == "rest-1" for t in fills)
    assert all(t["info"]["execType"] == "Trade" and t["info"]["execId"] for t in fills)
    assert statuses[-1] == "closed"
    assert "open" in statuses[:-1]
    assert positions[-1] == 500
    assert positions == sorted(positions)


async def test_order_frames_follow_a_market_order(bybit_pro: Any, bsim: SimExchange) -> None:
    watcher = asyncio.create_task(bybit_pro.watch_orders())
    await stream_connected(bsim, topics=1)
    await bybit_pro.create_order(THIN, "market", "buy", 100, params={"clientOrderId": "mkt-1"})
    orders = await asyncio.wait_for(watcher, 5)
    while orders[-1]["status"] != "closed":
        orders = await asyncio.wait_for(bybit_pro.watch_orders(), 5)
    assert orders[-1]["clientOrderId"] == "mkt-1"
    assert orders[-1]["filled"] == 100


async def test_auth_subscribe_and_ping_as_bybit(bsim: SimExchange) -> None:
    async with connect(private_url(bsim)) as ws:
        await ws.send(json.dumps({"op": "subscribe", "args": ["order"]}))
        refused = await recv_json(ws)
        assert (refused["op"], refused["success"]) == ("subscribe", False)
        await ws.send(auth_op(int(time.time() * 1000) - 1000))  # expired
        expired = await recv_json(ws)
        assert (expired["op"], expired["success"], expired["ret_msg"]) == ("auth", False, "Params Error")
        await ws.send(auth_op(int(time.time() * 1000) + 10_000, secret="wrong"))
        assert (await recv_json(ws))["success"] is False
        await ws.send(auth_op(int(time.time() * 1000) + 10_000))
        ok = await recv_json(ws)
        assert (ok["op"], ok["success"], ok["ret_msg"]) == ("auth", True, "")
        assert ok["conn_id"]
        await ws.send(json.dumps({"op": "subscribe", "req_id": "7", "args": ["execution", "wallet"]}))
        sub = await recv_json(ws)
        assert (sub["op"], sub["success"], sub["req_id"]) == ("subscribe", True, "7")
        await ws.send(json.dumps({"op": "ping", "req_id": "p1"}))
        pong = await recv_json(ws)
        assert (pong["op"], pong["req_id"]) == ("pong", "p1")
        # a fill: one execution frame, then the wallet
        assert bsim.bybit is not None
        order = {"symbol": "THINUSDT", "side": "BUY", "type": "MARKET", "quantity": "10"}
        bsim.engine.place_order(bsim.engine.accounts[BYBIT_KEY], order, time.time_ns())
        execution = await recv_json(ws)
        assert (execution["topic"], execution["data"][0]["execQty"]) == ("execution", "10")
        assert set(execution) >= {"id", "topic", "creationTime", "data"}
        wallet = await recv_json(ws)
        assert wallet["topic"] == "wallet"
        assert wallet["data"][0]["accountType"] == "UNIFIED"


async def test_drop_ws_fails_the_pending_watcher(bybit_pro: Any, bsim: SimExchange) -> None:
    watcher = asyncio.create_task(bybit_pro.watch_my_trades(THIN))
    await stream_connected(bsim)
    dropped = await inject(bsim, {"drop_ws": True, "api_key": BYBIT_KEY})
    assert dropped["dropped"] == 1
    with pytest.raises(ccxtpro.NetworkError):
        await asyncio.wait_for(watcher, 5)


async def test_stall_ws_then_cut(bsim: SimExchange) -> None:
    async with connect(private_url(bsim)) as ws:
        await ws.send(auth_op(int(time.time() * 1000) + 10_000))
        assert (await recv_json(ws))["success"] is True
        assert (await inject(bsim, {"stall_ws": 0.3, "venue": "bybit"}))["stalled"] == 1
        with pytest.raises(Exception):  # noqa: B017 - closed abnormally (1006) after the stall
            await asyncio.wait_for(ws.recv(), 5)


async def test_revoked_key_loses_its_socket(bsim: SimExchange) -> None:
    async with connect(private_url(bsim)) as ws:
        await ws.send(auth_op(int(time.time() * 1000) + 10_000))
        assert (await recv_json(ws))["success"] is True
        await admin_post(bsim, f"/_sim/accounts/{BYBIT_KEY}/revoke", {})
        with pytest.raises(Exception):  # noqa: B017 - the server closes the socket
            await asyncio.wait_for(ws.recv(), 5)
    async with connect(private_url(bsim)) as ws:
        await ws.send(auth_op(int(time.time() * 1000) + 10_000))
        assert (await recv_json(ws))["success"] is False


async def admin_post(sim: SimExchange, path: str, body: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    async with (
        aiohttp.ClientSession() as http,
        http.post(sim.urls["bybit"]["rest"] + path, json=body) as resp,
    ):
        data: dict[str, Any] = await resp.json()
        return data


async def inject(sim: SimExchange, spec: dict[str, Any]) -> dict[str, Any]:
    return await admin_post(sim, "/_sim/faults", spec)


async def test_watch_positions_snapshot_from_rest(bybit_clients: Any, bsim: SimExchange) -> None:
    client = bybit_clients(pro=True, watchPositions={"fetchPositionsSnapshot": True})
    await client.load_markets()
    await client.create_order(THIN, "market", "buy", 50)
    snapshot = await asyncio.wait_for(client.watch_positions(), 5)  # linear and inverse via REST
    assert [(p["symbol"], p["side"], p["contracts"]) for p in snapshot] == [(THIN, "long", 50)]
