"""Lead statistics from the lead's own fills and its equity series: returns over 7/30/90 days and all
time, realized and unrealized PnL, maximum drawdown, win rate and trade count.

Pure functions over `Decimal`; no I/O. Positions are one-way (Binance `positionSide BOTH`): a fill
either opens, adds to, reduces, closes or flips the one position per symbol. Realized PnL is the
price PnL of the reduced quantity against the average entry price, before fees, which is what Binance
reports as `realizedPnl`; fees are summed separately.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from bot.core.types import ZERO, LeadFill, Side

DAY_MS = 86_400_000
WINDOWS_DAYS = (7, 30, 90)


class FillLike(Protocol):
    """What position reconstruction needs from a fill: `LeadFill` and `LeadTrade` both qualify."""

    @property
    def symbol(self) -> str: ...
    @property
    def side(self) -> Side: ...
    @property
    def qty(self) -> Decimal: ...
    @property
    def price(self) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class LeadTrade:
    """One fill of the lead's own account with the fields statistics need.

    `realized_pnl` is the venue's figure when it reports one; None means "reconstruct it"."""

    symbol: str
    side: Side
    qty: Decimal  # > 0, base units
    price: Decimal
    ts_ms: int
    fee: Decimal = ZERO  # in the settle currency, positive = paid
    realized_pnl: Decimal | None = None


def lead_trades(fills: Iterable[LeadFill]) -> list[LeadTrade]:
    """The journal's lead fills as statistics inputs, in time order."""
    trades = [LeadTrade(f.symbol, f.side, f.qty, f.price, f.ts_ms) for f in fills]
    return sorted(trades, key=lambda t: t.ts_ms)


@dataclass(frozen=True, slots=True)
class PositionStep:
    """The effect of one fill on its symbol's one-way position."""

    position_after: Decimal  # signed
    avg_entry_after: Decimal  # 0 when flat
    closed_qty: Decimal  # quantity of the previous position this fill reduced (>= 0)
    opened_qty: Decimal  # quantity this fill added to (or opened, after a flip) the position (>= 0)
    realized: Decimal  # price PnL of closed_qty against the previous average entry


@dataclass(frozen=True, slots=True)
class LeadStats:
    return_7d: Decimal | None  # fraction: 0.05 = +5 %
    return_30d: Decimal | None
    return_90d: Decimal | None
    return_all: Decimal | None
    pnl_realized: Decimal  # before fees
    pnl_unrealized: Decimal | None  # None when positions are open but no marks were given
    fees: Decimal
    max_drawdown: Decimal  # fraction of the peak: 0.25 = 25 %
    win_rate: Decimal | None  # None when no fill realized a non-zero PnL
    wins: int
    losses: int
    trades: int


