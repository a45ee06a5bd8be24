"""What the live pipeline needs from the journal and the alert sink, as typed ports.

bot.journal.store.Journal and bot.service.alerts.AlertSink implement them; tests may pass anything
that does (for example a journal whose writes fail for a while, to exercise supervision). Keeping
them Protocols keeps bot/live free of the service layer (docs/architecture.md, "Packages").
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Protocol

from bot.core.trading_state import StateCode
from bot.core.types import Decision, Intent, LeadFill, OrderOutcome, Side, TradingState
from bot.journal.pnl import FollowerFill, IncomeRow
from bot.journal.schema import AumPoint


class StateRow(Protocol):
    @property
    def state(self) -> TradingState: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def code(self) -> StateCode: ...


class JournalPort(Protocol):
    # lead side
    def record_lead_fill(self, fill: LeadFill, status: str, note: str | None = None) -> None: ...
    def has_lead_fill(self, lead: str, trade_id: str) -> bool: ...
    def set_cursor(self, lead: str, symbol: str, ts_ms: int, trade_id: str) -> None: ...
    def cursors(self, lead: str) -> dict[str, tuple[int, str]]: ...

    # follower side
    def record_intent(self, intent: Intent) -> None: ...
    def record_decision(self, decision: Decision) -> None: ...
    def record_deferral(self, lead: str, follower: str, trigger: str, symbol: str, reason: str) -> None: ...
    def record_outcome(
        self, outcome: OrderOutcome, follower: str, sent_ns: int | None = None, acked_ns: int | None = None
    ) -> None: ...
    def unsettled_intents(self, follower: str | None = None) -> list[Intent]: ...
    def intent_created_ms(self, client_order_id: str) -> int | None: ...
    def save_ratio(self, lead: str, follower: str, symbol: str, ratio: Decimal) -> None: ...
    # each follower's results (bot.live.pnl): its filled orders and its fees and funding
    def follower_fills(self, follower: str) -> list[FollowerFill]: ...
    def record_income(self, rows: list[IncomeRow]) -> None: ...
    def income_rows(self, follower: str | None = None) -> list[IncomeRow]: ...
    async def aflush(self) -> None: ...  # every write queued so far is committed
    def load_ratios(self, follower: str) -> dict[tuple[str, str], Decimal]: ...

    # trading states, AUM and events
    def set_follower_state(
        self, follower: str, state: TradingState, reason: str | None = None, code: StateCode = ...
    ) -> None: ...
    def follower_states(self) -> Mapping[str, StateRow]: ...
    def record_aum(
        self, ts: int, lead: str, aum: Decimal, followers: int, detail: Mapping[str, Decimal | str]
    ) -> None: ...
    def record_event(
        self, kind: str, subject: str | None, detail: Mapping[str, Any] | str | None = None
    ) -> None: ...

    # read back by the AUM service, which runs in the upkeep pass
    def lead_fills(self, lead: str, since: int | None = None) -> list[LeadFill]: ...
    def counts(self) -> dict[str, int]: ...  # rows per table (start-up: is there an earlier run?)
    def aum_history(self, lead: str | None = None, since: int | None = None) -> list[AumPoint]: ...


class AlertPort(Protocol):
    def send(self, kind: str, subject: str, detail: dict[str, Any], severity: str = "warning") -> None: ...


class SlippageFill(Protocol):
    @property
    def bps(self) -> Decimal: ...


class SlippagePort(Protocol):
    """Where the realized slippage of each follower fill goes (bot.aum.slippage.SlippageBook, owned
    by the app and read by the AUM report)."""

    def record_fill(
        self,
        *,
        lead: str,
        trigger: str,
        follower: str,
        symbol: str,
        side: Side,
        lead_price: Decimal,
        avg_price: Decimal,
        qty: Decimal,
        rank: int,
    ) -> SlippageFill: ...
