"""One follower account at run time: its state, its targets and its own queue, drained by its own
worker (bot/live/follower_worker.py), so that one slow or failing account never delays another
(invariant 8). The worker takes everything queued at once and plans once per symbol touched: partial
fills queued behind a slow order thereby become one order instead of many below the venue minimum.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import structlog

from bot.core import risk
from bot.core.join_leave import exits_only
from bot.core.manual import ManualBook, own_quantity
from bot.core.protect import ProtectOrder
from bot.core.risk import FollowerRiskState
from bot.core.sizing import base_ratio, target_position
from bot.core.trading_state import StateChange, StateCode
from bot.core.types import (
    ZERO,
    Decision,
    Intent,
    MarketSpec,
    OrderOutcome,
    Reason,
    ReasonCode,
    TradingState,
)
from bot.live.entry_retry import EntryRetry
from bot.live.executor import OrderPlacer
from bot.live.ports import JournalPort
from bot.live.trading_states import Standing
from bot.live.work import Balance, Disposition, FollowerSettings, Work
from bot.venues import VenueAdapter

log = structlog.get_logger("copybot.follower")


class EngineView(Protocol):
    """What a follower reads from the engine: the leads' state and global switches."""

    def lead_position(self, lead: str, symbol: str) -> Decimal: ...
    def lead_contract_size(self, lead: str, symbol: str) -> Decimal: ...
    def lead_equity(self, lead: str) -> Decimal: ...
    def global_state(self) -> TradingState: ...
    def kill_switch(self) -> bool: ...
    def mark(self, symbol: str) -> Decimal | None: ...
    async def resync_follower(self, follower: FollowerRuntime) -> None: ...


# Asks the state owner (bot/live/trading_states.py) for a state; the answer says what was granted.
StateRequest = Callable[["FollowerRuntime", TradingState, StateCode, str], StateChange]


