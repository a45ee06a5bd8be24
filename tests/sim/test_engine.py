"""The matching engine and books without a network: positions, time in force, reduce-only,
margin, depletion and refill."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.sim.accounts import Account, Order, Position, SimError
from bot.sim.book import Book
from bot.sim.matching import MatchingEngine
from tests.sim.conftest import frozen_config

D = Decimal


@pytest.fixture
def engine() -> MatchingEngine:
    return MatchingEngine(frozen_config())


@pytest.fixture
def acct(engine: MatchingEngine) -> Account:
    return engine.create_account("k", "s", D(100_000))


def order(
    engine: MatchingEngine, acct: Account, side: str, qty: str, price: str | None = None, **extra: str
) -> Order:
    params = {"symbol": "THINUSDT", "side": side, "type": "LIMIT" if price else "MARKET", "quantity": qty}
    if price:
        params |= {"price": price, "timeInForce": extra.pop("tif", "GTC")}
    return engine.place_order(acct, params | extra, 0)


def test_position_realizes_pnl_on_the_closing_part_and_flips() -> None:
    pos = Position()
    assert pos.apply(D(2), D(100)) == 0
    assert pos.apply(D(2), D(110)) == 0
    assert pos.entry_price == D(105)
    assert pos.apply(D(-1), D(120)) == D(15)
    assert pos.apply(D(-5), D(100)) == D(-15)  # closes 3 at a loss of 5, opens a short of 2
    assert (pos.amt, pos.entry_price) == (D(-2), D(100))


def test_fees_and_realized_pnl_go_to_the_wallet(engine: MatchingEngine, acct: Account) -> None:
    o = order(engine, acct, "BUY", "100")
    fee = o.cum_quote * D("0.0005")
    assert acct.wallet == D(100_000) - fee
    engine.set_price("THINUSDT", D("1.1"))
    engine.books["THINUSDT"].refill_all()
    close = order(engine, acct, "SELL", "100", reduceOnly="true")
    realized = (close.avg_price - o.avg_price) * 100
    assert acct.wallet == D(100_000) - fee - close.cum_quote * D("0.0005") + realized
    assert acct.trades[-1].realized_pnl == realized


def test_ioc_fok_and_gtx(engine: MatchingEngine, acct: Account) -> None:
    ioc = order(engine, acct, "BUY", "500", "1.0040", tif="IOC")  # two levels of 200 reachable
    assert (ioc.status, ioc.executed_qty) == ("EXPIRED", D(400))
    engine.books["THINUSDT"].refill_all()
    fok = order(engine, acct, "BUY", "500", "1.0040", tif="FOK")
    assert (fok.status, fok.executed_qty) == ("EXPIRED", D(0))
    gtx = order(engine, acct, "BUY", "10", "1.0040", tif="GTX")
    assert gtx.status == "EXPIRED"
    maker = order(engine, acct, "BUY", "10", "0.9000", tif="GTX")
    assert maker.status == "NEW"


def test_resting_reduce_only_expires_when_the_position_is_gone(engine: MatchingEngine, acct: Account) -> None:
    order(engine, acct, "BUY", "100")
    tp = order(engine, acct, "SELL", "100", "1.2000", reduceOnly="true")
    order(engine, acct, "SELL", "100", reduceOnly="true")
    engine.set_price("THINUSDT", D("1.3"))
    assert tp.status == "EXPIRED"
    assert acct.position("THINUSDT").amt == 0


def test_margin_counts_open_orders(engine: MatchingEngine) -> None:
    poor = engine.create_account("p", "s", D(10))
    order(engine, poor, "BUY", "150", "0.5000")  # 75 notional at 20x: 3.75 margin
    order(engine, poor, "BUY", "150", "0.5000")
    with pytest.raises(SimError) as err:
        order(engine, poor, "BUY", "150", "0.5000")
    assert err.value.code == -2019


def test_rejects_carry_binance_codes(engine: MatchingEngine, acct: Account) -> None:
    cases = {
        -1121: {"symbol": "NOPE"},
        -1111: {"quantity": "1.5"},
        -4164: {"quantity": "2"},
        -1100: {"newClientOrderId": "has space"},
    }
    for code, override in cases.items():
        params = {"symbol": "THINUSDT", "side": "BUY", "type": "MARKET", "quantity": "10"} | override
        with pytest.raises(SimError) as err:
            engine.place_order(acct, params, 0)
        assert err.value.code == code, override
    assert acct.orders == {}


def test_depleted_levels_refill_over_time() -> None:
    now = [0.0]
    book = Book(frozen_config().market("THINUSDT"), clock=lambda: now[0])  # type: ignore[arg-type]
    taken = book.take(True, D(300))
    assert taken == [(D("1.0020"), D(200)), (D("1.0040"), D(100))]
    assert book.best(bids=False) == D("1.0040")
    now[0] = 100.0  # 0.05 of a level per second: long enough to refill completely
    assert book.levels(bids=False, limit=1) == [(D("1.0020"), D(200))]


def test_same_seed_same_walk() -> None:
    cfg = frozen_config().market("BTCUSDT")
    assert cfg is not None
    a, b = Book(cfg), Book(cfg)
    assert [a.random_step(1.0) for _ in range(20)] == [b.random_step(1.0) for _ in range(20)]
    assert a.fair != cfg.price


async def test_prices_walk_on_the_timer_and_cross_resting_orders() -> None:
    import asyncio

    from bot.sim.server import SimExchange

    async with SimExchange(frozen_config(tick_interval_s=0.02)) as sim:
        acct = sim.create_account("k", "s", D(100_000))
        start = sim.engine.books["THINUSDT"].fair
        # Inside the ladder's spread: a move of one tick either way brings the ladder to one of them.
        bid = order(sim.engine, acct, "BUY", "10", str(start + D("0.0019")))
        sell = order(sim.engine, acct, "SELL", "10", str(start - D("0.0019")))
        assert (bid.status, sell.status) == ("NEW", "NEW")
        for _ in range(500):
            if bid.status == "FILLED" or sell.status == "FILLED":
                break
            await asyncio.sleep(0.02)
        assert sim.engine.books["THINUSDT"].fair != start
        assert "FILLED" in (bid.status, sell.status)
