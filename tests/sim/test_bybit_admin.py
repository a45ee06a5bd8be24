"""The admin API and faults for Bybit accounts, the process layout with both personalities, and
`copybot sim --venue`."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from bot.sim.server import SimExchange
from tests.sim.bybit_clients import BTC, BYBIT_KEY, make_bybit
from tests.sim.conftest import frozen_config
from tests.sim.factory import ClientFactory


async def admin(sim: SimExchange, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    base = sim.urls["bybit"]["rest"]
    async with aiohttp.ClientSession() as http, http.request(method, base + path, json=body) as resp:
        return resp.status, await resp.json()


async def test_accounts_are_created_for_a_venue(bsim: SimExchange, bybit_clients: ClientFactory) -> None:
    spec = {"api_key": "dave", "secret": "dave-secret", "balance": "5000", "venue": "bybit"}
    status, created = await admin(bsim, "POST", "/_sim/accounts", spec)
    assert (status, created["venue"]) == (201, "bybit")
    status, _ = await admin(bsim, "POST", "/_sim/accounts", spec | {"api_key": "erin", "venue": "okx"})
    assert status == 400
    _, listed = await admin(bsim, "GET", "/_sim/accounts")
    assert {a["api_key"]: a["venue"] for a in listed} == {BYBIT_KEY: "bybit", "dave": "bybit"}
    dave = bybit_clients("dave", "dave-secret")
    await dave.load_markets()
    await dave.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "d-1"})
    _, state = await admin(bsim, "GET", "/_sim/accounts/dave")
    assert state["venue"] == "bybit"
    assert [o["clientOrderId"] for o in state["orders"]] == ["d-1"]
    assert state["positions"][0]["symbol"] == "BTCUSDT"  # the admin API speaks engine symbols
    # the admin API is served on the Binance REST host too, over the same accounts
    async with aiohttp.ClientSession() as http, http.get(bsim.rest_url + "/_sim/accounts/dave") as resp:
        assert (await resp.json())["venue"] == "bybit"
    status, moved = await admin(bsim, "POST", "/_sim/price", {"symbol": "BTCUSDT", "price": "61000"})
    assert (status, moved["price"]) == (200, "61000")
    assert (await dave.fetch_ticker(BTC))["info"]["markPrice"] == "61000"
    status, _ = await admin(bsim, "POST", "/_sim/accounts/dave/revoke")
    assert status == 200
    with pytest.raises(ccxt.AuthenticationError, match="10003"):
        await dave.fetch_balance()


async def test_http_faults_hit_the_bybit_host(bybit: Any, bsim: SimExchange, binance_client: Any) -> None:
    await admin(bsim, "POST", "/_sim/faults", {"http_status": 503, "count": 1, "venue": "bybit"})
    await binance_client.fetch_balance()  # the Binance host is not affected
    with pytest.raises(ccxt.ExchangeNotAvailable):
        await bybit.fetch_balance()
    await bybit.fetch_balance()
    await admin(bsim, "POST", "/_sim/faults", {"code": 10006, "http_status": 200, "api_key": BYBIT_KEY})
    with pytest.raises(ccxt.RateLimitExceeded, match="10006"):
        await bybit.fetch_positions()
    await admin(bsim, "POST", "/_sim/faults", {"delay_ms": 300, "count": 1, "path": "/v5/account"})
    # a fault without api_key or venue is the Binance host's: nothing happens here
    started = time.monotonic()
    await bybit.fetch_balance()
    assert time.monotonic() - started < 0.3
    await admin(bsim, "POST", "/_sim/faults", {"delay_ms": 300, "count": 1, "api_key": BYBIT_KEY})
    started = time.monotonic()
    await bybit.fetch_balance()
    assert time.monotonic() - started >= 0.3
    status, cleared = await admin(bsim, "DELETE", "/_sim/faults")
    assert (status, cleared) == (200, {"cleared": True})


async def test_accept_then_timeout_executes_the_order(
    bsim: SimExchange, bybit_clients: ClientFactory
) -> None:
    client = bybit_clients()
    client.timeout = 500
    await client.load_markets()
    await admin(bsim, "POST", "/_sim/faults", {"accept_then_timeout": 1, "api_key": BYBIT_KEY})
    with pytest.raises(ccxt.RequestTimeout):
        await client.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "lost-ack"})
    (order,) = await client.fetch_closed_orders(BTC, params={"orderLinkId": "lost-ack"})
    assert (order["status"], order["filled"]) == ("closed", 0.01)
    with pytest.raises(ccxt.InvalidOrder, match="110072"):  # a retry with the same id is refused
        await client.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "lost-ack"})


async def test_venue_faults_need_the_venue_served(sim: SimExchange) -> None:
    spec = {"drop_ws": True, "venue": "bybit"}
    async with aiohttp.ClientSession() as http, http.post(sim.rest_url + "/_sim/faults", json=spec) as r:
        assert r.status == 404


async def test_bybit_alone_and_both_in_one_process() -> None:
    async with SimExchange(frozen_config(), venues=("bybit",)) as sim:
        assert set(sim.urls) == {"bybit"}
        assert (sim.rest_url, sim.ws_url) == ("", "")
        sim.create_account(BYBIT_KEY, "bob-secret", Decimal(1000), venue="bybit")
        client = make_bybit(sim)
        try:
            assert (await client.fetch_balance())["USDT"]["total"] == 1000
        finally:
            await client.close()
    async with SimExchange(frozen_config()) as sim:  # the default is unchanged: Binance only
        assert sim.bybit is None
        assert set(sim.urls) == {"binance"}
        assert sim.urls["binance"] == {"rest": sim.rest_url, "ws": sim.ws_url}
    with pytest.raises(ValueError, match="venues"):
        SimExchange(frozen_config(), venues=("okx",))


async def _cli_urls(*args: str) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.sim.cli", "--tick-interval", "0", *args, stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        urls: dict[str, Any] = json.loads(await asyncio.wait_for(proc.stdout.readline(), 20))
        if "bybit" in urls:
            rest = urls["bybit"]["rest"]
            async with aiohttp.ClientSession() as http, http.get(rest + "/v5/market/time") as r:
                assert (await r.json())["retCode"] == 0
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
        return urls
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_cli_venue_flag(tmp_path: Path) -> None:
    assert set(await _cli_urls()) == {"rest", "ws"}
    assert set(await _cli_urls("--venue", "binance")) == {"rest", "ws"}
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text("- {api_key: b, secret: s, balance: 100, venue: bybit}\n", encoding="utf-8")
    both = await _cli_urls("--venue", "both", "--accounts", str(accounts))
    assert set(both) == {"binance", "bybit"}
    assert both["bybit"]["ws"].startswith("ws://127.0.0.1:")
    assert set(both["binance"]) == {"rest", "ws"}
    alone = await _cli_urls("--venue", "bybit")
    assert set(alone) == {"bybit"}


def test_bybit_listings_must_not_collide() -> None:
    config = frozen_config()
    pepe = config.markets[-1]
    clash = pepe.model_copy(
        update={"listings": {"bybit": pepe.listings["bybit"].model_copy(update={"symbol": "BTCUSDT"})}}
    )
    with pytest.raises(ValueError, match="BTCUSDT"):
        SimExchange(config.model_copy(update={"markets": (*config.markets[:-1], clash)}), venues=("bybit",))
