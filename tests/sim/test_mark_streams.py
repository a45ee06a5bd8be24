"""The public mark-price streams, driven by ccxt.pro's own methods: binanceusdm.watch_mark_prices
and bybit.watch_tickers against the sim, values checked against the REST mark price."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import ccxt.pro as ccxtpro
import pytest
from websockets.asyncio.client import connect

from bot.sim.server import SimExchange
from tests.sim.bybit_clients import BTC, PEPE, THIN
from tests.sim.test_faults import inject

BTC_ID = "BTCUSDT"


async def admin_post(sim: SimExchange, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.post(sim.rest_url + path, json=body) as resp:
        assert resp.status == 200, await resp.text()
        data: dict[str, Any] = await resp.json()
        return data


async def set_price(sim: SimExchange, symbol: str, price: str) -> None:
    result = await admin_post(sim, "/_sim/price", {"symbol": symbol, "price": price})
    assert result["price"] == price


async def mark_until(watch: Any, symbol: str, field: str, wanted: str, timeout: float = 5) -> dict[str, Any]:
    """The first update of `symbol` whose raw `field` is `wanted`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tickers = await asyncio.wait_for(watch(), deadline - time.monotonic())
        ticker = tickers.get(symbol)
        if ticker is not None and ticker["info"].get(field) == wanted:
            return dict(ticker)
    raise AssertionError(f"{symbol} never showed {field}={wanted}")


async def test_binance_mark_prices_equal_rest_and_follow_the_price(pro: Any, sim: SimExchange) -> None:
    first = await asyncio.wait_for(pro.watch_mark_prices([BTC, THIN]), 5)
    rest = await pro.fapiPublicGetPremiumIndex({"symbol": BTC_ID})
    symbol, ticker = next(iter(first.items()))
    assert ticker["info"]["e"] == "markPriceUpdate"
    row = rest if symbol == BTC else await pro.fapiPublicGetPremiumIndex({"symbol": "THINUSDT"})
    assert ticker["info"]["p"] == row["markPrice"]
    assert set(ticker["info"]) == {"e", "E", "s", "p", "i", "P", "r", "T"}
    client = next(iter(pro.clients.values()))
    assert "/market/ws/" in client.url

    await set_price(sim, BTC_ID, "61234.5")
    started = time.monotonic()
    moved = await mark_until(lambda: pro.watch_mark_prices([BTC, THIN]), BTC, "p", "61234.5")
    assert time.monotonic() - started < 2  # @1s: a second (plus a tick) behind at most, some slack
    assert moved["markPrice"] == 61234.5
    assert (await pro.fapiPublicGetPremiumIndex({"symbol": BTC_ID}))["markPrice"] == "61234.5"


async def test_binance_all_market_array_and_3s_form(sim: SimExchange) -> None:
    async with connect(f"{sim.ws_url}/market/ws") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["!markPrice@arr@1s"], "id": 7}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"result": None, "id": 7}
        batch = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert {e["s"] for e in batch} == set(sim.engine.books)
        await ws.send(json.dumps({"method": "UNSUBSCRIBE", "params": ["!markPrice@arr@1s"], "id": 8}))
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@markPrice"], "id": 9}))
        times = []
        while len(times) < 2:
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            if isinstance(message, dict) and message.get("e") == "markPriceUpdate":
                times.append(time.monotonic())
        assert 2.5 < times[1] - times[0] < 3.5  # the 3 s form


