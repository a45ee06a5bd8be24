"""The copy engine end to end: real ccxt against the local exchange, no mocks."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import ROUND_DOWN, Decimal

from bot.core.types import TradingState
from tests.integration.harness import BTC, THIN, Harness, follower

STEP = Decimal("0.001")


def down(value: Decimal) -> Decimal:
    return value.quantize(STEP, rounding=ROUND_DOWN)


def dispositions(h: Harness) -> set[tuple[str, str]]:
    """(lead trade id, follower) pairs the journal accounts for."""
    path = h.config["journal"]["path"]
    with sqlite3.connect(path) as db:
        tables = {r[0] for r in db.execute("select name from sqlite_master where type='table'")}
        assert "decisions" in tables
        cols = [r[1] for r in db.execute("pragma table_info(decisions)")]
        trigger = "trigger" if "trigger" in cols else "trade_id"
        return {(str(r[0]), str(r[1])) for r in db.execute(f"select {trigger}, follower from decisions")}


async def test_sizes_are_proportional_in_every_mode(harness: Harness) -> None:
    h = harness
    h.build_config([
        follower("mult", {"mode": "multiplier", "multiplier": "0.1"}),
        follower("eq", {"mode": "equity_ratio"}, balance=20_000),
        follower("alloc", {"mode": "allocation", "allocation": 10_000}, balance=50_000),
        follower("fixed", {"mode": "fixed_notional", "notional": 1200}),
    ])  # fmt: skip
    await h.start_daemon()
    order = await h.trade(BTC, "buy", "0.1")
    price = Decimal(order["info"]["avgPrice"])
    await h.settle(fills=1)
    expected = {
        "mult": Decimal("0.010"),
        "eq": Decimal("0.020"),  # 20,000 / 100,000 of the lead
        "alloc": Decimal("0.010"),  # 10,000 allocated / 100,000 lead equity
        "fixed": down(Decimal(1200) / price),
    }
    for fid, qty in expected.items():
        assert (await h.positions(fid)).get("BTCUSDT") == qty, fid

    await h.trade(BTC, "sell", "0.05", reduceOnly=True)  # the lead halves: so does everyone
    await h.settle(fills=2)
    for fid, qty in expected.items():
        assert (await h.positions(fid)).get("BTCUSDT") == down(qty / 2), fid

    await h.trade(BTC, "sell", "0.05", reduceOnly=True)
    await h.settle(fills=3)
    for fid in expected:
        assert "BTCUSDT" not in await h.positions(fid), fid
    lead_trades = [str(t["id"]) for t in (await h.admin("lead"))["trades"]]
    accounted = dispositions(h)
    missing = [(t, f) for t in lead_trades for f in expected if (t, f) not in accounted]
    assert not missing, f"lead fills without a recorded disposition: {missing}"


async def test_flip_and_partial_fills_end_on_target(harness: Harness) -> None:
    h = harness
    h.build_config([follower("a", {"mode": "multiplier", "multiplier": "0.2"})])
    await h.start_daemon()
    lead = await h.lead()
    book = await lead.fetch_order_book(THIN)
    best_ask, level_qty = Decimal(str(book["asks"][0][0])), Decimal(str(book["asks"][0][1]))
    # Larger than the best level, resting just under it: it fills in pieces as the price walks down.
    qty = (level_qty * Decimal("1.5")).quantize(Decimal(1))
    limit = await lead.create_order(THIN, "limit", "buy", str(qty), str(best_ask - Decimal("0.0001")), {})
    for i in range(1, 8):
        price = (best_ask * (1 - Decimal("0.0008") * i)).quantize(Decimal("0.0001"))
        async with h.http.post(
            f"{h.sim.rest_url}/_sim/price", json={"symbol": "THINUSDT", "price": str(price)}
        ):  # type: ignore[union-attr]
            pass
        await asyncio.sleep(0.05)
    trades = [t for t in (await h.admin("lead"))["trades"] if str(t["orderId"]) == str(limit["id"])]
    assert len(trades) >= 2, "the resting order should have filled in several pieces"
    filled = sum(Decimal(t["qty"]) for t in trades)
    await h.settle(fills=len(trades))
    whole = Decimal(1)  # THIN's lot
    assert (await h.positions("a")).get("THINUSDT") == (filled * Decimal("0.2")).quantize(whole, ROUND_DOWN)
    for o in await lead.fetch_open_orders(THIN):
        await lead.cancel_order(o["id"], THIN)
    # Flip: the lead sells twice its position; the follower closes (reduce-only) then opens short.
    flip = await h.trade(THIN, "sell", str(filled * 2))
    flip_fills = [t for t in (await h.admin("lead"))["trades"] if str(t["orderId"]) == str(flip["id"])]
    await h.settle(fills=len(trades) + len(flip_fills))
    assert (await h.positions("a")).get("THINUSDT") == -(filled * Decimal("0.2")).quantize(whole, ROUND_DOWN)
    orders = (await h.admin("a"))["orders"]
    assert any(o["reduceOnly"] for o in orders), "the flip's closing leg must be reduce-only"


async def test_caps_hold_under_concurrent_fills(harness: Harness) -> None:
    h = harness
    h.build_config([follower("capped", {"mode": "multiplier", "multiplier": "1"}, balance=100_000,
                             max_position_notional=3_000, max_order_notional=2_000)])  # fmt: skip
    engine = await h.start_daemon()
    await asyncio.gather(*(h.trade(BTC, "buy", "0.01") for _ in range(8)))
    await h.settle(fills=8)
    pos = (await h.positions("capped")).get("BTCUSDT", Decimal(0))
    mark = engine.marks[BTC]
    assert 0 < pos * mark <= Decimal(3_000)
    for order in (await h.admin("capped"))["orders"]:
        assert Decimal(order["executedQty"]) * Decimal(order["avgPrice"] or 0) <= Decimal(2_000) * Decimal(
            "1.01"
        )


async def test_exits_pass_reduce_only_state_and_order_cap(harness: Harness) -> None:
    h = harness
    h.build_config([follower("f", {"mode": "multiplier", "multiplier": "0.5"}, max_order_notional=10_000)])
    engine = await h.start_daemon()
    await h.trade(BTC, "buy", "0.2")
    await h.settle(fills=1)
    held = (await h.positions("f"))["BTCUSDT"]
    assert held * engine.marks[BTC] <= Decimal(10_000)  # the entry was clipped by the order cap
    engine.set_state(TradingState.REDUCE_ONLY, "test: no entries", "f")
    await h.trade(BTC, "buy", "0.1")  # an entry: denied in REDUCE_ONLY
    await h.settle(fills=2)
    assert (await h.positions("f"))["BTCUSDT"] == held
    await h.trade(BTC, "sell", "0.3", reduceOnly=True)  # the lead exits: the follower exits in full
    await h.settle(fills=3)
    assert "BTCUSDT" not in await h.positions("f")


async def test_one_failing_follower_does_not_delay_the_others(harness: Harness) -> None:
    h = harness
    h.build_config([
        follower("slow", {"mode": "multiplier", "multiplier": "0.1"}),
        follower("revoked", {"mode": "multiplier", "multiplier": "0.1"}),
        follower("poor", {"mode": "multiplier", "multiplier": "10"}, balance=50),
        follower("ok", {"mode": "multiplier", "multiplier": "0.1"}),
    ])  # fmt: skip
    engine = await h.start_daemon()
    async with h.http.post(f"{h.sim.rest_url}/_sim/accounts/{h.keys['revoked'][0]}/revoke"):  # type: ignore[union-attr]
        pass
    await h.fault(api_key=h.keys["slow"][0], delay_ms=1500, count=1)
    await h.trade(BTC, "buy", "0.05")
    await h.settle(fills=1)
    ok_orders = (await h.admin("ok"))["orders"]
    slow_orders = (await h.admin("slow"))["orders"]
    assert len(ok_orders) == 1
    assert len(slow_orders) == 1
    # The healthy follower's order reached the exchange while the slow one's was still held.
    assert ok_orders[0]["recvTimeNs"] < slow_orders[0]["ackTimeNs"]
    assert engine.followers["revoked"].state is TradingState.HALTED
    assert "authentication" in engine.followers["revoked"].state_reason
    assert (await h.positions("ok"))["BTCUSDT"] == Decimal("0.005")
    assert "BTCUSDT" not in await h.positions("poor")  # insufficient margin: rejected, recorded


async def test_burst_is_copied_without_waiting_for_another_message(harness: Harness) -> None:
    """Fills that arrive back to back are each delivered at once: none waits in ccxt's cache for a
    later message (there is none after the burst)."""
    h = harness
    h.build_config([follower("f", {"mode": "multiplier", "multiplier": "0.1"})])
    engine = await h.start_daemon()
    await asyncio.gather(*(h.trade(BTC, "buy", "0.01") for _ in range(12)))
    await h.settle(fills=12, timeout=5)
    assert engine.leads["lead"].fills == 12
    assert engine.feeds["lead"].backfilled == 0
    assert (await h.positions("f"))["BTCUSDT"] == Decimal("0.012")


async def test_leverage_is_the_leads_or_fixed_before_the_first_copy(harness: Harness) -> None:
    h = harness
    h.build_config([
        follower("copies", {"mode": "multiplier", "multiplier": "0.1"}),
        follower("fixed", {"mode": "multiplier", "multiplier": "0.1"}),
    ])  # fmt: skip
    h.config["followers"][0]["leverage"] = "lead"
    h.config["followers"][1]["leverage"] = 3
    lead = await h.lead()
    await lead.set_leverage(7, BTC)
    await h.trade(BTC, "buy", "0.05")  # an open position: its leverage shows in positionRisk
    await h.start_daemon()
    accounts = h.sim.engine.accounts
    assert accounts[h.keys["copies"][0]].leverage_of("BTCUSDT") == 7
    assert accounts[h.keys["fixed"][0]].leverage_of("BTCUSDT") == 3
