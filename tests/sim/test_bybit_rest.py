"""The real ccxt bybit client against the local exchange's Bybit V5 hosts: markets, account,
orders by orderLinkId, executions with cursor paging, leverage, and every retCode ccxt maps."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from bot.sim.server import SimExchange
from tests.sim.bybit_clients import BTC, BYBIT_KEY, PEPE, THIN, make_bybit
from tests.sim.conftest import frozen_config
from tests.sim.factory import ClientFactory

ETH = "ETH/USDT:USDT"


async def test_load_markets_gives_bybit_filters(bybit: Any) -> None:
    btc = bybit.market(BTC)
    assert (btc["id"], btc["swap"], btc["linear"], btc["settle"]) == ("BTCUSDT", True, True, "USDT")
    assert btc["precision"] == {"amount": 0.001, "price": 0.1}
    assert btc["limits"]["amount"] == {"min": 0.001, "max": 1000}
    assert btc["limits"]["cost"]["min"] == 100
    assert set(bybit.symbols) == {BTC, ETH, THIN, PEPE}
    # the cross-venue instrument: Bybit lists 1 PEPE per unit, the engine (Binance) 1,000
    pepe = bybit.market(PEPE)
    assert (pepe["id"], pepe["base"]) == ("PEPEUSDT", "PEPE")
    assert pepe["precision"] == {"amount": 1000, "price": 1e-10}
    assert pepe["limits"]["amount"]["min"] == 1000


async def test_unified_account_is_detected_from_query_api_and_account_info(
    bybit_clients: ClientFactory, bsim: SimExchange
) -> None:
    client = bybit_clients(preset_unified=False)
    await client.load_markets()
    assert await client.is_unified_enabled() == [False, True]
    assert client.options["unifiedMarginStatus"] == 6
    info = await client.privateGetV5UserQueryApi()
    assert info["result"]["permissions"]["Wallet"] == ["AccountTransfer", "SubMemberTransfer"]
    bsim.engine.accounts[BYBIT_KEY].withdrawals_enabled = True
    info = await client.privateGetV5UserQueryApi()
    assert "Withdraw" in info["result"]["permissions"]["Wallet"]


async def test_balance_positions_and_leverage(bybit: Any) -> None:
    balance = await bybit.fetch_balance()
    assert (balance["USDT"]["total"], balance["USDT"]["free"]) == (100_000, 100_000)
    assert await bybit.fetch_positions() == []
    await bybit.set_leverage(5, BTC)
    with pytest.raises(ccxt.BadRequest, match="110043"):
        await bybit.set_leverage(5, BTC)
    await bybit.create_order(BTC, "market", "buy", 0.01)
    (position,) = await bybit.fetch_positions()
    assert (position["side"], position["contracts"], position["leverage"]) == ("long", 0.01, 5)
    assert position["entryPrice"] == pytest.approx(60000.5)
    (by_symbol,) = await bybit.fetch_positions([BTC])
    assert by_symbol["contracts"] == 0.01
    balance = await bybit.fetch_balance()
    assert balance["USDT"]["used"] == pytest.approx(0.01 * 60000 / 5)


async def test_market_order_with_client_id_fills_and_is_found_by_it(bybit: Any) -> None:
    created = await bybit.create_order(BTC, "market", "buy", 0.05, params={"clientOrderId": "cb-1"})
    assert created["clientOrderId"] == "cb-1"
    assert created["status"] is None  # Bybit's create reply carries only the ids
    (order,) = await bybit.fetch_closed_orders(BTC, params={"orderLinkId": "cb-1"})
    assert (order["id"], order["status"], order["filled"]) == (created["id"], "closed", 0.05)
    assert order["average"] == pytest.approx(60000.5)
    (same,) = await bybit.fetch_open_orders(BTC, params={"orderLinkId": "cb-1"})  # realtime: recent 500
    assert same["status"] == "closed"
    trades = await bybit.fetch_my_trades(BTC)
    assert [t["order"] for t in trades] == [created["id"]]
    assert trades[0]["info"]["orderLinkId"] == "cb-1"
    # ccxt's fetch_open_order / fetch_closed_order with id None send orderId=None, which names no order
    with pytest.raises(ccxt.OrderNotFound):
        await bybit.fetch_closed_order(None, BTC, params={"orderLinkId": "cb-1"})


async def test_limit_order_rests_and_is_cancelled_by_client_id(bybit: Any) -> None:
    order = await bybit.create_order(BTC, "limit", "buy", 0.01, 59000, params={"clientOrderId": "lim-1"})
    (open_order,) = await bybit.fetch_open_orders(BTC)
    assert (open_order["id"], open_order["clientOrderId"], open_order["status"]) == (
        order["id"],
        "lim-1",
        "open",
    )
    assert open_order["price"] == 59000
    cancelled = await bybit.cancel_order(None, BTC, params={"orderLinkId": "lim-1"})
    assert cancelled["id"] == order["id"]
    assert await bybit.fetch_open_orders(BTC) == []
    (closed,) = await bybit.fetch_canceled_and_closed_orders(BTC)
    assert closed["status"] == "canceled"
    with pytest.raises(ccxt.OrderNotFound, match="110001"):
        await bybit.cancel_order(None, BTC, params={"orderLinkId": "lim-1"})
    with pytest.raises(ccxt.OrderNotFound, match="110001"):
        await bybit.cancel_order(order["id"], BTC)


async def test_order_link_id_is_unique_for_every_order_ever_placed(bybit: Any) -> None:
    await bybit.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "once"})
    with pytest.raises(ccxt.InvalidOrder, match="110072"):  # closed long ago: still taken
        await bybit.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "once"})
    with pytest.raises(ccxt.BadRequest, match="10001"):
        await bybit.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "has.dot"})
    with pytest.raises(ccxt.BadRequest, match="10001"):
        await bybit.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "x" * 37})
    ok = await bybit.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "A-z_09" + "x" * 30})
    assert ok["clientOrderId"] == "A-z_09" + "x" * 30
    # a rejected order does not use its id up
    with pytest.raises(ccxt.InsufficientFunds):
        await bybit.create_order(BTC, "market", "buy", 900, params={"clientOrderId": "retry-me"})
    await bybit.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "retry-me"})


async def test_crossing_limit_fills_then_rests_the_rest(bybit: Any, bsim: SimExchange) -> None:
    created = await bybit.create_order(THIN, "limit", "buy", 1000, 1.004)
    (order,) = await bybit.fetch_open_orders(THIN)
    assert (order["id"], order["filled"], order["remaining"]) == (created["id"], 400, 600)
    assert order["info"]["orderStatus"] == "PartiallyFilled"
    assert bsim.engine.accounts[BYBIT_KEY].position("THINUSDT").amt == 400


async def test_executions_page_with_next_page_cursor(bybit: Any, bsim: SimExchange) -> None:
    # three market orders on ETH that each walk all 40 levels: 120 executions
    await bybit.set_leverage(100, ETH)
    for side in ("buy", "sell", "buy"):
        bsim.engine.books["ETHUSDT"].refill_all()
        await bybit.create_order(ETH, "market", side, 800)
    first = await bybit.privateGetV5ExecutionList({"category": "linear", "symbol": "ETHUSDT", "limit": 100})
    rows, cursor = first["result"]["list"], first["result"]["nextPageCursor"]
    assert len(rows) == 100
    assert cursor
    times = [int(r["execTime"]) for r in rows]
    assert times == sorted(times, reverse=True)  # newest first
    second = await bybit.privateGetV5ExecutionList(
        {"category": "linear", "symbol": "ETHUSDT", "limit": 100, "cursor": cursor}
    )
    assert len(second["result"]["list"]) == 20
    assert second["result"]["nextPageCursor"] == ""
    ids = {r["execId"] for r in rows + second["result"]["list"]}
    assert len(ids) == 120
    default = await bybit.privateGetV5ExecutionList({"category": "linear", "symbol": "ETHUSDT"})
    assert len(default["result"]["list"]) == 50
    with pytest.raises(ccxt.BadRequest, match="10001"):
        await bybit.privateGetV5ExecutionList({"category": "linear", "limit": 101})
    # ccxt's own cursor pagination (it needs `since`)
    since = int(time.time() * 1000) - 60_000
    trades = await bybit.fetch_my_trades(ETH, since=since, params={"paginate": True})
    assert len({t["id"] for t in trades}) == 120
    assert sum(t["amount"] for t in trades if t["side"] == "buy") == 1600


async def test_executions_filter_by_type_time_and_symbol(bybit: Any, bsim: SimExchange) -> None:
    await bybit.create_order(BTC, "market", "buy", 0.01)
    await bybit.create_order(THIN, "market", "buy", 10)
    base = {"category": "linear"}
    everything = await bybit.privateGetV5ExecutionList(base)
    assert {r["symbol"] for r in everything["result"]["list"]} == {"BTCUSDT", "THINUSDT"}
    assert {r["execType"] for r in everything["result"]["list"]} == {"Trade"}
    for exec_type in ("BustTrade", "AdlTrade"):  # no liquidation or ADL happens here
        none = await bybit.privateGetV5ExecutionList(base | {"execType": exec_type})
        assert none["result"]["list"] == []
    trades = await bybit.privateGetV5ExecutionList(base | {"execType": "Trade", "symbol": "THINUSDT"})
    assert [r["symbol"] for r in trades["result"]["list"]] == ["THINUSDT"]
    later = int(time.time() * 1000) + 60_000
    assert (await bybit.fetch_my_trades(BTC, since=later)) == []
    with pytest.raises(ccxt.BadRequest, match="10001"):  # a window wider than 7 days
        await bybit.privateGetV5ExecutionList(base | {"startTime": 1, "endTime": 8 * 86_400_000 + 2})


async def test_cross_venue_market_shares_one_book(bybit: Any, bsim: SimExchange, binance_client: Any) -> None:
    engine_book = bsim.engine.books["1000PEPEUSDT"]
    engine_book._clock = lambda: 0.0  # no refill while the test looks: depletion stays visible
    engine_book._refilled_at = 0.0
    book = await bybit.fetch_order_book(PEPE, limit=5)
    assert book["asks"][0] == [pytest.approx(0.0000120001), 200_000_000]
    order = await bybit.create_order(PEPE, "market", "buy", 300_000_000)  # 300,000 x 1000PEPE
    (filled,) = await bybit.fetch_closed_orders(PEPE)
    assert filled["id"] == order["id"]
    assert filled["filled"] == 300_000_000
    assert filled["average"] == pytest.approx((200 * 0.0120001 + 100 * 0.0120002) / 300 / 1000, rel=1e-6)
    assert bsim.engine.accounts[BYBIT_KEY].position("1000PEPEUSDT").amt == 300_000
    (position,) = await bybit.fetch_positions([PEPE])
    assert position["contracts"] == 300_000_000
    # the Binance view of the same book: the Bybit buy emptied the best ask level and took half
    # of the next
    binance_book = await binance_client.fetch_order_book("1000PEPE/USDT:USDT", limit=5)
    assert binance_book["asks"][0] == [pytest.approx(0.0120002), 100_000]
    bybit_book = await bybit.fetch_order_book(PEPE, limit=5)
    assert bybit_book["asks"][0] == [pytest.approx(0.0000120002), 100_000_000]
    with pytest.raises(ccxt.BadRequest, match="10001"):  # not a multiple of qtyStep 1000
        await bybit.privatePostV5OrderCreate(
            {"category": "linear", "symbol": "PEPEUSDT", "side": "Buy", "orderType": "Market", "qty": "1500"}
        )


async def test_ticker_and_order_book(bybit: Any, bsim: SimExchange) -> None:
    book = await bybit.fetch_order_book(BTC, limit=5)
    assert len(book["bids"]) == 5
    assert book["bids"][0][0] < 60000 < book["asks"][0][0]
    await bybit.create_order(BTC, "market", "buy", 0.5)
    ticker = await bybit.fetch_ticker(BTC)
    assert ticker["last"] == 60000.5
    assert ticker["bid"] < 60000 < ticker["ask"]


async def test_error_codes_map_to_ccxt_exceptions(
    bybit: Any, bybit_clients: ClientFactory, bsim: SimExchange
) -> None:
    with pytest.raises(ccxt.InvalidOrder, match="110017"):
        await bybit.create_order(BTC, "market", "sell", 0.01, params={"reduceOnly": True})
    await bybit.create_order(BTC, "market", "buy", 0.002)
    capped = await bybit.create_order(BTC, "market", "sell", 0.005, params={"reduceOnly": True})
    (closed,) = await bybit.fetch_closed_orders(BTC, params={"orderId": capped["id"]})
    assert closed["filled"] == 0.002  # reduce-only is capped to the position, below min notional too
    with pytest.raises(ccxt.InvalidOrder, match="110094"):
        await bybit.create_order(BTC, "market", "buy", 0.001)
    with pytest.raises(ccxt.InsufficientFunds, match="110007"):
        await bybit.create_order(BTC, "market", "buy", 50)
    with pytest.raises(ccxt.BadRequest, match="10001"):
        await bybit.privatePostV5OrderCreate(
            {"category": "linear", "symbol": "NOPEUSDT", "side": "Buy", "orderType": "Market", "qty": "1"}
        )
    bad_secret = bybit_clients(secret="not-the-secret")
    await bad_secret.load_markets()
    with pytest.raises(ccxt.AuthenticationError, match="10004"):
        await bad_secret.fetch_balance()
    unknown = bybit_clients(api_key="nobody")
    with pytest.raises(ccxt.AuthenticationError, match="10003"):
        await unknown.fetch_balance()
    skewed = bybit_clients(timeDifference=30_000)  # our clock 30 s behind: outside recv_window 5000
    with pytest.raises(ccxt.InvalidNonce, match="10002"):
        await skewed.fetch_balance()
    bsim.engine.accounts[BYBIT_KEY].revoked = True
    with pytest.raises(ccxt.AuthenticationError, match="10003"):
        await bybit.fetch_balance()


async def test_keys_belong_to_one_venue(bybit_clients: ClientFactory, bsim: SimExchange) -> None:
    bsim.create_account("alice-b", "alice-b-secret", Decimal(1000))  # a Binance account
    client = bybit_clients(api_key="alice-b", secret="alice-b-secret")
    with pytest.raises(ccxt.AuthenticationError, match="10003"):
        await client.fetch_balance()
    from bot.venues import VenueMode, make_rest

    binance = make_rest(
        "binanceusdm",
        VenueMode.SIM,
        api_key=BYBIT_KEY,
        secret="bob-secret",
        rest_url=bsim.rest_url,
        ws_url=bsim.ws_url,
    )
    try:
        await binance.load_markets()
        with pytest.raises(ccxt.AuthenticationError):
            await binance.fetch_balance()
    finally:
        await binance.close()


async def test_rate_limit_per_uid_and_endpoint_with_headers() -> None:
    config = frozen_config(bybit={"rate_limits": {"/v5/position/list": 2}})
    async with SimExchange(config, venues=("bybit",)) as sim:
        sim.create_account(BYBIT_KEY, "bob-secret", Decimal(1000), venue="bybit")
        client = make_bybit(sim)
        seen: list[dict[str, str]] = []
        try:
            await client.load_markets()
            client.last_response_headers = None
            for _ in range(2):
                await client.fetch_positions()
                seen.append(dict(client.last_response_headers))
            with pytest.raises(ccxt.RateLimitExceeded, match="10006"):
                await client.fetch_positions()
            refused = dict(client.last_response_headers)
            await client.fetch_balance()  # another endpoint has its own budget
        finally:
            await client.close()
        assert [h["X-Bapi-Limit"] for h in seen] == ["2", "2"]
        assert [h["X-Bapi-Limit-Status"] for h in seen] == ["1", "0"]
        assert int(seen[0]["X-Bapi-Limit-Reset-Timestamp"]) > 1_600_000_000_000
        assert refused["X-Bapi-Limit-Status"] == "0"
        # the window rolls: the refusal says when the first of the two answered requests leaves it
        assert int(refused["X-Bapi-Limit-Reset-Timestamp"]) > int(seen[0]["X-Bapi-Limit-Reset-Timestamp"])


async def test_public_time_and_unknown_path(bsim: SimExchange) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(bsim.urls["bybit"]["rest"] + "/v5/market/time") as resp:
            body = await resp.json()
        assert body["retCode"] == 0
        assert abs(int(body["result"]["timeSecond"]) - time.time()) < 5
        assert set(body) == {"retCode", "retMsg", "result", "retExtInfo", "time"}
        async with http.get(bsim.urls["bybit"]["rest"] + "/v5/nope") as resp:
            assert resp.status == 404


async def test_flat_position_by_symbol_and_cumulative_realised_pnl(bybit: Any, bsim: SimExchange) -> None:
    await bybit.create_order(BTC, "market", "buy", 0.01)
    bsim.engine.set_price("BTCUSDT", Decimal(61_000))
    await bybit.create_order(BTC, "market", "sell", 0.01)
    raw = await bybit.privateGetV5PositionList({"category": "linear", "symbol": "BTCUSDT"})
    (row,) = raw["result"]["list"]
    assert (row["size"], row["side"]) == ("0", "")  # by symbol a flat position is still listed
    trades = bsim.engine.accounts[BYBIT_KEY].trades
    net = sum((t.realized_pnl - t.commission for t in trades), Decimal(0))
    assert Decimal(row["cumRealisedPnl"]) == net
    assert await bybit.fetch_positions() == []  # by settleCoin only open ones
    wallet = await bybit.privateGetV5AccountWalletBalance({"accountType": "UNIFIED"})
    assert Decimal(wallet["result"]["list"][0]["coin"][0]["cumRealisedPnl"]) == net
    assert Decimal(wallet["result"]["list"][0]["totalWalletBalance"]) == 100_000 + net


async def test_post_only_and_ioc_limits(bybit: Any) -> None:
    crossing = await bybit.create_order(THIN, "limit", "buy", 10, 1.01, params={"postOnly": True})
    (po,) = await bybit.fetch_canceled_and_closed_orders(THIN)
    assert (po["id"], po["status"], po["filled"]) == (crossing["id"], "canceled", 0)
    assert po["info"]["rejectReason"] == "EC_PostOnlyWillTakeLiquidity"
    resting = await bybit.create_order(THIN, "limit", "buy", 10, 0.98, params={"postOnly": True})
    (open_po,) = await bybit.fetch_open_orders(THIN)
    assert (open_po["id"], open_po["info"]["timeInForce"]) == (resting["id"], "PostOnly")
    ioc = await bybit.create_order(THIN, "limit", "buy", 300, 1.002, params={"timeInForce": "IOC"})
    (done,) = await bybit.fetch_closed_orders(THIN, params={"orderId": ioc["id"]})
    assert (done["status"], done["filled"], done["remaining"]) == ("canceled", 200, 0)