class PositionBook:
    """One-way positions per symbol with their average entry price."""

    def __init__(self) -> None:
        self._qty: dict[str, Decimal] = {}
        self._entry: dict[str, Decimal] = {}

    def apply(self, fill: FillLike) -> PositionStep:
        if fill.qty <= 0:
            raise ValueError(f"fill quantity must be positive, got {fill.qty} for {fill.symbol}")
        before = self._qty.get(fill.symbol, ZERO)
        entry = self._entry.get(fill.symbol, ZERO)
        signed = fill.qty * fill.side.sign
        if before == 0 or (before > 0) == (signed > 0):
            # Opening or adding: the entry becomes the quantity-weighted average.
            after = before + signed
            new_entry = (abs(before) * entry + fill.qty * fill.price) / abs(after)
            step = PositionStep(after, new_entry, ZERO, fill.qty, ZERO)
        else:
            closed = min(fill.qty, abs(before))
            direction = Decimal(1) if before > 0 else Decimal(-1)
            realized = (fill.price - entry) * closed * direction
            after = before + signed
            opened = fill.qty - closed
            # A flip opens the remainder at this fill's price; a partial reduction keeps the entry.
            new_entry = fill.price if opened > 0 else (entry if after != 0 else ZERO)
            step = PositionStep(after, new_entry, closed, opened, realized)
        self._qty[fill.symbol] = step.position_after
        self._entry[fill.symbol] = step.avg_entry_after
        return step

    def positions(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Open positions: symbol -> (signed qty, average entry)."""
        return {s: (q, self._entry[s]) for s, q in self._qty.items() if q != 0}


def position_steps(fills: Iterable[FillLike]) -> list[PositionStep]:
    book = PositionBook()
    return [book.apply(f) for f in fills]


def realized_pnl(fills: Sequence[FillLike]) -> list[Decimal]:
    """Reconstructed realized PnL per fill, aligned with `fills` (0 for fills that only open or add).

    Fills must be in execution order."""
    return [step.realized for step in position_steps(fills)]


def unrealized_pnl(positions: Mapping[str, tuple[Decimal, Decimal]], marks: Mapping[str, Decimal]) -> Decimal:
    total = ZERO
    for symbol, (qty, entry) in positions.items():
        if symbol not in marks:
            raise ValueError(f"no mark price for open position {symbol} (qty {qty})")
        total += qty * (marks[symbol] - entry)
    return total


def max_drawdown(equity: Sequence[Decimal]) -> Decimal:
    """Largest peak-to-trough fall as a fraction of the peak (0 for a series that never falls)."""
    peak: Decimal | None = None
    worst = ZERO
    for value in equity:
        if peak is None or value > peak:
            peak = value
        elif peak > 0:
            worst = max(worst, (peak - value) / peak)
    return worst


def window_return(points: Sequence[tuple[int, Decimal]], start_ms: int | None, end_ms: int) -> Decimal | None:
    """equity at end / equity at window start - 1, from points sorted by time.

    The start equity is the last point at or before `start_ms` (the first point when None); None when
    the series does not reach that far back or the start equity is not positive."""
    upto_end = [p for p in points if p[0] <= end_ms]
    if not upto_end:
        return None
    if start_ms is None:
        start_value = upto_end[0][1]
    else:
        before = [p for p in upto_end if p[0] <= start_ms]
        if not before:
            return None
        start_value = before[-1][1]
    if start_value <= 0:
        return None
    return upto_end[-1][1] / start_value - 1


def lead_stats(
    fills: Sequence[LeadTrade],
    equity_points: Sequence[tuple[int, Decimal]],
    now_ms: int,
    *,
    marks: Mapping[str, Decimal] | None = None,
) -> LeadStats:
    """Statistics of one lead. `fills` in execution order; `equity_points` are (ts_ms, equity marked
    to market). A venue-reported realized PnL takes precedence over the reconstructed one."""
    book = PositionBook()
    pnls: list[Decimal] = []
    for fill in fills:
        step = book.apply(fill)
        pnls.append(fill.realized_pnl if fill.realized_pnl is not None else step.realized)
    wins = sum(1 for p in pnls if p > 0)
    losses = sum(1 for p in pnls if p < 0)
    open_positions = book.positions()
    if not open_positions:
        unrealized: Decimal | None = ZERO
    elif marks is None:
        unrealized = None
    else:
        unrealized = unrealized_pnl(open_positions, marks)
    points = sorted(equity_points, key=lambda p: p[0])
    returns = [window_return(points, now_ms - days * DAY_MS, now_ms) for days in WINDOWS_DAYS]
    return LeadStats(
        return_7d=returns[0],
        return_30d=returns[1],
        return_90d=returns[2],
        return_all=window_return(points, None, now_ms),
        pnl_realized=sum(pnls, ZERO),
        pnl_unrealized=unrealized,
        fees=sum((f.fee for f in fills), ZERO),
        max_drawdown=max_drawdown([v for ts, v in points if ts <= now_ms]),
        win_rate=Decimal(wins) / Decimal(wins + losses) if wins + losses else None,
        wins=wins,
        losses=losses,
        trades=len(fills),
    )
