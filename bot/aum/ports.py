"""What the AUM service reads from the running pipeline, as structural types: bot/aum never imports
bot/live. The live engine satisfies `TradingView` as it is (its `followers`, `followers_of`, `leads`
and `marks`); tests pass plain objects with the same attributes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

from bot.core.sizing import Sizing
from bot.core.types import LeadFill, TradingState
from bot.journal.flows import FlowRow
from bot.journal.schema import AumPoint


class HasSizings(Protocol):
    @property
    def sizings(self) -> dict[str, Sizing]: ...  # lead id -> sizing; the cap pass rewrites entries


class HasEquity(Protocol):
    @property
    def equity(self) -> Decimal: ...


class FollowerView(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def settings(self) -> HasSizings: ...
    @property
    def balance(self) -> HasEquity: ...
    @property
    def state(self) -> TradingState: ...


class LeadView(Protocol):
    @property
    def equity(self) -> Decimal: ...
    @property
    def rest(self) -> Any: ...  # a ccxt client: only `await fetch_order_book(symbol)` is used


class TradingView(Protocol):
    """The followers and leads of the running pipeline, read at every AUM pass."""

    @property
    def followers(self) -> Mapping[str, FollowerView]: ...
    @property
    def followers_of(self) -> Mapping[str, Sequence[FollowerView]]: ...
    @property
    def leads(self) -> Mapping[str, LeadView]: ...
    @property
    def marks(self) -> Mapping[str, Decimal]: ...


class FlowJournal(Protocol):
    """The journal as the flow tracker uses it (bot.aum.flow_tracker)."""

    def latest_aum(self) -> list[AumPoint]: ...
    def record_flow(
        self,
        ts: int,
        lead: str,
        follower: str,
        kind: str,
        amount: Decimal,
        actor: str,
        detail: Mapping[str, object] | None = None,
    ) -> None: ...


class AumJournal(FlowJournal, Protocol):
    """The journal as the AUM service uses it (bot.journal.store.Journal is one)."""

    def lead_fills(self, lead: str, since: int | None = None) -> list[LeadFill]: ...
    def aum_history(self, lead: str | None = None, since: int | None = None) -> list[AumPoint]: ...
    def record_event(
        self, kind: str, subject: str | None, detail: Mapping[str, Any] | str | None = None
    ) -> None: ...
    def record_aum(
        self, ts: int, lead: str, aum: Decimal, followers: int, detail: Mapping[str, Decimal | str]
    ) -> None: ...
    def aum_flows(
        self, lead: str | None = None, since: int | None = None, kinds: tuple[str, ...] | None = None
    ) -> list[FlowRow]: ...
    def aum_leads(self) -> list[str]: ...
    def aum_sample_before(self, lead: str, ts: int) -> AumPoint | None: ...
    def aum_origin(self, lead: str) -> int | None: ...
    async def aflush(self) -> None: ...  # wait until what was queued is committed (readable)
