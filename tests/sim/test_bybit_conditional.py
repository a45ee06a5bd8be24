"""Conditional orders on the Bybit personality through ccxt's bybit: a `stopLossPrice` /
`takeProfitPrice` market order becomes `/v5/order/create` with triggerPrice, triggerDirection and
reduceOnly; it is Untriggered until the mark (triggerBy MarkPrice) or the last price crosses it,
then it executes as a market order under the same orderId and orderLinkId."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest

from bot.sim.server import SimExchange
from tests.sim.bybit_clients import BYBIT_KEY

BTC = "BTC/USDT:USDT"


def position(sim: SimExchange) -> Decimal:
    return sim.engine.accounts[BYBIT_KEY].position("BTCUSDT").amt


async def test_stop_loss_waits_untriggered_then_closes_on_the_mark(bybit: Any, bsim: SimExchange) -> None:
    await bybit.create_order(BTC, "market", "buy", 0.01)
    order = await bybit.create_order(
        BTC,
        "market",
        "sell",
        0.01,
        None,
        params={
            "stopLossPrice": 59_000,
            "triggerBy": "MarkPrice",
            "reduceOnly": True,
            "clientOrderId": "sl-b",
        },
    )
    (waiting,) = await bybit.fetch_open_orders(BTC, params={"orderLinkId": "sl-b"})
    assert waiting["id"] == order["id"]
    assert waiting["info"]["orderStatus"] == "Untriggered"
    assert waiting["info"]["triggerDirection"] == 2
    assert waiting["info"]["triggerBy"] == "MarkPrice"
    assert waiting["reduceOnly"] is True
    bsim.engine.set_last("BTCUSDT", Decimal(58_000))  # the last price does not move a MarkPrice order
    assert position(bsim) == Decimal("0.01")
    bsim.engine.set_price("BTCUSDT", Decimal(58_990))
    assert position(bsim) == 0
    (done,) = await bybit.fetch_closed_orders(BTC, params={"orderLinkId": "sl-b"})
    assert done["id"] == order["id"]
    assert done["status"] == "closed"
    assert done["info"]["orderStatus"] == "Filled"
    assert done["info"]["stopOrderType"] == "Stop"


async def test_take_profit_on_last_price_and_deactivation(bybit: Any, bsim: SimExchange) -> None:
    await bybit.create_order(BTC, "market", "sell", 0.02)  # short
    await bybit.create_order(
        BTC,
        "market",
        "buy",
        0.02,
        None,
        params={"takeProfitPrice": 59_000, "reduceOnly": True, "clientOrderId": "tp-b"},
    )
    await bybit.create_order(
        BTC,
        "market",
        "buy",
        0.02,
        None,
        params={"stopLossPrice": 61_000, "reduceOnly": True, "clientOrderId": "sl-b"},
    )
    bsim.engine.set_price("BTCUSDT", Decimal(58_000))  # LastPrice (the default) waits for a trade
    assert position(bsim) == Decimal("-0.02")
    bsim.engine.set_last("BTCUSDT", Decimal(59_000))  # Buy take-profit: falls to 59,000
    assert position(bsim) == 0
    await bybit.cancel_order(None, BTC, params={"orderLinkId": "sl-b"})
    (gone,) = await bybit.fetch_closed_orders(BTC, params={"orderLinkId": "sl-b"})
    assert gone["info"]["orderStatus"] == "Deactivated"
    assert gone["status"] == "canceled"


async def test_refused_when_already_crossed_and_link_ids_stay_unique(bybit: Any, bsim: SimExchange) -> None:
    await bybit.create_order(BTC, "market", "buy", 0.01)
    with pytest.raises(ccxt.ExchangeError, match="110093"):  # a falling trigger above the price
        await bybit.create_order(
            BTC,
            "market",
            "sell",
            0.01,
            None,
            params={"stopLossPrice": 61_000, "reduceOnly": True, "clientOrderId": "late"},
        )
    await bybit.create_order(
        BTC,
        "market",
        "sell",
        0.01,
        None,
        params={"takeProfitPrice": 62_000, "reduceOnly": True, "clientOrderId": "tp1"},
    )
    with pytest.raises(ccxt.InvalidOrder, match="110072"):
        await bybit.create_order(
            BTC,
            "market",
            "sell",
            0.01,
            None,
            params={"takeProfitPrice": 63_000, "reduceOnly": True, "clientOrderId": "tp1"},
        )


async def test_stream_shows_untriggered_then_the_fill(bybit_pro: Any, bybit: Any, bsim: SimExchange) -> None:
    await bybit.create_order(BTC, "market", "buy", 0.01)
    watcher = asyncio.create_task(bybit_pro.watch_orders(BTC))
    for _ in range(200):
        if bsim.bybit is not None and bsim.bybit.stream.connections(BYBIT_KEY):
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # subscribed
    await bybit.create_order(
        BTC,
        "market",
        "sell",
        0.01,
        None,
        params={"stopLossPrice": 59_000, "triggerBy": "MarkPrice", "reduceOnly": True, "clientOrderId": "s"},
    )
    first = await asyncio.wait_for(watcher, 5)
    assert first[-1]["info"]["orderStatus"] == "Untriggered"
    bsim.engine.set_price("BTCUSDT", Decimal(59_000))
    seen: list[str] = []
    while "Filled" not in seen:
        orders = await asyncio.wait_for(bybit_pro.watch_orders(BTC), 5)
        seen += [o["info"]["orderStatus"] for o in orders]
    assert seen[-1] == "Filled"  # (ccxt merges the Triggered and New frames of the one order)
