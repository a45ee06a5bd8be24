"""What a follower's worker is given: the work items on its queue, its settings, and what became
of each lead fill for it (bot/live/follower.py runs them)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from bot.core.ledger import MarkToMarket
from bot.core.manual import ManualPolicy
from bot.core.protect import Protection
from bot.core.risk import RiskLimits
from bot.core.sizing import Sizing
from bot.core.types import ZERO, LeadFill, MarketSpec, PositionSnapshot


@dataclass(frozen=True, slots=True)
class FillWork:
    fill: LeadFill
    lead_before: Decimal
    lead_after: Decimal
    new_entry: bool
    lead_equity: Decimal


@dataclass(frozen=True, slots=True)
class SyncWork:
    """Converge one symbol to its target (reconciliation, start-up, a stop closing positions)."""

    symbol: str
    lead: str
    trigger: str
    ref_price: Decimal
    reason: str
    fills: tuple[str, ...] = ()  # lead fills whose batch failed: their disposition is recorded here


Work = FillWork | SyncWork


class Disposition(StrEnum):
    """What became of a lead fill for one follower (journal: decisions, verdict 'deferred')."""

    PLANNED = "planned"  # orders were planned (their client ids follow)
    AT_TARGET = "at_target"  # nothing to do: the follower already holds its target
    DEFERRED = "deferred"  # below the venue minimum or position unknown: a later pass converges
    DENIED = "denied"  # a cap, a symbol list, a stop or the venue keeps it from being copied


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A failed batch is retried after `backoff_s`, doubling up to `backoff_max_s`; `max_failures`
    failures within `window_s` disable the follower (StateCode.WORKER_FAILURES)."""

    max_failures: int
    window_s: float
    backoff_s: float
    backoff_max_s: float


@dataclass
class FollowerSettings:
    id: str
    sizings: dict[str, Sizing]  # lead id -> sizing
    limits: RiskLimits
    retry: RetryPolicy  # defaults: the `supervision` config section (bot/config/models.py)
    round_up_min: bool = False
    market_orders: bool = True  # False: entries as IOC limits inside limits.slippage_bps
    manual_trades: ManualPolicy = ManualPolicy.LEAVE  # the owner's hand trades (bot.core.manual)
    protect: Protection | None = None  # TP/SL at the venue (bot/live/protect.py)


@dataclass
class Balance:
    """A follower's equity and what its stops measure against. Between reads of the account the
    equity is marked to market from the follower's own fills and the mark price (bot.core.ledger;
    docs/architecture.md, "Follower equity"), so stops see every price move without a request."""

    equity: Decimal = ZERO
    peak: Decimal = ZERO
    day_start: Decimal = ZERO
    day: str = ""
    allocation_base: Decimal = ZERO
    ledger: MarkToMarket = field(default_factory=MarkToMarket)
    read_ms: int = 0  # when the venue last reported this account's equity (0: never)

    def set_equity(self, equity: Decimal, now_s: float | None = None) -> None:
        day = time.strftime("%Y-%m-%d", time.gmtime(now_s))
        if self.day != day:
            self.day, self.day_start = day, equity
        self.equity = equity
        self.peak = max(self.peak, equity)

    def rebase(
        self,
        account_equity: Decimal,
        positions: Mapping[str, PositionSnapshot],
        markets: Mapping[str, MarketSpec],
        mark: Mark,
    ) -> None:
        """Adopt the venue's equity and positions as the truth (read together, while idle)."""
        books = {s: (p.qty, p.entry_price, _size(markets.get(s))) for s, p in positions.items()}
        self.ledger.rebase(account_equity, books, {s: m for s in books if (m := mark(s)) is not None})
        self.read_ms = int(time.time() * 1000)
        self.set_equity(account_equity)

    def record_fill(self, market: MarketSpec | None, symbol: str, signed_qty: Decimal, price: Decimal,
                    mark: Mark) -> None:  # fmt: skip
        """One of the follower's own fills, booked at its price with the taker fee estimated (copy
        orders take liquidity: market or IOC limit); each account read corrects the estimate."""
        size = _size(market)
        fee = abs(signed_qty) * size * price * (market.taker_fee if market is not None else ZERO)
        self.ledger.fill(symbol, signed_qty, price, fee, size)
        self.revalue(mark)

    def revalue(self, mark: Mark) -> Decimal:
        """The equity at the current marks."""
        held = self.ledger.positions
        self.set_equity(self.ledger.equity({s: m for s in held if (m := mark(s)) is not None}))
        return self.equity


Mark = Callable[[str], Decimal | None]


def _size(market: MarketSpec | None) -> Decimal:
    return market.contract_size if market is not None else Decimal(1)
