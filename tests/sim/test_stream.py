"""The user data stream: ccxt.pro watchers receiving partial fills as the price moves, and the
listenKey lifecycle and stream faults seen from a client."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import ccxt.pro as ccxtpro
import pytest
import websockets
from websockets.asyncio.client import connect

from bot.sim.server import SimExchange
from bot.venues import VenueMode, make_pro
from tests.sim.conftest import KEY, frozen_config
from tests.sim.test_faults import inject

THIN = "THIN/USDT:USDT"


async def stream_connected(sim: SimExchange, api_key: str = KEY) -> None:
    for _ in range(200):
        if sim.stream.connections(api_key):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the client never opened its user stream")


async def rest_listen_key(sim: SimExchange, pro: Any) -> str:
    key: str = (await pro.fapiPrivatePostListenKey())["listenKey"]
    return key


async def test_watchers_get_partial_fills_of_a_resting_limit(pro: Any, sim: SimExchange) -> None:
    def watch_all() -> list[asyncio.Task[Any]]:
        # ccxt resolves a watcher only on a message that arrives while it is pending
        return [
            asyncio.create_task(pro.watch_my_trades(THIN)),
            asyncio.create_task(pro.watch_orders(THIN)),
            asyncio.create_task(pro.watch_positions([THIN])),
        ]

    watchers = watch_all()
    await stream_connected(sim)
    order = await pro.create_order(THIN, "limit", "buy", 500, 0.99, params={"clientOrderId": "rest-1"})
    assert order["status"] == "open"
    fills: list[dict[str, Any]] = []
    statuses: list[str] = []
    positions: list[float] = []
    # Each step brings more of the ask ladder down to 0.99; the last one reaches all of it.
    for fair in ("0.9870", "0.9850", "0.9700"):
        sim.engine.set_price("THINUSDT", Decimal(fair))
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
    assert all(t["info"]["c"] == "rest-1" for t in fills)
    assert statuses[-1] == "closed"
    assert "open" in statuses[:-1]
    assert positions[-1] == 500
    assert positions == sorted(positions)


async def test_drop_ws_fails_the_pending_watcher(pro: Any, sim: SimExchange) -> None:
    watcher = asyncio.create_task(pro.watch_my_trades(THIN))
    await stream_connected(sim)
    assert (await inject(sim, {"drop_ws": True}))["dropped"] == 1
    with pytest.raises(ccxtpro.NetworkError):
        await asyncio.wait_for(watcher, 5)


async def test_expired_listen_key_is_announced_then_the_socket_closes(pro: Any, sim: SimExchange) -> None:
    key = await rest_listen_key(sim, pro)
    async with connect(f"{sim.ws_url}/ws/{key}") as ws:
        await inject(sim, {"expire_listen_keys": True, "api_key": KEY})
        event = await asyncio.wait_for(ws.recv(), 5)
        assert '"e":"listenKeyExpired"' in str(event)
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    with pytest.raises(websockets.InvalidStatus) as rejected:
        await connect(f"{sim.ws_url}/private/ws?listenKey={key}")
    assert rejected.value.response.status_code == 400


async def test_listen_key_expires_unless_extended() -> None:
    async with SimExchange(frozen_config(listen_key_ttl_s=1.0)) as sim:
        sim.create_account("k", "s", Decimal(1000))
        client = make_pro(
            "binanceusdm", VenueMode.SIM, api_key="k", secret="s", rest_url=sim.rest_url, ws_url=sim.ws_url
        )
        try:
            key = (await client.fapiPrivatePostListenKey())["listenKey"]
            async with connect(f"{sim.ws_url}/ws?listenKey={key}") as ws:
                for _ in range(6):  # 1.5 s of keepalives, each resetting the 1 s lifetime
                    await asyncio.sleep(0.25)
                    assert (await client.fapiPrivatePutListenKey())["listenKey"] == key
                event = await asyncio.wait_for(ws.recv(), 5)  # no more keepalives: it expires
                assert '"listenKeyExpired"' in str(event)
            with pytest.raises(ccxtpro.ExchangeError, match="-1125"):
                await client.fapiPrivatePutListenKey()
        finally:
            await client.close()


async def test_unknown_listen_key_is_refused_at_handshake(sim: SimExchange) -> None:
    with pytest.raises(websockets.InvalidStatus) as rejected:
        await connect(f"{sim.ws_url}/ws/not-a-key")
    assert rejected.value.response.status_code == 400


async def test_stall_loses_events_and_pongs_then_closes(pro: Any, sim: SimExchange) -> None:
    key = await rest_listen_key(sim, pro)
    async with connect(f"{sim.ws_url}/ws/{key}", ping_interval=None) as ws:
        await stream_connected(sim)
        assert (await inject(sim, {"stall_ws": 0.6}))["stalled"] == 1
        pong = await ws.ping()
        await pro.create_order(THIN, "market", "buy", 10)  # its events are lost
        await asyncio.sleep(0.3)
        assert not pong.done()
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert sim.engine.accounts[KEY].position("THINUSDT").amt == 10


async def test_stall_fails_a_ccxt_watcher(pro: Any, sim: SimExchange) -> None:
    watcher = asyncio.create_task(pro.watch_my_trades(THIN))
    await stream_connected(sim)
    await inject(sim, {"stall_ws": 0.3})
    await pro.create_order(THIN, "market", "buy", 10)
    with pytest.raises(ccxtpro.NetworkError):
        await asyncio.wait_for(watcher, 5)  # closed without ever delivering the fill