@dataclass
class FollowerRuntime:
    settings: FollowerSettings
    client: Any
    adapter: VenueAdapter
    markets: Mapping[str, MarketSpec]
    engine: EngineView
    journal: JournalPort
    placer: OrderPlacer
    request_state: StateRequest
    on_outcome: Callable[[FollowerRuntime, Intent, OrderOutcome, int, int], None] = lambda *a: None
    on_decision: Callable[[FollowerRuntime, Decision], None] = lambda *a: None
    on_denied: Callable[[FollowerRuntime, Reason], None] = lambda *a: None  # a fill denied before any intent
    # A batch raised (logged, counted and alerted by the supervisor) / a batch went through.
    on_batch_failed: Callable[[FollowerRuntime, BaseException, list[str]], None] = lambda *a: None
    on_batch_ok: Callable[[FollowerRuntime], None] = lambda *a: None
    # What became of these lead fills for this follower is recorded (bot/live/settlement.py).
    on_disposed: Callable[[FollowerRuntime, list[str]], None] = lambda *a: None
    confirmed: dict[str, Decimal] = field(default_factory=dict)
    inflight: dict[str, Decimal] = field(default_factory=dict)
    ratios: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    balance: Balance = field(default_factory=Balance)
    standing: Standing = field(default_factory=Standing)  # written by the state owner alone
    needs_resync: bool = False
    closing_reason: str | None = None  # a portfolio stop: target zero everywhere, then HALTED
    queue: asyncio.Queue[Work] = field(default_factory=asyncio.Queue)
    busy: bool = False
    orders_sent: int = 0
    # lead trade id -> this follower's place in that fill's fan-out order (for fairness reports)
    fanout_rank: dict[str, int] = field(default_factory=dict)
    failures: deque[float] = field(default_factory=deque)  # monotonic times of failed batches
    retry_pending: bool = False
    entry_retry: EntryRetry = field(default_factory=EntryRetry)  # short IOC entries, tried again soon
    # Joining and leaving while the daemon runs (bot.core.join_leave, bot/live/membership.py):
    # (lead, symbol) -> why a lead position held at the join is not copied until the lead closes or
    # reopens it; and, once leaving, "close" (target zero) or "follow_exits" (reductions only).
    holds: dict[tuple[str, str], str] = field(default_factory=dict)
    on_hold_cleared: Callable[[FollowerRuntime, str, str], None] = lambda *a: None
    leaving: str | None = None
    # The owner's hand trades (bot.core.manual, bot/live/manual_trades.py): copybot plans and
    # measures drift on its own quantity, the account's position minus the owner's.
    manual: ManualBook = field(default_factory=ManualBook)
    # Take-profit / stop-loss at the venue (bot/live/protect.py): the follower's own average entry
    # per symbol, the orders resting for each position (symbol -> "tp"/"sl" -> order) and the last
    # sequence number used per (symbol, kind).
    entries: dict[str, Decimal] = field(default_factory=dict)
    protected: dict[str, dict[str, ProtectOrder]] = field(default_factory=dict)
    protect_seq: dict[tuple[str, str], int] = field(default_factory=dict)
    on_protect_triggered: Callable[[Any, dict[str, Any]], None] = lambda *a: None
    protect_poked: dict[str, float] = field(default_factory=dict)  # symbol -> when a mark crossed
    reread: bool = False  # read the account before the next batch (a mark crossed a TP/SL trigger)
    # Counts a TP/SL cancel or lookup against the address's request budget without waiting for
    # room (the worker must not stall copying): background reads then leave room for it.
    charge_weight: Callable[[int], None] = lambda weight: None

    @property
    def id(self) -> str:
        return self.settings.id

    @property
    def state(self) -> TradingState:
        return self.standing.state

    @property
    def state_reason(self) -> str:
        return self.standing.reason

    def submit(self, work: Work) -> None:
        self.queue.put_nowait(work)

    def position(self, symbol: str) -> Decimal:
        return self.confirmed.get(symbol, ZERO) + self.inflight.get(symbol, ZERO)

    def own(self, symbol: str) -> Decimal:
        """copybot's own quantity: the account's position, in-flight included, minus the owner's."""
        return own_quantity(self.position(symbol), self.manual.manual(symbol))

    def risk_state(self) -> FollowerRiskState:
        symbols = set(self.confirmed) | set(self.inflight)
        marks = {s: m for s in symbols if (m := self.engine.mark(s)) is not None}
        return FollowerRiskState(
            follower=self.id,
            state=self.state,
            global_state=self.engine.global_state(),
            kill_switch=self.engine.kill_switch(),
            equity=self.balance.equity,
            peak_equity=self.balance.peak,
            day_start_equity=self.balance.day_start,
            allocation_base=self.balance.allocation_base,
            positions={s: self.position(s) for s in symbols},
            marks=marks,
            contract_sizes={s: self.markets[s].contract_size for s in symbols if s in self.markets},
        )

    def target(self, symbol: str) -> tuple[Decimal, Reason | None]:
        """The clipped target position for a symbol, summed over the leads this follower copies,
        and why it is below the lead's when it is."""
        market = self.markets[symbol]
        if self.closing_reason:
            return ZERO, Reason(ReasonCode.PORTFOLIO_STOP, self.closing_reason)
        if self.leaving == "close":
            return ZERO, Reason(ReasonCode.LEAVING, "leaving: closing the copied positions")
        limits = self.settings.limits
        if symbol in limits.symbols_deny:
            return ZERO, Reason(ReasonCode.SYMBOL_DENIED, f"symbol_denied: {symbol} is in symbols_deny")
        if limits.symbols_allow is not None and symbol not in limits.symbols_allow:
            return ZERO, Reason(
                ReasonCode.SYMBOL_NOT_ALLOWED, f"symbol_not_allowed: {symbol} is not in symbols_allow"
            )
        parts = []
        lead_cs = Decimal(1)
        held = None
        for lead in self.settings.sizings:
            ratio = self.ratios.get((lead, symbol), ZERO)
            if (lead, symbol) in self.holds:
                ratio, held = ZERO, self.holds[(lead, symbol)]
            parts.append((ratio, self.engine.lead_position(lead, symbol)))
            lead_cs = self.engine.lead_contract_size(lead, symbol)
        raw = target_position(parts, market, lead_contract_size=lead_cs)
        clipped, text = risk.clip_target(raw, symbol, self.risk_state(), self.settings.limits, market)
        if self.leaving == "follow_exits":
            limited = exits_only(clipped, self.own(symbol))
            if limited != clipped:
                return limited, Reason(ReasonCode.LEAVING, "leaving: only the lead's exits are copied")
        if held is not None and not text:
            return clipped, Reason(ReasonCode.NOT_JOINED, held)
        return clipped, Reason(ReasonCode.MAX_POSITION_NOTIONAL, text) if text else None

    def ensure_ratio(self, lead: str, symbol: str, price: Decimal) -> None:
        """A lead position this follower has no ratio for (it joined, or the ratio was lost):
        take the ratio as at an open, so the existing position is copied."""
        key = (lead, symbol)
        position = self.engine.lead_position(lead, symbol)
        if lead not in self.settings.sizings or position == 0 or self.ratios.get(key, ZERO) > 0:
            return
        self.ratios[key] = base_ratio(
            self.settings.sizings[lead],
            lead_after=position,
            price=price,
            follower_equity=self.balance.equity,
            lead_equity=self.engine.lead_equity(lead),
        )
        self.journal.save_ratio(lead, self.id, symbol, self.ratios[key])

    def dispose(
        self,
        lead: str,
        fills: list[str],
        symbol: str,
        kind: Disposition,
        text: str,
        denied: Reason | None = None,
    ) -> None:
        """Record what became of each lead fill for this follower (invariant 1: nothing silent):
        the journal keeps "<kind>: <text>" for people; a denial's code goes to the metrics."""
        self.on_disposed(self, fills)
        for trade_id in fills:
            self.journal.record_deferral(
                lead, self.id, trade_id, symbol, f"{kind.value}: {text}" if text else kind.value
            )
        if fills and denied is not None:
            self.on_denied(self, denied)

    def disable(self, reason: str, code: StateCode) -> None:
        """HALT this follower alone, with the reason (journaled, alerted, on /status)."""
        if self.state is not TradingState.HALTED:
            log.error("follower_disabled", follower=self.id, code=code.value, reason=reason)
            self.request_state(self, TradingState.HALTED, code, reason)
