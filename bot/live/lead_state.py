"""A lead account at run time: its position per symbol, built from a snapshot plus the fills
after it, and the deduplication that makes a fill count once however often it arrives."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from bot.core.types import ZERO, LeadFill, MarketSpec, PositionSnapshot
from bot.venues import VenueAdapter

_SEEN_MAX = 200_000


@dataclass(frozen=True, slots=True)
class Applied:
    """A fill's effect on the lead position."""

    before: Decimal
    after: Decimal
    new_entry: bool


@dataclass
class LeadRuntime:
    id: str
    rest: Any
    adapter: VenueAdapter
    markets: dict[str, MarketSpec]
    symbols_configured: tuple[str, ...] | None = None
    positions: dict[str, Decimal] = field(default_factory=dict)
    entry_prices: dict[str, Decimal] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)
    # Fills at or before these exchange times are already in the position snapshot.
    snapshot_ms: dict[str, int] = field(default_factory=dict)
    snapshot_default_ms: int = 0
    equity: Decimal = ZERO
    fills: int = 0
    last_fill_ms: int = 0
    _seen: OrderedDict[str, None] = field(default_factory=OrderedDict)
    _entry_orders: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def seed(self, snapshot: dict[str, PositionSnapshot], server_ms: int) -> None:
        """Adopt a positions snapshot taken at `server_ms` as the truth."""
        self.positions = {s: p.qty for s, p in snapshot.items() if p.qty != 0}
        self.entry_prices = {s: p.entry_price for s, p in snapshot.items() if p.qty != 0}
        self.leverage.update({s: p.leverage for s, p in snapshot.items() if p.leverage})
        # An open position's updateTime is the time of its last fill: exact. A flat symbol has no
        # row; the snapshot's own time bounds it (a fill in the same millisecond is the one case
        # this cannot order; the periodic reconciliation catches it).
        self.snapshot_ms = {s: max(p.update_ms, 0) for s, p in snapshot.items()}
        self.snapshot_default_ms = server_ms

    def seen(self, trade_id: str) -> bool:
        return trade_id in self._seen

    def in_snapshot(self, fill: LeadFill) -> bool:
        return fill.ts_ms <= self.snapshot_ms.get(fill.symbol, self.snapshot_default_ms)

    def mark_seen(self, trade_id: str) -> None:
        self._seen[trade_id] = None
        if len(self._seen) > _SEEN_MAX:
            self._seen.popitem(last=False)

    def apply(self, fill: LeadFill) -> Applied:
        before = self.positions.get(fill.symbol, ZERO)
        after = before + fill.signed_qty
        entry = entry_price_after(before, after, self.entry_prices.get(fill.symbol), fill)
        if after == 0:
            self.positions.pop(fill.symbol, None)
            self.entry_prices.pop(fill.symbol, None)
        else:
            self.positions[fill.symbol] = after
            if entry is not None:
                self.entry_prices[fill.symbol] = entry
        increasing = abs(after) > abs(before) or (before != 0 and (after > 0) != (before > 0))
        new_entry = increasing and fill.order_id not in self._entry_orders
        if increasing:
            self._entry_orders[fill.order_id] = None
            if len(self._entry_orders) > _SEEN_MAX:
                self._entry_orders.popitem(last=False)
        self.fills += 1
        self.last_fill_ms = max(self.last_fill_ms, fill.ts_ms)
        return Applied(before=before, after=after, new_entry=new_entry)

    def symbols(self, cursor_symbols: set[str]) -> set[str]:
        """Symbols to backfill: the configured ones, else those held or traded."""
        if self.symbols_configured:
            return set(self.symbols_configured)
        return set(self.positions) | cursor_symbols


def entry_price_after(
    before: Decimal, after: Decimal, entry: Decimal | None, fill: LeadFill
) -> Decimal | None:
    """The position's average entry price after a fill: averaged in on an increase, kept on a
    reduction, the fill's price on a flip (the venues' own rule for one-way positions)."""
    if after == 0:
        return None
    if before == 0 or (before > 0) != (after > 0):
        return fill.price
    if abs(after) > abs(before):
        if entry is None:
            return fill.price
        return (entry * abs(before) + fill.price * fill.qty) / abs(after)
    return entry
