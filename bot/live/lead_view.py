"""The leads as one follower sees them: in its own venue's symbols and base units.

A follower on another venue than its lead plans against the lead's position converted through the
config's symbol map (bot.core.symbols): the lead's fill on `1000PEPE/USDT:USDT` on its venue
reaches a follower whose venue lists `PEPE/USDT:USDT` as a fill on that symbol, its position and
price converted x1000 and /1000. Every lead position the follower reads is in base units of its
own listing (contract size 1), so its venue's precision, minimums and contract size apply
unchanged downstream. For a follower on its lead's venue, and for unmapped symbols, the
conversion is the identity apart from the lead's contract size, and the fill's work item passes
through untouched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from decimal import Decimal
from typing import Any

from bot.core.symbols import Conversion, SymbolMap
from bot.core.types import ZERO, TradingState
from bot.live.follower import FollowerRuntime
from bot.live.work import FillWork


class LeadView:
    """An EngineView (bot.live.follower) over the engine, for one follower's venue."""

    def __init__(
        self, engine: Any, follower_venue: str, lead_venues: Mapping[str, str], symbols: SymbolMap
    ) -> None:
        self._engine = engine
        self._venue = follower_venue
        self._lead_venues = dict(lead_venues)
        self._symbols = symbols
        self._to_follower: dict[tuple[str, str], Conversion] = {}
        self._to_lead: dict[tuple[str, str], Conversion] = {}

    @classmethod
    def of(cls, engine: Any, follower_venue: str) -> LeadView:
        """The view for a follower on `follower_venue`, from the engine's config."""
        cfg = engine.cfg
        return cls(engine, follower_venue, {lead.id: lead.venue for lead in cfg.leads}, cfg.symbols())

    def __getattr__(self, name: str) -> Any:  # whatever else the engine offers its followers
        return getattr(self._engine, name)

    # -- conversions -----------------------------------------------------------------------------

    def to_follower(self, lead: str, lead_symbol: str) -> Conversion:
        key = (lead, lead_symbol)
        conv = self._to_follower.get(key)
        if conv is None:
            conv = self._symbols.to_follower(
                self._lead_venues.get(lead, self._venue), lead_symbol, self._venue
            )
            self._to_follower[key] = conv
        return conv

    def to_lead(self, lead: str, follower_symbol: str) -> Conversion:
        key = (lead, follower_symbol)
        conv = self._to_lead.get(key)
        if conv is None:
            conv = self._symbols.to_lead(
                self._venue, follower_symbol, self._lead_venues.get(lead, self._venue)
            )
            self._to_lead[key] = conv
        return conv

    def follower_symbols(self, lead: str, lead_symbols: Iterable[str]) -> set[str]:
        return {self.to_follower(lead, s).follower_symbol for s in lead_symbols}

    def _per_unit(self, lead: str, conv: Conversion) -> Decimal:
        """Follower base units per lead contract."""
        contract_size: Decimal = self._engine.lead_contract_size(lead, conv.lead_symbol)
        return conv.factor * contract_size

    def work(self, work: FillWork) -> FillWork:
        """A lead fill's work item in this follower's symbol and units."""
        fill = work.fill
        conv = self.to_follower(fill.lead, fill.symbol)
        per_unit = self._per_unit(fill.lead, conv)
        if conv.identity and per_unit == 1:
            return work
        return replace(
            work,
            fill=replace(
                fill, symbol=conv.follower_symbol, qty=fill.qty * per_unit, price=conv.price(fill.price)
            ),
            lead_before=work.lead_before * per_unit,
            lead_after=work.lead_after * per_unit,
        )

    # -- EngineView ------------------------------------------------------------------------------

    def lead_position(self, lead: str, symbol: str) -> Decimal:
        conv = self.to_lead(lead, symbol)
        position: Decimal = self._engine.lead_position(lead, conv.lead_symbol)
        return position * self._per_unit(lead, conv) if position else ZERO

    def lead_contract_size(self, lead: str, symbol: str) -> Decimal:
        return Decimal(1)  # lead positions are given in this follower's base units

    def lead_equity(self, lead: str) -> Decimal:
        equity: Decimal = self._engine.lead_equity(lead)
        return equity

    def global_state(self) -> TradingState:
        state: TradingState = self._engine.global_state()
        return state

    def kill_switch(self) -> bool:
        return bool(self._engine.kill_switch())

    async def resync_follower(self, follower: FollowerRuntime) -> None:
        await self._engine.resync_follower(follower)

    def mark(self, symbol: str) -> Decimal | None:
        # This venue's own mark feed first: the same unified name on two venues is two prices.
        venue_mark = getattr(self._engine, "venue_mark", None)
        feed: Decimal | None = venue_mark(self._venue, symbol) if venue_mark is not None else None
        if feed is not None:
            return feed
        for lead in self._lead_venues:
            conv = self.to_lead(lead, symbol)
            if not conv.identity:
                lead_mark: Decimal | None = self._engine.mark(conv.lead_symbol)
                if lead_mark is not None:
                    return conv.price(lead_mark)
        own: Decimal | None = self._engine.mark(symbol)
        return own


def seen_by(follower: FollowerRuntime, work: FillWork) -> FillWork:
    """A lead fill's work item as `follower` must see it (unchanged without a LeadView)."""
    view = follower.engine
    return view.work(work) if isinstance(view, LeadView) else work


def follower_symbols(follower: FollowerRuntime, lead: str, lead_symbols: Iterable[str]) -> set[str]:
    """A lead's symbols as `follower`'s venue lists them."""
    view = follower.engine
    return view.follower_symbols(lead, lead_symbols) if isinstance(view, LeadView) else set(lead_symbols)


def lead_symbol(follower: FollowerRuntime, lead: str, symbol: str) -> str:
    """The lead's symbol for one of `follower`'s symbols."""
    view = follower.engine
    return view.to_lead(lead, symbol).lead_symbol if isinstance(view, LeadView) else symbol
