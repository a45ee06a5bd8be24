"""Bybit's own clock and late landing on the local exchange's Bybit hosts, seen by ccxt's bybit
client: a personality whose clock is offset shifts every time it emits (and reads), and an order
held inside the venue past the client's timeout still lands, once, under its orderLinkId."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from bot.sim.config import load_sim_config
from bot.sim.server import SimExchange
from tests.sim.bybit_clients import BTC, BYBIT_KEY, BYBIT_SECRET, make_bybit
from tests.sim.factory import ClientFactory, closing

OFFSET_MS = 1500


async def admin(sim: SimExchange, api_key: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{sim.urls['bybit']['rest']}/_sim/accounts/{api_key}") as r,
    ):
        assert r.status == 200
        data: dict[str, Any] = await r.json()
        return data


async def inject(sim: SimExchange, spec: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as http, http.post(f"{sim.rest_url}/_sim/faults", json=spec) as r:
        assert r.status == 200, await r.text()


@pytest.fixture
async def skewed() -> AsyncIterator[tuple[SimExchange, ClientFactory]]:
    """Both personalities, the Bybit one's clock OFFSET_MS ahead of the process's."""
    config = load_sim_config(tick_interval_s=0, bybit={"clock_offset_ms": OFFSET_MS})
    sim = SimExchange(config, venues=("binance", "bybit"))
    await sim.start()
    sim.create_account(BYBIT_KEY, BYBIT_SECRET, Decimal(100_000), name="bob", venue="bybit")
    try:
        async with closing(lambda **kw: make_bybit(sim, **kw)) as factory:
            yield sim, factory
    finally:
        await sim.stop()


async def test_an_offset_bybit_clock_shifts_server_time_orders_and_executions(
    skewed: tuple[SimExchange, ClientFactory],
) -> None:
    sim, clients = skewed
    bybit = clients()
    await bybit.load_markets()
    before = time.time() * 1000
    server = await bybit.fetch_time()
    assert before + OFFSET_MS - 5 <= server <= time.time() * 1000 + OFFSET_MS + 5
    await bybit.create_order(BTC, "market", "buy", 0.01, params={"orderLinkId": "clock-1"})
    (order,) = await bybit.fetch_closed_orders(BTC, params={"orderLinkId": "clock-1"})
    (trade,) = await bybit.fetch_my_trades(BTC)  # the default window (the last 7 days) is the venue's
    kept = await admin(sim, BYBIT_KEY)  # the admin view stays on the process's clock
    (engine_order,), (engine_trade,) = kept["orders"], kept["trades"]
    assert int(order["info"]["createdTime"]) - engine_order["time"] == OFFSET_MS
    assert int(order["info"]["updatedTime"]) - engine_order["updateTime"] == OFFSET_MS
    assert int(trade["info"]["execTime"]) - engine_trade["time"] == OFFSET_MS
    # startTime is read on the venue's clock: from the execution's own time on, it is listed
    since = int(trade["info"]["execTime"])
    assert [t["id"] for t in await bybit.fetch_my_trades(BTC, since=since)] == [trade["id"]]
    assert await bybit.fetch_my_trades(BTC, since=since + 1) == []
    # the private stream's frames carry the venue's clock too
    pro = clients(pro=True)
    await pro.load_markets()
    watching = asyncio.create_task(pro.watch_my_trades(BTC))
    await asyncio.sleep(0.3)
    await bybit.create_order(BTC, "market", "sell", 0.01, params={"orderLinkId": "clock-2"})
    (streamed,) = await asyncio.wait_for(watching, 5)
    latest = (await admin(sim, BYBIT_KEY))["trades"][-1]
    assert int(streamed["info"]["execTime"]) - latest["time"] == OFFSET_MS


async def test_the_binance_personality_keeps_the_process_clock(
    skewed: tuple[SimExchange, ClientFactory],
) -> None:
    sim, _ = skewed
    from bot.venues import VenueMode, make_rest

    client = make_rest("binanceusdm", VenueMode.SIM, api_key="k", secret="s", rest_url=sim.rest_url,
                       ws_url=sim.ws_url)  # fmt: skip
    try:
        before = time.time() * 1000
        assert before - 5 <= await client.fetch_time() <= time.time() * 1000 + 5
    finally:
        await client.close()


async def test_bybit_late_landing_lands_once_after_the_client_gave_up(
    skewed: tuple[SimExchange, ClientFactory],
) -> None:
    sim, clients = skewed
    hasty = clients()
    hasty.timeout = 300  # ms: the client gives up long before the order lands
    await hasty.load_markets()
    await inject(sim, {"late_landing_ms": 1000, "count": 1, "api_key": BYBIT_KEY})
    with pytest.raises(ccxt.RequestTimeout):
        await hasty.create_order(BTC, "market", "buy", 0.01, params={"orderLinkId": "late-1"})
    account = sim.engine.accounts[BYBIT_KEY]
    assert account.orders == {}  # accepted by the gateway, not yet at the engine
    # A resend with the same orderLinkId while the first is on its way is a new order...
    await hasty.create_order(BTC, "market", "buy", 0.01, params={"orderLinkId": "late-1"})
    assert len(account.orders) == 1
    await asyncio.sleep(1.0)  # ...and when the first lands, Bybit's rule refuses it (110072)
    (order,) = account.orders.values()
    assert order.client_order_id == "late-1"
    assert account.position("BTCUSDT").amt == Decimal("0.01")  # filled once, not twice
    # the fault held one order only: the next one is answered at once
    await hasty.create_order(BTC, "market", "buy", 0.01, params={"orderLinkId": "late-2"})
    assert len(account.orders) == 2
