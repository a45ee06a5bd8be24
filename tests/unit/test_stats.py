"""Lead statistics on a hand-computed fill sequence and equity series."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.aum.stats import (
    DAY_MS,
    LeadTrade,
    PositionBook,
    lead_stats,
    max_drawdown,
    realized_pnl,
    window_return,
)
from bot.core.types import Side

D = Decimal
BUY, SELL = Side.BUY, Side.SELL


def trade(symbol: str, side: Side, qty: str, price: str, ts: int = 0, **kw: Decimal) -> LeadTrade:
    return LeadTrade(symbol=symbol, side=side, qty=D(qty), price=D(price), ts_ms=ts, **kw)


# Hand computation of the sequence below (one-way positions, average entry):
#  1 BTC buy 1 @100   pos +1, entry 100                          realized 0
#  2 BTC buy 1 @110   pos +2, entry (100+110)/2 = 105            realized 0
#  3 BTC sell 1 @120  pos +1, entry 105                          realized (120-105)*1 = +15
#  4 BTC sell 2 @100  closes 1: (100-105)*1 = -5, flips to -1 @100  realized -5
#  5 BTC buy 1 @90    closes the short: (100-90)*1 = +10, flat   realized +10
#  6 ETH buy 1 @50    pos +1 @50                                 realized 0
#  7 ETH sell 1 @50   flat                                       realized 0 (neither win nor loss)
# wins 2 (15, 10), losses 1 (-5): win rate 2/3; realized total 20.
SEQUENCE = [
    trade("BTC", BUY, "1", "100", fee=D("0.1")),
    trade("BTC", BUY, "1", "110", fee=D("0.1")),
    trade("BTC", SELL, "1", "120", fee=D("0.1")),
    trade("BTC", SELL, "2", "100", fee=D("0.2")),
    trade("BTC", BUY, "1", "90", fee=D("0.1")),
    trade("ETH", BUY, "1", "50"),
    trade("ETH", SELL, "1", "50"),
]

# Equity (ts in days): 0:1000, 10:1200 (peak), 20:900, 30:1300 (new peak), 40:1105, 50:1170.
# Drawdowns: from 1200 to 900 = 300/1200 = 0.25; from 1300 to 1105 = 195/1300 = 0.15. Max = 0.25.
# now = day 50: 7d window starts day 43 -> last point at or before is day 40 (1105): 1170/1105 - 1
#               30d starts day 20 (900): 1170/900 - 1 = 0.3
#               90d starts day -40: no data that far back -> None
#               all time from day 0 (1000): 1170/1000 - 1 = 0.17
EQUITY_BY_DAY = [(0, 1000), (10, 1200), (20, 900), (30, 1300), (40, 1105), (50, 1170)]
EQUITY = [(d * DAY_MS, D(v)) for d, v in EQUITY_BY_DAY]


def test_realized_pnl_of_known_sequence() -> None:
    assert realized_pnl(SEQUENCE) == [0, 0, 15, -5, 10, 0, 0]


def test_lead_stats_of_known_sequence() -> None:
    stats = lead_stats(SEQUENCE, EQUITY, now_ms=50 * DAY_MS)
    assert stats.pnl_realized == 20
    assert stats.pnl_unrealized == 0  # everything is flat
    assert stats.fees == D("0.6")
    assert stats.wins == 2
    assert stats.losses == 1
    assert stats.win_rate == D(2) / D(3)
    assert stats.trades == 7
    assert stats.max_drawdown == D("0.25")
    assert stats.return_7d == D(1170) / D(1105) - 1
    assert stats.return_30d == D("0.3")
    assert stats.return_90d is None
    assert stats.return_all == D("0.17")


def test_equity_points_after_now_are_ignored_and_order_does_not_matter() -> None:
    shuffled = list(reversed(EQUITY)) + [(60 * DAY_MS, D(1))]
    stats = lead_stats(SEQUENCE, shuffled, now_ms=50 * DAY_MS)
    assert stats.return_all == D("0.17")
    assert stats.max_drawdown == D("0.25")


def test_venue_realized_pnl_takes_precedence() -> None:
    fills = [trade("BTC", BUY, "1", "100"), trade("BTC", SELL, "1", "90", realized_pnl=D("3"))]
    stats = lead_stats(fills, [], now_ms=0)
    assert stats.pnl_realized == 3
    assert stats.win_rate == 1
    assert stats.return_all is None


def test_unrealized_needs_marks_when_positions_are_open() -> None:
    fills = [trade("BTC", BUY, "2", "100"), trade("ETH", SELL, "3", "10")]
    assert lead_stats(fills, [], now_ms=0).pnl_unrealized is None
    stats = lead_stats(fills, [], now_ms=0, marks={"BTC": D(105), "ETH": D(12)})
    assert stats.pnl_unrealized == 2 * 5 + (-3) * 2
    with pytest.raises(ValueError, match="ETH"):
        lead_stats(fills, [], now_ms=0, marks={"BTC": D(105)})
    assert stats.win_rate is None


def test_partial_reduction_keeps_entry_and_flip_reprices() -> None:
    book = PositionBook()
    book.apply(trade("X", SELL, "4", "50"))
    step = book.apply(trade("X", BUY, "1", "40"))
    assert (step.position_after, step.avg_entry_after, step.realized) == (D(-3), D(50), D(10))
    step = book.apply(trade("X", BUY, "5", "60"))
    assert (step.closed_qty, step.opened_qty, step.realized) == (D(3), D(2), D(-30))
    assert book.positions() == {"X": (D(2), D(60))}


def test_non_positive_quantity_is_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        realized_pnl([trade("X", BUY, "0", "1")])


def test_max_drawdown_edges() -> None:
    assert max_drawdown([]) == 0
    assert max_drawdown([D(1), D(2), D(3)]) == 0
    assert max_drawdown([D(10), D(5), D(20), D(15)]) == D("0.5")


def test_window_return_with_non_positive_start_is_none() -> None:
    assert window_return([(0, D(0)), (1, D(5))], None, 1) is None


fill_st = st.tuples(
    st.sampled_from([BUY, SELL]),
    st.integers(min_value=1, max_value=50),
    st.integers(min_value=1, max_value=1000),
)


@given(st.lists(fill_st, min_size=1, max_size=30), st.integers(min_value=1, max_value=1000))
def test_realized_plus_unrealized_equals_cash_flow(raw: list[tuple[Side, int, int]], mark: int) -> None:
    # Conservation: whatever the path, realized + unrealized at the mark equals the cash paid and
    # received plus the final position valued at the mark.
    fills = [trade("S", side, str(q), str(p)) for side, q, p in raw]
    stats = lead_stats(fills, [], now_ms=0, marks={"S": D(mark)})
    position = sum((f.qty * f.side.sign for f in fills), D(0))
    cash = sum((-f.qty * f.side.sign * f.price for f in fills), D(0))
    assert stats.pnl_unrealized is not None
    total = stats.pnl_realized + stats.pnl_unrealized
    assert abs(total - (cash + position * mark)) < D("1e-15")
