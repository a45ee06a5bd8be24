"""The AUM definition, marking to market, ranking and the AUM cap."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.aum.cap import admit
from bot.aum.definition import (
    RANK_COLUMNS,
    FollowerCapital,
    LeadRow,
    lead_aum,
    mark_to_market,
    rank,
)
from bot.aum.plot import plot_aum, trend_line
from bot.core.types import TradingState

D = Decimal
ACTIVE, REDUCE_ONLY, HALTED = TradingState.ACTIVE, TradingState.REDUCE_ONLY, TradingState.HALTED


def cap(
    follower: str,
    allocation: str | None,
    equity: str,
    state: TradingState = ACTIVE,
    *,
    lead: str = "L1",
    leads_followed: int = 1,
    enabled: bool = True,
) -> FollowerCapital:
    return FollowerCapital(
        follower=follower,
        lead=lead,
        allocation=D(allocation) if allocation is not None else None,
        equity=D(equity),
        state=state,
        leads_followed=leads_followed,
        enabled=enabled,
    )


def test_lead_aum_caps_by_equity_and_skips_halted() -> None:
    rows = [
        cap("a", "1000", "1500"),  # allocation fits: 1000
        cap("b", "1000", "600", REDUCE_ONLY),  # lost money: counts its equity, 600
        cap("c", "1000", "5000", HALTED),  # halted: 0
        cap("d", "1000", "5000", enabled=False),  # disabled: 0
        cap("e", None, "900", leads_followed=3),  # no allocation: 900 split over 3 leads = 300
        cap("f", "500", "-20"),  # negative equity counts as nothing
        cap("x", "9999", "9999", lead="L2"),  # another lead's follower
    ]
    snap = lead_aum("L1", rows, lead_equity=None, include_lead=False)
    assert snap.aum == 1000 + 600 + 300
    assert snap.followers == 3
    assert dict(snap.contributions) == {"a": 1000, "b": 600, "c": 0, "d": 0, "e": 300, "f": 0}
    assert snap.contribution("e") == 300
    assert snap.contribution("x") == 0
    assert snap.lead_equity == 0


def test_lead_aum_includes_the_lead_when_asked() -> None:
    rows = [cap("a", "100", "100")]
    assert lead_aum("L1", rows, lead_equity=D(50), include_lead=True).aum == 150
    assert lead_aum("L1", rows, lead_equity=D(50), include_lead=False).aum == 100
    with pytest.raises(ValueError, match="no equity was given for lead L1"):
        lead_aum("L1", rows, lead_equity=None, include_lead=True)


def test_lead_aum_rejects_inconsistent_rows() -> None:
    with pytest.raises(ValueError, match="follower a appears twice"):
        lead_aum("L1", [cap("a", "1", "1"), cap("a", "2", "2")], lead_equity=None, include_lead=False)
    with pytest.raises(ValueError, match="negative"):
        lead_aum("L1", [cap("a", "-1", "1")], lead_equity=None, include_lead=False)
    with pytest.raises(ValueError, match="leads_followed"):
        lead_aum("L1", [cap("a", None, "1", leads_followed=0)], lead_equity=None, include_lead=False)


def test_mark_to_market_long_and_short() -> None:
    positions = {"BTC": (D("0.5"), D(60000)), "ETH": (D(-2), D(3000)), "SOL": (D(0), D(1))}
    marks = {"BTC": D(62000), "ETH": D(3100)}
    # 0.5 * 2000 = +1000 on BTC; -2 * 100 = -200 on ETH; SOL is flat and needs no mark.
    assert mark_to_market(D(10000), positions, marks) == D(10800)
    with pytest.raises(ValueError, match="no mark price for ETH"):
        mark_to_market(D(0), positions, {"BTC": D(1)})


ROWS = [
    LeadRow("carol", D(500), 3, return_30d=D("0.1"), max_drawdown=D("0.3"), projected_slippage_bps=D(4)),
    LeadRow("alice", D(900), 5, return_30d=D("0.2"), max_drawdown=D("0.1"), projected_slippage_bps=D(9)),
    LeadRow("bob", D(900), 2, return_30d=None, max_drawdown=D("0.1")),
    LeadRow("dave", D(100), 1, return_30d=D("-0.05"), max_drawdown=None, projected_slippage_bps=D(1)),
]


def leads(rows: list[LeadRow]) -> list[str]:
    return [r.lead for r in rows]


def test_rank_by_aum_breaks_ties_by_lead() -> None:
    assert leads(rank(ROWS)) == ["alice", "bob", "carol", "dave"]


def test_rank_missing_values_go_last() -> None:
    assert leads(rank(ROWS, "return_30d")) == ["alice", "carol", "dave", "bob"]


def test_rank_drawdown_and_slippage_ascending() -> None:
    assert leads(rank(ROWS, "max_drawdown")) == ["alice", "bob", "carol", "dave"]
    assert leads(rank(ROWS, "projected_slippage_bps")) == ["dave", "carol", "alice", "bob"]


def test_rank_unknown_column_lists_valid_ones() -> None:
    with pytest.raises(ValueError, match="win_rate") as info:
        rank(ROWS, "sharpe")
    assert "sharpe" in str(info.value)
    assert "lead" not in RANK_COLUMNS
    assert all(rank(ROWS, column) for column in RANK_COLUMNS)


def test_admit_clips_at_the_cap() -> None:
    capitals = [
        FollowerCapital("a", "L", D(800), D(10**6), ACTIVE),
        FollowerCapital("b", "L", D(500), D(10**6), ACTIVE),
    ]
    a, b = admit("L", capitals, D(1000))
    assert (a.admitted, a.reason) == (D(800), None)
    assert b.admitted == 200
    assert b.reason is not None
    assert "1000" in b.reason
    assert "200" in b.reason
    (over,) = admit("L", capitals[1:], D(1000), lead_equity=D(1200))  # already over the cap
    assert over.admitted == 0
    assert admit("L", capitals, None)[1].admitted == 500


def test_plot_aum_writes_a_png(tmp_path: Path) -> None:
    history = [
        (1_700_000_000_000 + i * 3_600_000, lead, D(1000 + 50 * i))
        for i in range(10)
        for lead in ("L1", "L2")
    ]
    points = [(D(1000 + 100 * i), D(i) / 2) for i in range(20)]
    target = tmp_path / "aum.png"
    plot_aum(history, points, str(target))
    data = target.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 1000
    empty = tmp_path / "empty.png"
    plot_aum([], [], str(empty))  # no data yet still gives a readable picture
    assert empty.read_bytes().startswith(b"\x89PNG")


def test_trend_line_fits_exact_points() -> None:
    # y = 0.5 x + 2
    assert trend_line([(D(0), D(2)), (D(2), D(3)), (D(4), D(4))]) == (D("0.5"), D(2))
    assert trend_line([(D(1), D(1))]) is None
    assert trend_line([(D(1), D(1)), (D(1), D(2))]) is None
