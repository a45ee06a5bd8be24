"""The Bybit adapter (bot.venues.bybit) with ccxt's own bybit clients, built by bot.venues.make_rest /
make_pro exactly as the daemon builds them, against the local exchange's Bybit personality."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from bot.core import clientid
from bot.core.errors import ErrorKind
from bot.core.types import LeadFill, OrderStatus, Side
from bot.sim.config import load_sim_config
from bot.sim.server import SimExchange
from bot.venues import VenueMode, adapter_for, make_pro, make_rest
from bot.venues.ccxt_stream import install_hook
from tests.sim.bybit_clients import BTC, BYBIT_KEY, BYBIT_SECRET, PEPE
from tests.sim.factory import ClientFactory, closing

BYBIT = adapter_for("bybit")


@pytest.fixture
async def bsim() -> AsyncIterator[SimExchange]:
    """Both personalities, prices frozen, order creation unthrottled (the backfill test places 130)."""
    config = load_sim_config(tick_interval_s=0, bybit={"rate_limits": {"/v5/order/create": 1000}})
    exchange = SimExchange(config, venues=("binance", "bybit"))
    await exchange.start()
    exchange.create_account(BYBIT_KEY, BYBIT_SECRET, Decimal(100_000), name="bob", venue="bybit")
    try:
        yield exchange
    finally:
        await exchange.stop()


@pytest.fixture
async def clients(bsim: SimExchange) -> AsyncIterator[ClientFactory]:
    urls = bsim.urls["bybit"]

    def make(key: str = BYBIT_KEY, secret: str = BYBIT_SECRET, *, pro: bool = False) -> Any:
        maker = make_pro if pro else make_rest
        return maker("bybit", VenueMode.SIM, api_key=key, secret=secret, rest_url=urls["rest"],
                     ws_url=urls["ws"])  # fmt: skip

    async with closing(make) as factory:
        yield factory


@pytest.fixture
async def rest(clients: ClientFactory) -> Any:
    client = clients()
    await client.load_markets()
    return client


def cid(n: int) -> str:
    return clientid.client_order_id("lead", f"t{n}", "f1", BTC, 0, BYBIT.client_ids)


async def test_market_specs_come_from_the_raw_filters(rest: Any) -> None:
    btc = BYBIT.market_spec(rest.market(BTC))
    assert (btc.venue_symbol, btc.step, btc.min_notional) == ("BTCUSDT", Decimal("0.001"), Decimal(100))
    pepe = BYBIT.market_spec(rest.market(PEPE))
    assert pepe.venue_symbol == "PEPEUSDT"
    assert (pepe.step, pepe.min_qty, pepe.tick) == (Decimal(1000), Decimal(1000), Decimal("1E-10"))
    assert pepe.contract_size == 1


async def test_order_with_a_link_id_is_settled_by_lookup(rest: Any) -> None:
    link = cid(1)
    params = BYBIT.order_params(link, reduce_only=False, ioc=False)
    reply = await rest.create_order(BTC, "market", "buy", "0.01", None, params)
    ack = BYBIT.order_outcome(reply, link)
    assert ack.status is OrderStatus.UNKNOWN
    assert ack.error is None
    assert ack.order_id
    found = BYBIT.order_outcome(await BYBIT.fetch_by_client_id(rest, BTC, link), link)
    assert found.status is OrderStatus.FILLED
    assert found.filled_qty == Decimal("0.01")
    assert found.avg_price is not None
    assert found.order_id == ack.order_id
    with pytest.raises(ccxt.OrderNotFound):
        await BYBIT.fetch_by_client_id(rest, BTC, cid(2))
    # Reused for linear whatever the first order's status: 110072, a duplicate to look up.
    with pytest.raises(ccxt.InvalidOrder) as caught:
        await rest.create_order(BTC, "market", "buy", "0.01", None, params)
    assert BYBIT.classify(caught.value, placing=True) is ErrorKind.DUPLICATE


async def test_open_and_cancelled_orders_are_found(rest: Any) -> None:
    link = cid(3)
    params = BYBIT.order_params(link, reduce_only=False, ioc=False)
    await rest.create_order(BTC, "limit", "buy", "0.01", "30000", params)
    assert (
        BYBIT.order_outcome(await BYBIT.fetch_by_client_id(rest, BTC, link), link).status is OrderStatus.NEW
    )
    await rest.cancel_order(None, BTC, {"orderLinkId": link})
    outcome = BYBIT.order_outcome(await BYBIT.fetch_by_client_id(rest, BTC, link), link)
    assert outcome.status is OrderStatus.CANCELED
    assert outcome.filled_qty == 0


async def test_reduce_only_ioc_and_positions(rest: Any) -> None:
    await rest.create_order(
        BTC, "market", "sell", "0.02", None, BYBIT.order_params(cid(4), reduce_only=False, ioc=False)
    )
    positions = BYBIT.positions(await rest.fetch_positions())
    assert positions[BTC].qty == Decimal("-0.02")
    assert positions[BTC].entry_price > 0
    params = BYBIT.order_params(cid(5), reduce_only=True, ioc=False)
    await rest.create_order(BTC, "market", "buy", "0.02", None, params)
    assert BTC not in {s for s, p in BYBIT.positions(await rest.fetch_positions()).items() if p.qty}
    with pytest.raises(ccxt.InvalidOrder) as caught:  # 110017: reduce-only with nothing to reduce
        await rest.create_order(
            BTC, "market", "buy", "0.02", None, BYBIT.order_params(cid(6), reduce_only=True, ioc=False)
        )
    assert BYBIT.classify(caught.value, placing=True) is ErrorKind.INVALID_ORDER


async def test_equity_and_benign_leverage(rest: Any) -> None:
    assert BYBIT.equity(await rest.fetch_balance()) == Decimal(100_000)
    await rest.set_leverage(7, BTC)
    with pytest.raises(ccxt.BadRequest) as caught:
        await rest.set_leverage(7, BTC)
    assert BYBIT.is_benign(caught.value)
    assert not BYBIT.is_benign(ccxt.BadRequest('bybit {"retCode":10001,"retMsg":"params error"}'))


async def test_key_problem_refuses_withdrawal_keys(bsim: SimExchange, clients: ClientFactory) -> None:
    assert await BYBIT.key_problem(clients(), VenueMode.SIM, allow_withdrawal=False) is None
    bsim.create_account("w-key", "w-secret", Decimal(1000), name="w", venue="bybit", withdrawals_enabled=True)
    risky = clients("w-key", "w-secret")
    assert "withdraw" in (await BYBIT.key_problem(risky, VenueMode.SIM, allow_withdrawal=False) or "")
    assert await BYBIT.key_problem(risky, VenueMode.SIM, allow_withdrawal=True) is None


async def test_backfill_pages_by_cursor_oldest_first(rest: Any) -> None:
    since = int(rest.milliseconds()) - 1000
    # BTC's first level (2 BTC) outlasts 65 orders of 0.01 a side: one fill per order. (On THIN's
    # slowly refilled 200-lot levels, whether an order straddles two levels depended on timing.)
    for n in range(130):
        await rest.create_order(BTC, "market", "buy" if n % 2 else "sell", "0.01", None)
    pages = [page async for page in BYBIT.backfill(rest, "lead", BTC, since, 1000)]
    assert [len(p) for p in pages] == [100, 30]  # the venue's page size caps the config's limit
    fills = [f for page in pages for f in page]
    assert len({f.trade_id for f in fills}) == 130
    assert [f.ts_ms for f in fills] == sorted(f.ts_ms for f in fills)
    assert all(isinstance(f.qty, Decimal) and f.symbol == BTC and f.source == "rest" for f in fills)
    assert sum(f.signed_qty for f in fills) == Decimal(0)
    assert sum(f.qty for f in fills) == Decimal("1.30")
    later = [f async for page in BYBIT.backfill(rest, "lead", BTC, fills[-1].ts_ms + 1, 50) for f in page]
    assert later == []


async def test_stream_fills_are_decoded_inside_ccxts_handler(clients: ClientFactory) -> None:
    pro = clients(pro=True)
    await pro.load_markets()
    seen: list[LeadFill] = []
    decode = BYBIT.stream_decoder("lead", pro)
    assert decode is not None

    def on_message(message: dict[str, Any]) -> None:
        event = decode(message)
        if isinstance(event, tuple):
            seen.extend(event)

    install_hook(pro, on_message)
    watch = asyncio.create_task(pro.watch_my_trades())
    try:
        while not any(c.isConnected for c in pro.clients.values()):
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)  # subscribed
        rest = clients()
        link = cid(7)
        await rest.create_order(
            PEPE, "market", "buy", "3000000", None, BYBIT.order_params(link, reduce_only=False, ioc=False)
        )
        for _ in range(200):
            if seen:
                break
            await asyncio.sleep(0.01)
    finally:
        watch.cancel()
    assert seen, "no fill decoded from the execution frame"
    fill = seen[0]
    assert (fill.symbol, fill.side, fill.client_order_id, fill.source) == (PEPE, Side.BUY, link, "ws")
    assert sum(f.qty for f in seen) == Decimal(3_000_000)
