"""The real ccxt REST client against the in-process local exchange: markets, account, orders,
trades, market data, and the error codes ccxt must map to its exception types."""

from __future__ import annotations

from decimal import Decimal

import ccxt.async_support as ccxt
import pytest

from bot.sim.server import SimExchange
from bot.venues.binance.decode import market_spec as market_spec_from_ccxt
from tests.sim.conftest import ClientFactory

BTC = "BTC/USDT:USDT"
THIN = "THIN/USDT:USDT"


async def test_load_markets_gives_binance_precision_and_limits(rest: ccxt.Exchange) -> None:
    spec = market_spec_from_ccxt(rest.market(BTC))
    assert (spec.venue_symbol, spec.tick, spec.step) == ("BTCUSDT", Decimal("0.1"), Decimal("0.001"))
    assert (spec.min_qty, spec.max_qty, spec.min_notional) == (Decimal("0.001"), Decimal(1000), Decimal(100))
    assert rest.market(BTC)["swap"]
    assert rest.market(BTC)["linear"]
    assert set(rest.symbols) >= {BTC, "ETH/USDT:USDT", THIN}


async def test_balance_positions_and_leverage(rest: ccxt.Exchange) -> None:
    balance = await rest.fetch_balance()
    assert balance["USDT"]["total"] == 100_000
    assert await rest.fetch_positions() == []
    await rest.set_leverage(5, BTC)
    await rest.create_order(BTC, "market", "buy", 0.01)
    (position,) = await rest.fetch_positions()
    assert position["side"] == "long"
    assert position["contracts"] == 0.01
    assert position["leverage"] == 5
    assert position["entryPrice"] == pytest.approx(60000.5)
    balance = await rest.fetch_balance()
    assert balance["USDT"]["used"] == pytest.approx(0.01 * 60000 / 5)


async def test_market_order_with_client_id_fills_and_is_found_by_it(rest: ccxt.Exchange) -> None:
    order = await rest.create_order(BTC, "market", "buy", 0.05, params={"clientOrderId": "cb-1"})
    assert (order["status"], order["clientOrderId"], order["filled"]) == ("closed", "cb-1", 0.05)
    fetched = await rest.fetch_order(None, BTC, params={"clientOrderId": "cb-1"})
    assert fetched["id"] == order["id"]
    assert fetched["average"] == order["average"]
    trades = await rest.fetch_my_trades(BTC)
    assert [t["order"] for t in trades] == [order["id"]]


async def test_limit_order_rests_and_is_cancelled_by_client_id(rest: ccxt.Exchange) -> None:
    order = await rest.create_order(BTC, "limit", "buy", 0.01, 59000, params={"clientOrderId": "lim-1"})
    assert order["status"] == "open"
    assert order["filled"] == 0
    assert [o["clientOrderId"] for o in await rest.fetch_open_orders(BTC)] == ["lim-1"]
    cancelled = await rest.cancel_order(None, BTC, params={"origClientOrderId": "lim-1"})
    assert cancelled["status"] == "canceled"
    assert await rest.fetch_open_orders(BTC) == []
    with pytest.raises(ccxt.OrderNotFound):
        await rest.cancel_order(None, BTC, params={"origClientOrderId": "lim-1"})
    with pytest.raises(ccxt.OrderNotFound):
        await rest.fetch_order(None, BTC, params={"clientOrderId": "never-sent"})


async def test_crossing_limit_fills_then_rests_the_rest(rest: ccxt.Exchange, sim: SimExchange) -> None:
    # THIN: 200 per level, levels 20 ticks apart from 1.0000; a buy at 1.0040 reaches two levels.
    order = await rest.create_order(THIN, "limit", "buy", 1000, 1.004)
    assert order["status"] == "open"
    assert order["filled"] == 400
    assert sim.engine.accounts["alice-key"].position("THINUSDT").amt == 400


async def test_my_trades_since_and_from_id(rest: ccxt.Exchange) -> None:
    for i in range(3):
        await rest.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": f"t-{i}"})
    trades = await rest.fetch_my_trades(BTC)
    assert len(trades) == 3
    ids = [int(t["id"]) for t in trades]
    from_second = await rest.fetch_my_trades(BTC, params={"fromId": ids[1]})
    assert [int(t["id"]) for t in from_second] == ids[1:]
    since = await rest.fetch_my_trades(BTC, since=trades[-1]["timestamp"])
    assert trades[-1]["id"] in [t["id"] for t in since]
    assert await rest.fetch_my_trades(BTC, since=trades[-1]["timestamp"] + 60_000) == []


