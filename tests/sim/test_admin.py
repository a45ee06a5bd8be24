"""The admin API and the `copybot sim` process."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from decimal import Decimal

import aiohttp
import ccxt.async_support as ccxt
import pytest

from bot.sim.server import SimExchange
from tests.sim.conftest import KEY, ClientFactory

BTC = "BTC/USDT:USDT"


async def test_accounts_orders_and_timestamps(sim: SimExchange, clients: ClientFactory) -> None:
    async with aiohttp.ClientSession() as http:
        spec = {"api_key": "bob", "secret": "bob-secret", "balance": "2500.5", "name": "bob"}
        async with http.post(sim.rest_url + "/_sim/accounts", json=spec) as r:
            assert r.status == 201
        async with http.post(sim.rest_url + "/_sim/accounts", json=spec) as r:
            assert r.status == 409
        async with http.get(sim.rest_url + "/_sim/accounts") as r:
            assert {a["api_key"] for a in await r.json()} == {KEY, "bob"}
        bob = clients("bob", "bob-secret")
        await bob.load_markets()
        await bob.create_order(BTC, "market", "buy", 0.002, params={"clientOrderId": "first"})
        middle = time.time_ns()
        await bob.create_order(BTC, "market", "buy", 0.002, params={"clientOrderId": "second"})
        async with http.get(sim.rest_url + "/_sim/accounts/bob") as r:
            state = await r.json()
        async with http.get(f"{sim.rest_url}/_sim/accounts/bob?since_ns={middle}") as r:
            later = await r.json()
    assert [o["clientOrderId"] for o in state["orders"]] == ["first", "second"]
    assert [o["clientOrderId"] for o in later["orders"]] == ["second"]
    assert [t["clientOrderId"] for t in later["trades"]] == ["second"]
    first = state["orders"][0]
    assert first["recvTimeNs"] <= state["trades"][0]["timeNs"] <= first["ackTimeNs"]
    assert state["positions"][0]["positionAmt"] == "0.004"
    assert Decimal(state["balance"]) < Decimal("2500.5")  # taker fees


async def test_price_book_and_revoke(sim: SimExchange, rest: ccxt.Exchange) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(sim.rest_url + "/_sim/price", json={"symbol": "BTCUSDT", "price": "65000"}) as r:
            assert (await r.json())["price"] == "65000"
        async with http.get(sim.rest_url + "/_sim/book/BTCUSDT") as r:
            book = await r.json()
        assert book["fair"] == "65000"
        assert Decimal(book["bids"][0][0]) < 65000 < Decimal(book["asks"][0][0])
        async with http.post(f"{sim.rest_url}/_sim/accounts/{KEY}/revoke") as r:
            assert r.status == 200
    with pytest.raises(ccxt.AuthenticationError, match="-2015"):
        await rest.fetch_balance()


async def test_cli_prints_its_urls_and_stops_on_sigterm() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.sim.cli", "--tick-interval", "0", "--no-rate-limits",
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        urls = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        assert urls["rest"].startswith("http://127.0.0.1:")
        assert urls["ws"].startswith("ws://127.0.0.1:")
        async with aiohttp.ClientSession() as http:
            async with http.get(urls["rest"] + "/fapi/v1/ping") as r:
                assert r.status == 200
            async with http.get(urls["rest"] + "/fapi/v1/exchangeInfo") as r:
                limits = {
                    (x["rateLimitType"], x["intervalNum"]): x["limit"] for x in (await r.json())["rateLimits"]
                }
            assert min(limits.values()) == 10**12  # --no-rate-limits
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