async def test_binance_refuses_what_it_does_not_serve(sim: SimExchange) -> None:
    async with connect(f"{sim.ws_url}/ws") as ws:
        await ws.send(json.dumps({"method": "SUBSCRIBE", "params": ["btcusdt@depth"], "id": 1}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert reply["id"] == 1
        assert reply["error"]["code"] == 2
        await ws.send("not json")
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["error"]["code"] == 3
        await ws.send(json.dumps({"method": "FETCH", "params": [], "id": 2}))
        assert "unknown variant" in json.loads(await asyncio.wait_for(ws.recv(), 5))["error"]["msg"]


async def test_public_connections_count_against_the_attempt_limit() -> None:
    from tests.sim.conftest import frozen_config

    async with SimExchange(frozen_config(ws_connect_limit=2)) as sim:
        for _ in range(2):
            async with connect(f"{sim.ws_url}/market/ws/1"):
                pass
        with pytest.raises(Exception, match="429"):
            await connect(f"{sim.ws_url}/market/ws/1")


async def test_binance_public_drop_fails_the_watcher_then_reconnects(pro: Any, sim: SimExchange) -> None:
    await asyncio.wait_for(pro.watch_mark_prices([BTC]), 5)
    pending = asyncio.create_task(pro.watch_mark_prices([BTC]))
    await asyncio.sleep(0)
    assert (await inject(sim, {"drop_ws": True, "public_ws": True}))["dropped"] == 1
    with pytest.raises(ccxtpro.NetworkError):
        await asyncio.wait_for(pending, 5)
    again = await asyncio.wait_for(pro.watch_mark_prices([BTC]), 5)  # a new socket
    assert again[BTC]["info"]["p"] == "60000"
    assert len(sim.stream.public.connections()) == 1


async def test_bybit_tickers_snapshot_then_deltas(bybit_pro: Any, bsim: SimExchange, bybit: Any) -> None:
    tickers = await asyncio.wait_for(bybit_pro.watch_tickers([BTC]), 5)
    rest = await bybit.fetch_ticker(BTC)
    assert tickers[BTC]["info"]["markPrice"] == rest["info"]["markPrice"]
    client = next(iter(bybit_pro.clients.values()))
    assert client.url.endswith("/v5/public/linear")

    await set_price(bsim, BTC_ID, "59876.5")
    moved = await mark_until(lambda: bybit_pro.watch_tickers([BTC]), BTC, "markPrice", "59876.5", 2)
    assert moved["markPrice"] == 59876.5
    assert (await bybit.fetch_ticker(BTC))["info"]["markPrice"] == "59876.5"


async def test_bybit_ticker_of_a_listing_in_other_units(bybit_pro: Any, bybit: Any) -> None:
    ticker = await asyncio.wait_for(bybit_pro.watch_ticker(PEPE), 5)
    assert ticker["info"]["markPrice"] == (await bybit.fetch_ticker(PEPE))["info"]["markPrice"]


async def test_bybit_public_protocol_replies(bsim: SimExchange) -> None:
    async with connect(f"{bsim.urls['bybit']['ws']}/v5/public/linear") as ws:
        await ws.send(json.dumps({"op": "subscribe", "args": ["tickers.NOPEUSDT"], "req_id": "a"}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert reply["success"] is False
        assert reply["req_id"] == "a"
        await ws.send(json.dumps({"op": "ping", "req_id": "p"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["ret_msg"] == "pong"
        await ws.send(json.dumps({"op": "subscribe", "args": ["tickers.BTCUSDT"]}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 5))["success"] is True
        snapshot = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert snapshot["type"] == "snapshot"
        assert snapshot["data"]["symbol"] == "BTCUSDT"
        await set_price(bsim, BTC_ID, "60001")
        delta = json.loads(await asyncio.wait_for(ws.recv(), 2))
        assert delta["type"] == "delta"
        assert delta["data"]["markPrice"] == "60001"


async def test_bybit_public_stall_then_cut(bybit_pro: Any, bsim: SimExchange) -> None:
    await asyncio.wait_for(bybit_pro.watch_tickers([THIN]), 5)
    await set_price(bsim, "THINUSDT", "1.5")  # a delta that the stalled socket must lose
    result = await admin_post(bsim, "/_sim/faults", {"stall_ws": 0.3, "venue": "bybit", "public_ws": True})
    assert result["stalled"] == 1
    started = time.monotonic()
    with pytest.raises(ccxtpro.NetworkError):  # nothing arrives while stalled, then the cut
        await asyncio.wait_for(bybit_pro.watch_tickers([THIN]), 5)
    assert time.monotonic() - started >= 0.25