async def test_order_book_and_ticker(rest: ccxt.Exchange, sim: SimExchange) -> None:
    book = await rest.fetch_order_book(BTC, limit=5)
    assert len(book["bids"]) == 5
    assert book["bids"][0][0] < 60000 < book["asks"][0][0]
    assert book["asks"][0][1] == 2.0
    await rest.create_order(BTC, "market", "buy", 0.5)
    ticker = await rest.fetch_ticker(BTC)
    assert ticker["last"] == 60000.5
    sim.engine.set_price("BTCUSDT", Decimal(61000))
    book = await rest.fetch_order_book(BTC, limit=5)
    assert book["bids"][0][0] < 61000 < book["asks"][0][0]


async def test_ten_times_larger_market_order_gets_worse_average(
    rest: ccxt.Exchange, sim: SimExchange
) -> None:
    small = await rest.create_order(THIN, "market", "buy", 100)
    sim.engine.books["THINUSDT"].refill_all()
    large = await rest.create_order(THIN, "market", "buy", 1000)
    assert large["filled"] == 1000
    assert large["average"] - small["average"] >= 0.002  # walked at least two levels of 20 ticks


async def test_orders_on_a_thin_book_move_each_others_price(sim: SimExchange, clients: ClientFactory) -> None:
    sim.create_account("bob", "bob-secret", Decimal(10_000))
    alice, bob = clients(), clients("bob", "bob-secret")
    first = await alice.create_order(THIN, "market", "buy", 300)
    second = await bob.create_order(THIN, "market", "buy", 300)
    assert second["average"] > first["average"]


async def test_bad_signature_is_authentication_error(clients: ClientFactory) -> None:
    client = clients(secret="not-the-secret")
    await client.load_markets()
    with pytest.raises(ccxt.AuthenticationError):
        await client.fetch_balance()


async def test_revoked_key_is_authentication_error(rest: ccxt.Exchange, sim: SimExchange) -> None:
    await rest.fetch_balance()
    sim.engine.accounts["alice-key"].revoked = True
    with pytest.raises(ccxt.AuthenticationError):
        await rest.fetch_balance()


async def test_insufficient_margin(clients: ClientFactory, sim: SimExchange) -> None:
    sim.create_account("poor", "poor-secret", Decimal(100))
    client = clients("poor", "poor-secret")
    await client.load_markets()
    with pytest.raises(ccxt.InsufficientFunds):
        await client.create_order(BTC, "market", "buy", 0.1)  # 6000 notional at 20x needs 300


async def test_client_id_of_a_cancelled_order_can_be_reused(rest: ccxt.Exchange) -> None:
    # Binance: newClientOrderId is "a unique id among open orders" (client_id_rule: open, the default)
    first = await rest.create_order(BTC, "limit", "buy", 0.01, 50000, params={"clientOrderId": "dup"})
    with pytest.raises(ccxt.InvalidOrder, match="-4116"):  # still open: refused
        await rest.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "dup"})
    await rest.cancel_order(None, BTC, params={"clientOrderId": "dup"})
    second = await rest.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "dup"})
    assert second["id"] != first["id"]
    assert (await rest.fetch_order(None, BTC, params={"clientOrderId": "dup"}))["id"] == second["id"]


async def test_reduce_only_rules(rest: ccxt.Exchange, sim: SimExchange) -> None:
    with pytest.raises(ccxt.InvalidOrder, match="-2022"):
        await rest.create_order(BTC, "market", "sell", 0.01, params={"reduceOnly": True})
    await rest.create_order(BTC, "market", "buy", 0.002)
    # below min notional is fine when reduce-only, and it is capped to the position
    order = await rest.create_order(BTC, "market", "sell", 0.005, params={"reduceOnly": True})
    assert order["filled"] == 0.002
    assert sim.engine.accounts["alice-key"].position("BTCUSDT").amt == 0


async def test_min_notional_precision_and_symbol_rejects(rest: ccxt.Exchange) -> None:
    with pytest.raises(ccxt.InvalidOrder, match="-4164"):
        await rest.create_order(BTC, "market", "buy", 0.001)
    with pytest.raises(ccxt.BadRequest, match="-1111"):
        await rest.fapiPrivatePostOrder(
            {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.0105"}
        )
    with pytest.raises(ccxt.BadSymbol):
        await rest.fapiPrivatePostOrder(
            {"symbol": "NOPEUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"}
        )


async def test_api_restrictions_tell_whether_withdrawals_are_enabled(rest: ccxt.Exchange) -> None:
    restrictions = await rest.sapiGetAccountApiRestrictions()
    assert restrictions["enableWithdrawals"] is False
    assert restrictions["enableFutures"] is True
