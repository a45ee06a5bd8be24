"""A follower's equity between account reads: marked to market from its own fills and the mark,
equal to what the exchange itself holds, with no read of the account (bot.live.work.Balance)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from tests.integration.harness import BTC, Harness, follower
from tests.integration.test_stops import move_price


async def sim_equity(h: Harness, account: str, symbol_id: str, mark: Decimal) -> Decimal:
    """The exchange's own figures for the account: wallet plus the position valued at `mark`."""
    data = await h.admin(account)
    wallet = Decimal(data["balance"])
    for p in data["positions"]:
        if p["symbol"] == symbol_id:
            return wallet + Decimal(p["positionAmt"]) * (mark - Decimal(p["entryPrice"]))
    return wallet


async def test_equity_follows_own_fills_and_marks_without_reading_the_account(harness: Harness) -> None:
    h = harness
    h.build_config([follower("f", {"mode": "multiplier", "multiplier": "1"}, balance=10_000)])
    engine = await h.start_daemon()
    f = engine.followers["f"]
    read_ms = f.balance.read_ms
    assert read_ms > 0
    assert f.balance.equity == Decimal("10000")
    order = await h.trade(BTC, "buy", "0.1")
    await h.trade(BTC, "buy", "0.05")
    await h.settle(fills=2)
    entry = Decimal(order["info"]["avgPrice"])
    for target in (entry * Decimal("0.98"), entry * Decimal("1.03")):
        await move_price(h, "BTCUSDT", target)
        for _ in range(60):  # the public mark feed brings it (about 1 s)
            mark = f.engine.mark(BTC)
            if mark is not None and abs(mark - target) / target < Decimal("0.002"):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"the mark did not follow {target}: {f.engine.mark(BTC)}")
        await asyncio.sleep(0)  # the coalesced stop pass revalues on the next loop turn
        mark = f.engine.mark(BTC)
        assert mark is not None
        # Valued at the same mark, the follower's equity is what the exchange holds for it; the fee
        # is estimated at the market's published taker rate, which the exchange also charges.
        expected = await sim_equity(h, "f", "BTCUSDT", mark)
        assert abs(f.balance.revalue(f.engine.mark) - expected) < Decimal("0.01"), (mark, expected)
        moved = (target - entry) * Decimal("0.15")
        assert abs(f.balance.equity - (Decimal("10000") + moved)) < abs(moved) / 2 + 20  # it did move
    await h.trade(BTC, "sell", "0.15", reduceOnly=True)  # closed: the PnL is realized
    await h.settle(fills=3)
    assert "BTCUSDT" not in await h.positions("f")
    assert abs(f.balance.equity - Decimal((await h.admin("f"))["balance"])) < Decimal("0.01")
    assert f.balance.read_ms == read_ms, "the account was read: equity must come from fills and marks"
