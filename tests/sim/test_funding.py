"""Funding on the local exchange: every open position pays or receives position x mark x rate at
each funding time (longs pay when the rate is positive), reported as each venue reports it:
Binance's income history and ACCOUNT_UPDATE (reason FUNDING_FEE), Bybit's Funding executions and
transaction log; the rate and next funding time in premiumIndex and tickers agree with the engine."""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal
from typing import Any

import aiohttp

from bot.sim.server import SimExchange
from bot.venues.bybit.decode import fill_from_execution
from tests.sim.bybit_clients import BTC, BYBIT_KEY
from tests.sim.conftest import KEY, SECRET, frozen_config

RATE = Decimal("0.0001")


async def test_binance_long_pays_short_receives_and_income_lists_it(sim: SimExchange, rest: Any) -> None:
    sim.create_account("short-key", "short-secret", Decimal(100_000))
    await rest.create_order(BTC, "market", "buy", 0.02)
    before = sim.engine.accounts[KEY].wallet
    short = sim.engine.accounts["short-key"]
    sim.engine.place_order(short, {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET",
                                   "quantity": "0.01"}, time.time_ns())  # fmt: skip
    short_before = short.wallet
    mark = sim.engine.books["BTCUSDT"].fair
    sim.engine.settle_funding()
    long_amount = -Decimal("0.02") * mark * RATE
    assert sim.engine.accounts[KEY].wallet - before == long_amount < 0
    assert short.wallet - short_before == Decimal("0.01") * mark * RATE > 0
    rows = await rest.fapiPrivateGetIncome({"incomeType": "FUNDING_FEE"})
    assert [(r["symbol"], Decimal(r["income"]), r["tradeId"]) for r in rows] == [("BTCUSDT", long_amount, "")]
    every = await rest.fapiPrivateGetIncome({})
    kinds = sorted({r["incomeType"] for r in every})
    assert kinds == ["COMMISSION", "FUNDING_FEE"]  # opening realizes no PnL
    commission = next(r for r in every if r["incomeType"] == "COMMISSION")
    assert Decimal(commission["income"]) == -sim.engine.accounts[KEY].trades[0].commission
    history = await rest.fetch_funding_history(BTC)
    assert [Decimal(str(h["info"]["income"])) for h in history] == [long_amount]


async def test_binance_user_stream_pushes_funding_fee_balance_update(sim: SimExchange, rest: Any) -> None:
    await rest.create_order(BTC, "market", "buy", 0.01)
    key = (await rest.fapiPrivatePostListenKey())["listenKey"]
    async with aiohttp.ClientSession() as session, session.ws_connect(f"{sim.ws_url}/ws/{key}") as ws:
        await asyncio.sleep(0.05)
        sim.engine.settle_funding()
        frame = json.loads((await ws.receive(timeout=2)).data)
    assert frame["e"] == "ACCOUNT_UPDATE"
    assert frame["a"]["m"] == "FUNDING_FEE"
    assert frame["a"]["P"] == []
    (balance,) = frame["a"]["B"]
    assert Decimal(balance["bc"]) == -Decimal("0.01") * sim.engine.books["BTCUSDT"].fair * RATE
    assert Decimal(balance["wb"]) == sim.engine.accounts[KEY].wallet


async def test_funding_runs_on_its_interval_and_premium_index_agrees() -> None:
    exchange = SimExchange(frozen_config(funding_interval_s=1, funding_rate="-0.0002"))
    await exchange.start()
    try:
        account = exchange.create_account(KEY, SECRET, Decimal(100_000))
        exchange.engine.place_order(account, {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET",
                                              "quantity": "0.01"}, time.time_ns())  # fmt: skip
        url = f"{exchange.rest_url}/fapi/v1/premiumIndex?symbol=BTCUSDT"
        async with aiohttp.ClientSession() as session, session.get(url) as r:
            row = await r.json()
        assert Decimal(row["lastFundingRate"]) == Decimal("-0.0002")
        assert 0 < row["nextFundingTime"] - row["time"] <= 1000
        assert row["nextFundingTime"] % 1000 == 0
        deadline = time.monotonic() + 3
        while len(account.fundings) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        first, second = account.fundings[:2]
        assert second.time_ms - first.time_ms == 1000
        assert first.time_ms % 1000 == 0
        # a short pays when the rate is negative
        assert first.amount == Decimal("0.01") * -first.mark * Decimal("0.0002") < 0
    finally:
        await exchange.stop()


async def test_admin_sets_the_rate_and_settles(sim: SimExchange, rest: Any) -> None:
    await rest.create_order(BTC, "market", "buy", 0.01)
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{sim.rest_url}/_sim/funding", json={"rate": "0.0005", "settle": True}) as r:
            body = await r.json()
        async with session.post(f"{sim.rest_url}/_sim/funding", json={"rate": "x"}) as bad:
            assert bad.status == 400
        async with session.post(f"{sim.rest_url}/_sim/funding", json={"rates": 1}) as unknown:
            assert unknown.status == 400
    assert body["rate"] == "0.0005"
    (paid,) = body["paid"]
    assert Decimal(paid["amount"]) == -Decimal("0.01") * sim.engine.books["BTCUSDT"].fair * Decimal("0.0005")
    rate = await rest.fetch_funding_rate(BTC)
    assert rate["fundingRate"] == 0.0005


async def test_bybit_funding_is_an_execution_and_a_settlement_row(bsim: SimExchange, bybit: Any) -> None:
    await bybit.create_order(BTC, "market", "sell", 0.01)
    before = bsim.engine.accounts[BYBIT_KEY].wallet
    ((_, funding),) = bsim.engine.settle_funding()
    assert funding.amount > 0
    assert bsim.engine.accounts[BYBIT_KEY].wallet - before == funding.amount
    executions = (await bybit.privateGetV5ExecutionList({"category": "linear"}))["result"]["list"]
    assert [e["execType"] for e in executions] == ["Funding", "Trade"]  # newest first
    row = executions[0]
    assert Decimal(row["execFee"]) == -funding.amount
    assert row["orderId"] == ""
    # the adapter's decoder never takes a funding execution for a fill
    assert fill_from_execution("lead", bybit, {**row, "category": "linear"}, "rest") is None
    only = await bybit.privateGetV5ExecutionList({"category": "linear", "execType": "Funding"})
    assert len(only["result"]["list"]) == 1
    log = (await bybit.privateGetV5AccountTransactionLog({"accountType": "UNIFIED"}))["result"]["list"]
    assert [r["type"] for r in log] == ["SETTLEMENT", "TRADE"]
    settlement, trade = log
    assert Decimal(settlement["funding"]) == funding.amount
    assert Decimal(settlement["cashBalance"]) == bsim.engine.accounts[BYBIT_KEY].wallet
    assert Decimal(trade["fee"]) == bsim.engine.accounts[BYBIT_KEY].trades[0].commission
    assert Decimal(trade["cashBalance"]) == before
    ticker = await bybit.publicGetV5MarketTickers({"category": "linear", "symbol": "BTCUSDT"})
    assert ticker["result"]["list"][0]["fundingRate"] == "0.0001"
