"""Book walking, projected slippage at larger AUM, and the AUM cap that keeps it under a limit."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.aum.capacity import (
    DEFAULT_MULTIPLIERS,
    Level,
    max_aum_for_slippage,
    projection,
    slippage_bps,
    typical_entries,
    walk_book,
)
from bot.aum.stats import LeadTrade
from bot.core.types import Side

D = Decimal
ASKS = [(D(100), D(1)), (D(101), D(2)), (D(102), D(3))]
BIDS = [(D(100), D(1)), (D(99), D(2)), (D(98), D(3))]


def projected_slippage(
    levels: Sequence[Level],
    ref_price: Decimal,
    side: Side,
    lead_qty: Decimal,
    total_ratio: Decimal,
    multipliers: Sequence[int] = DEFAULT_MULTIPLIERS,
    *,
    after_lead: bool = True,
) -> dict[int, Decimal]:
    """multiple -> projected bps of `projection`."""
    points = projection(levels, ref_price, side, lead_qty, total_ratio, multipliers, after_lead=after_lead)
    return {m: p.bps for m, p in zip(multipliers, points, strict=True)}


def test_walk_book_within_depth() -> None:
    walk = walk_book(ASKS, D(2))  # 1 @100 + 1 @101
    assert walk.avg_price == D("100.5")
    assert (walk.filled, walk.levels_consumed, walk.exhausted, walk.worst_price) == (D(2), 2, False, D(101))


def test_walk_book_runs_out() -> None:
    walk = walk_book(ASKS, D(10))  # 100 + 2*101 + 3*102 = 608 for 6
    assert walk.avg_price == D(608) / D(6)
    assert (walk.filled, walk.levels_consumed, walk.exhausted) == (D(6), 3, True)
    empty = walk_book([], D(1))
    assert (empty.avg_price, empty.filled, empty.exhausted) == (None, D(0), True)
    with pytest.raises(ValueError, match="positive"):
        walk_book(ASKS, D(0))


def test_slippage_sign_worse_is_positive() -> None:
    assert slippage_bps(Side.BUY, D(100), D("100.5")) == 50
    assert slippage_bps(Side.BUY, D(100), D("99.5")) == -50
    assert slippage_bps(Side.SELL, D(100), D(99)) == 100
    assert slippage_bps(Side.SELL, D(100), D(101)) == -100


def test_projection_follows_the_lead_and_extrapolates_past_depth() -> None:
    # The lead's 1 took the 100 level; the followers (ratio 1) walk 101 x2, 102 x3.
    # m=1: 1 @101 -> 100 bps; m=2: 2 @101 -> 100 bps; m=5: (202 + 306) / 5 = 101.6 -> 160 bps;
    # m=10: 5 visible (508) + 5 beyond at 102 * 1.005 = 102.51 -> (508 + 512.55) / 10 = 102.055 -> 205.5 bps.
    result = projected_slippage(ASKS, D(100), Side.BUY, D(1), D(1))
    assert result == {1: D(100), 2: D(100), 5: D(160), 10: D("205.5")}
    points = projection(ASKS, D(100), Side.BUY, D(1), D(1))
    assert [p.extrapolated for p in points] == [False, False, False, True]
    assert points[-1].extrapolated_qty == 5


def test_projection_sell_side_and_without_lead() -> None:
    # Not net of the lead: 2 @ 100, 99 -> avg 99.5 vs ref 100 -> 50 bps worse.
    result = projected_slippage(BIDS, D(100), Side.SELL, D(1), D(2), (1,), after_lead=False)
    assert result == {1: D(50)}


def test_projection_rejects_bad_books() -> None:
    with pytest.raises(ValueError, match="asks ascending"):
        projected_slippage(BIDS, D(100), Side.BUY, D(1), D(1))
    with pytest.raises(ValueError, match="level 0"):
        projected_slippage([(D(0), D(1))], D(100), Side.BUY, D(1), D(1))
    with pytest.raises(ValueError, match="total ratio"):
        projected_slippage(ASKS, D(100), Side.BUY, D(1), D(0))


def test_max_aum_for_slippage_bisects_to_the_limit() -> None:
    # Up to m=2 the followers stay on the 101 level (100 bps); any more reaches 102.
    m = max_aum_for_slippage(ASKS, D(100), Side.BUY, D(1), D(1), D(100))
    assert D(2) - D("0.001") <= m <= D(2)
    # Even a tiny order after the lead pays 100 bps: nothing fits under 50.
    assert max_aum_for_slippage(ASKS, D(100), Side.BUY, D(1), D(1), D(50)) == 0
    # A generous limit is never reached below the search bound.
    assert max_aum_for_slippage(ASKS, D(100), Side.BUY, D(1), D(1), D(10**6), max_multiple=D(50)) == 50


def test_typical_entry_counts_opening_quantities_only() -> None:
    def t(side: Side, qty: str, symbol: str = "BTC") -> LeadTrade:
        return LeadTrade(symbol=symbol, side=side, qty=D(qty), price=D(10), ts_ms=0)

    # Entries: buy 1, buy 3, the flip's 2 opening a short; sells that only reduce are not entries.
    fills = [t(Side.BUY, "1"), t(Side.BUY, "3"), t(Side.SELL, "2"), t(Side.SELL, "4"), t(Side.BUY, "2")]
    assert typical_entries(fills, window=10) == {"BTC": 2}  # median(1, 3, 2)
    assert typical_entries(fills, window=2) == {"BTC": D("2.5")}  # median(3, 2)
    mixed = [*fills, t(Side.SELL, "7", "ETH")]
    assert typical_entries(mixed, 10) == {"BTC": D(2), "ETH": D(7)}
    assert "SOL" not in typical_entries(mixed, 10)


levels_st = st.lists(
    st.tuples(st.integers(min_value=1, max_value=50), st.integers(min_value=1, max_value=20)),
    min_size=1,
    max_size=10,
)


@given(levels_st, st.lists(st.integers(min_value=1, max_value=100), min_size=2, max_size=6, unique=True))
def test_projected_slippage_never_falls_as_aum_grows(raw: list[tuple[int, int]], mults: list[int]) -> None:
    # Build an ascending ask book from positive price increments.
    price = D(1000)
    asks = []
    for step, size in raw:
        price += D(step) / 10
        asks.append((price, D(size)))
    ordered = sorted(mults)
    result = projected_slippage(asks, D(1000), Side.BUY, D(1), D("0.5"), ordered)
    values = [result[m] for m in ordered]
    assert values == sorted(values)
    assert all(v >= 0 for v in values)
