"""A follower's equity at run time: read from the venue at start and at each reconcile pass, and
between reads marked to market from its own fills and the mark price (bot.core.ledger), so the
stops see every price move without a request per follower (docs/architecture.md, "Follower
equity")."""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from bot.core.types import ZERO, MarketSpec, PositionSnapshot

if TYPE_CHECKING:  # the follower records its own fills here
    from bot.live.follower import FollowerRuntime


def rebase(follower: FollowerRuntime, positions: Mapping[str, PositionSnapshot], equity: Decimal) -> None:
    """Adopt the venue's equity and positions as the truth (read together, while idle)."""
    balance = follower.balance
    books = {s: (p.qty, p.entry_price, _contract_size(follower.markets.get(s))) for s, p in positions.items()}
    marks = {s: m for s in books if (m := follower.engine.mark(s)) is not None}
    balance.ledger.rebase(equity, books, marks)
    balance.read_ms = int(time.time() * 1000)
    balance.set_equity(equity)
    if not balance.allocation_base:
        allocations = [s.allocation for s in follower.settings.sizings.values() if s.allocation]
        balance.allocation_base = sum(allocations, ZERO) if allocations else equity


def record_fill(follower: FollowerRuntime, symbol: str, signed_qty: Decimal, price: Decimal) -> None:
    """One of the follower's own fills: booked at its price, with the taker fee estimated (copy
    orders take liquidity: market or IOC limit)."""
    market = follower.markets.get(symbol)
    size = _contract_size(market)
    fee = abs(signed_qty) * size * price * (market.taker_fee if market is not None else ZERO)
    follower.balance.ledger.fill(symbol, signed_qty, price, fee, size)
    revalue(follower)


def revalue(follower: FollowerRuntime) -> Decimal:
    """The follower's equity at the current marks."""
    ledger = follower.balance.ledger
    marks = {s: m for s in ledger.positions if (m := follower.engine.mark(s)) is not None}
    equity = ledger.equity(marks)
    follower.balance.set_equity(equity)
    return equity


def _contract_size(market: MarketSpec | None) -> Decimal:
    return market.contract_size if market is not None else Decimal(1)
