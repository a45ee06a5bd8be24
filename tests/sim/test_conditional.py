"""Conditional orders on the Binance personality, through the real ccxt client: ccxt sends stop-loss
and take-profit orders to the Algo Order API (`/fapi/v1/algoOrder`), the sim triggers them on the
mark or the last price as Binance's rules say, and the triggered order executes as a market order
that is reduce-only when asked (never opens or flips a position)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt
import pytest
import websockets

from bot.sim.server import SimExchange
from tests.sim.conftest import KEY
from tests.sim.test_stream import rest_listen_key

BTC = "BTC/USDT:USDT"


def position(sim: SimExchange, symbol: str = "BTCUSDT") -> Decimal:
    return sim.engine.accounts[KEY].position(symbol).amt


async def long(rest: Any, qty: float = 0.01) -> None:
    await rest.create_order(BTC, "market", "buy", qty)


def conditional(rest: Any, side: str, qty: float, **params: Any) -> Any:
    return rest.create_order(BTC, "market", side, qty, None, params={"reduceOnly": True, **params})


async def test_ccxt_sends_stop_loss_to_the_algo_endpoint(rest: Any, sim: SimExchange) -> None:
    await long(rest)
    order = await conditional(
        rest, "sell", 0.01, stopLossPrice=59_000, workingType="MARK_PRICE", clientOrderId="sl-1"
    )
    assert order["clientOrderId"] == "sl-1"
    assert order["status"] == "open"
    assert order["info"]["algoType"] == "CONDITIONAL"
    assert order["info"]["orderType"] == "STOP_MARKET"
    assert order["triggerPrice"] == 59_000
    # algo orders are not among the plain open orders, only among the open algo orders
    assert await rest.fetch_open_orders(BTC) == []
    opens = await rest.fetch_open_orders(BTC, params={"trigger": True})
    assert [o["clientOrderId"] for o in opens] == ["sl-1"]
    fetched = await rest.fetch_order(None, BTC, params={"trigger": True, "clientOrderId": "sl-1"})
    assert fetched["status"] == "open"


async def test_order_endpoint_refuses_conditional_types(rest: Any) -> None:
    with pytest.raises(ccxt.ExchangeError, match="-4120"):
        await rest.fapiPrivatePostOrder(
            {
                "symbol": "BTCUSDT",
                "side": "SELL",
                "type": "STOP_MARKET",
                "quantity": "0.01",
                "stopPrice": "59000",
            }
        )


async def test_mark_price_stop_triggers_on_the_mark_not_the_last(rest: Any, sim: SimExchange) -> None:
    await long(rest)
    await conditional(rest, "sell", 0.01, stopLossPrice=59_000, workingType="MARK_PRICE", clientOrderId="sl")
    sim.engine.set_last("BTCUSDT", Decimal(58_000))  # last through the stop: a mark stop waits
    assert position(sim) == Decimal("0.01")
    sim.engine.set_price("BTCUSDT", Decimal(59_000))  # the mark reaches it: SELL stop, mark <= 59,000
    assert position(sim) == 0
    done = await rest.fetch_order(None, BTC, params={"trigger": True, "clientOrderId": "sl"})
    assert done["info"]["algoStatus"] == "FINISHED"
    assert done["info"]["actualOrderId"]


async def test_contract_price_take_profit_triggers_on_the_last(rest: Any, sim: SimExchange) -> None:
    await long(rest)
    await conditional(rest, "sell", 0.01, takeProfitPrice=61_000, clientOrderId="tp")  # CONTRACT_PRICE
    sim.engine.set_price("BTCUSDT", Decimal(61_500))  # the mark passes it: a last-price order waits
    assert position(sim) == Decimal("0.01")
    sim.engine.set_last("BTCUSDT", Decimal(61_000))  # SELL take-profit: last >= 61,000
    assert position(sim) == 0
    trades = sim.engine.accounts[KEY].trades
    assert trades[-1].side == "SELL"
    assert trades[-1].client_order_id == "tp"


async def test_direction_rules_and_immediate_trigger(rest: Any, sim: SimExchange) -> None:
    await rest.create_order(BTC, "market", "sell", 0.01)  # a short
    # BUY stop triggers when the price rises to it; BUY take-profit when it falls to it
    await conditional(rest, "buy", 0.01, stopLossPrice=60_500, workingType="MARK_PRICE", clientOrderId="bs")
    await conditional(rest, "buy", 0.01, takeProfitPrice=59_500, workingType="MARK_PRICE", clientOrderId="bt")
    with pytest.raises(ccxt.ExchangeError, match="-2021"):  # already through: Binance refuses it
        await conditional(rest, "buy", 0.01, stopLossPrice=59_000, workingType="MARK_PRICE")
    sim.engine.set_price("BTCUSDT", Decimal(60_400))
    assert position(sim) == Decimal("-0.01")
    sim.engine.set_price("BTCUSDT", Decimal(60_500))
    assert position(sim) == 0
    # the take-profit is still waiting; crossing it now finds nothing to reduce: it expires, no long
    sim.engine.set_price("BTCUSDT", Decimal(59_000))
    assert position(sim) == 0
    tp = await rest.fetch_order(None, BTC, params={"trigger": True, "clientOrderId": "bt"})
    assert tp["info"]["algoStatus"] == "EXPIRED"


async def test_reduce_only_never_flips_and_close_position_closes_all(rest: Any, sim: SimExchange) -> None:
    await long(rest, 0.01)
    await conditional(rest, "sell", 0.05, stopLossPrice=59_000, workingType="MARK_PRICE")  # more than held
    sim.engine.set_price("BTCUSDT", Decimal(58_900))
    assert position(sim) == 0  # capped to the position: closed, not flipped short
    await long(rest, 0.02)
    await rest.create_order(
        BTC,
        "market",
        "sell",
        None,
        None,
        params={"stopLossPrice": 58_000, "closePosition": True, "workingType": "MARK_PRICE"},
    )
    await long(rest, 0.01)  # the position grows after the order was placed: all of it closes
    sim.engine.set_price("BTCUSDT", Decimal(57_900))
    assert position(sim) == 0


async def test_cancel_and_client_id_unique_among_open(rest: Any, sim: SimExchange) -> None:
    await long(rest)
    await conditional(rest, "sell", 0.01, stopLossPrice=59_000, clientOrderId="x1")
    with pytest.raises(ccxt.InvalidOrder, match="-4116"):
        await conditional(rest, "sell", 0.01, takeProfitPrice=62_000, clientOrderId="x1")
    await rest.cancel_order(None, BTC, params={"trigger": True, "clientOrderId": "x1"})
    canceled = await rest.fetch_order(None, BTC, params={"trigger": True, "clientOrderId": "x1"})
    assert canceled["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound):
        await rest.cancel_order(None, BTC, params={"trigger": True, "clientOrderId": "x1"})
    sim.engine.set_price("BTCUSDT", Decimal(58_000))
    assert position(sim) == Decimal("0.01")


async def test_user_stream_shows_the_algo_life_and_the_triggered_order(rest: Any, sim: SimExchange) -> None:
    await long(rest)
    key = await rest_listen_key(sim, rest)
    async with websockets.connect(f"{sim.ws_url}/ws/{key}") as ws:
        for _ in range(200):
            if sim.stream.connections(KEY):
                break
            await asyncio.sleep(0.01)
        await conditional(
            rest, "sell", 0.01, stopLossPrice=59_000, workingType="MARK_PRICE", clientOrderId="s"
        )
        sim.engine.set_price("BTCUSDT", Decimal(59_000))
        events: list[dict[str, Any]] = []
        while not any(e.get("e") == "ALGO_UPDATE" and e["o"]["X"] == "FINISHED" for e in events):
            events.append(json.loads(await asyncio.wait_for(ws.recv(), 5)))
    algo = [e["o"]["X"] for e in events if e["e"] == "ALGO_UPDATE"]
    assert algo == ["NEW", "TRIGGERING", "TRIGGERED", "FINISHED"]
    orders = [e["o"] for e in events if e["e"] == "ORDER_TRADE_UPDATE"]
    assert [(o["x"], o["X"]) for o in orders] == [("NEW", "NEW"), ("TRADE", "FILLED")]
    assert {(o["o"], o["ot"], o["R"], o["wt"], o["c"]) for o in orders} == {
        ("MARKET", "STOP_MARKET", True, "MARK_PRICE", "s")
    }


async def test_admin_price_moves_mark_and_last(sim: SimExchange) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{sim.rest_url}/_sim/price", json={"symbol": "BTCUSDT", "last": "61000"}) as r:
            body = await r.json()
            assert body["last"] == "61000"
            assert body["price"] == "60000"
        async with http.post(f"{sim.rest_url}/_sim/price", json={"symbol": "BTCUSDT", "bogus": 1}) as r:
            assert r.status == 400


async def test_admin_account_view_lists_conditional_orders(rest: Any, sim: SimExchange) -> None:
    import aiohttp

    await long(rest)
    await conditional(rest, "sell", 0.01, takeProfitPrice=62_000, clientOrderId="seen")
    async with aiohttp.ClientSession() as http, http.get(f"{sim.rest_url}/_sim/accounts/{KEY}") as r:
        (row,) = (await r.json())["conditional"]
    assert row["clientAlgoId"] == "seen"
    assert row["algoStatus"] == "NEW"
    assert row["orderType"] == "TAKE_PROFIT_MARKET"
