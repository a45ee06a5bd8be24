"""AUM in the running daemon: the lead table, capacity projections against live order books, the
per-lead AUM cap applied to the followers' sizings, and the AUM history.

The cap. A lead's AUM cap is `aum.cap` (absolute), or derived from `aum.max_slippage_bps`: today's
follower AUM times the largest multiple whose projected slippage of the combined follower order
(bot.aum.capacity, the lead's typical entry against the current book, both sides) stays under the limit;
with both set, the lower one. The arithmetic is bot.aum.cap; this service applies it to the running
followers. Ratios are taken when a position opens (bot.core.sizing), so a cap changes the next entry,
never an open position, and exits are always copied in full. Growth is clipped the same way: every
pass starts again from the configured sizings and the current equity.

`AumService` is one object, created and owned by the app (bot.service.app), beside the engine: it
keeps the configured sizings, the cached capacity per lead, start equities for copier PnL, an
equity series per lead for returns and drawdown, and the realized-slippage book the engine records
into. It reads the pipeline through `TradingView`
(bot.aum.ports), never bot.live.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

import structlog

from bot.aum.cap import Admission, admit, capped_sizing, slippage_cap
from bot.aum.capacity import (
    DEFAULT_MULTIPLIERS,
    Level,
    ProjectedPoint,
    projection,
    typical_entries,
    walk_book,
)
from bot.aum.definition import COUNTED_STATES, FollowerCapital, LeadRow, follower_contribution, lead_aum
from bot.aum.flow_tracker import FlowTracker
from bot.aum.flows import Flow
from bot.aum.ports import AumJournal, TradingView
from bot.aum.report import jsonable
from bot.aum.slippage import SlippageBook
from bot.aum.stats import lead_stats, lead_trades
from bot.core.rounding import dec
from bot.core.sizing import Sizing, base_ratio
from bot.core.types import ZERO, Side, TradingState

log = structlog.get_logger("copybot.aum")

TYPICAL_ENTRY_WINDOW = 20
EQUITY_SAMPLE_MS = 60_000
HISTORY_EVERY_S = 60.0


@dataclass(frozen=True, slots=True)
class AumSettings:
    cap: Decimal | None = None
    max_slippage_bps: Decimal | None = None
    include_lead: bool = False
    follower_order: tuple[str, ...] = ()  # config order: followers are admitted in it


@dataclass(frozen=True, slots=True)
class SymbolCapacity:
    symbol: str
    lead_qty: Decimal  # the lead's typical entry
    total_ratio: Decimal  # sum of the current copy ratios at that entry
    ref_price: Decimal  # the lead's own average on the ask side (buy)
    points: dict[Side, tuple[ProjectedPoint, ...]]
    cap: Decimal | None  # derived from max_slippage_bps, when configured


@dataclass
class _State:
    configured: dict[tuple[str, str], Sizing] = field(default_factory=dict)  # (follower, lead)
    admissions: dict[tuple[str, str], Admission] = field(default_factory=dict)
    capacity: dict[str, dict[str, SymbolCapacity]] = field(default_factory=dict)
    start_equity: dict[str, Decimal] = field(default_factory=dict)
    equity_points: dict[str, list[tuple[int, Decimal]]] = field(default_factory=dict)


def _book_side(levels: Iterable[Sequence[Any]]) -> list[Level]:
    return [(dec(level[0]), dec(level[1])) for level in levels if dec(level[1]) > 0]


class AumService:
    """The running AUM state of one daemon. `on_aum(lead, aum)` sees every history point (metrics)."""

    def __init__(
        self,
        view: TradingView,
        journal: AumJournal,
        settings: AumSettings,
        *,
        slippage: SlippageBook | None = None,
        on_aum: Callable[[str, Decimal], None] | None = None,
        read_book: Callable[[str, str], Awaitable[dict[str, Any]]] | None = None,
    ) -> None:
        self.view = view
        # (lead, symbol) -> the book; the app paces it within the address's request budget (a
        # book weighs 10 on Binance), plain `lead.rest.fetch_order_book` without one (tests).
        self.read_book = read_book
        self.journal = journal
        self.settings = settings
        # Realized slippage of the follower fills, recorded by the engine (the app hands both the
        # same book): the report's aggregates and fairness.
        self.slippage = slippage if slippage is not None else SlippageBook()
        self.on_aum = on_aum
        self._state = _State()
        self.flows = FlowTracker(journal)  # flows vs performance (bot.aum.flows)

    # -- what the report reads ----------------------------------------------------------------

    @property
    def capacity(self) -> dict[str, dict[str, SymbolCapacity]]:
        return self._state.capacity

    def refused(self) -> list[Admission]:
        return [a for a in self._observe().admissions.values() if a.fraction < 1]

    # -- state --------------------------------------------------------------------------------

    def _observe(self) -> _State:
        state = self._state
        for follower in self.view.followers.values():
            for lead, sizing in follower.settings.sizings.items():
                # First sight is the config: every later change of the sizing is this service's.
                state.configured.setdefault((follower.id, lead), sizing)
            if follower.balance.equity > 0:
                state.start_equity.setdefault(follower.id, follower.balance.equity)
        return state

    def _capitals(self, lead: str, *, configured: bool) -> list[FollowerCapital]:
        """Followers of `lead` in config order, with the configured or the current (capped) sizing."""
        order = {fid: i for i, fid in enumerate(self.settings.follower_order)}
        state = self._observe()
        rows = []
        for f in sorted(self.view.followers_of.get(lead, ()), key=lambda f: order.get(f.id, len(order))):
            sizing = state.configured[(f.id, lead)] if configured else f.settings.sizings[lead]
            rows.append(FollowerCapital(f.id, lead, sizing.allocation, f.balance.equity, f.state,
                                        len(f.settings.sizings)))  # fmt: skip
        return rows

    def follower_aum(self) -> dict[str, tuple[Decimal, int]]:
        """Per lead: the follower capital this process serves and how many followers count in it,
        without the lead's own equity (a cluster adds up each shard's; bot/cluster/shard_role.py)."""
        out: dict[str, tuple[Decimal, int]] = {}
        for lead_id in self.view.followers_of:
            snap = lead_aum(lead_id, self._capitals(lead_id, configured=False), lead_equity=None,
                            include_lead=False)  # fmt: skip
            out[lead_id] = (snap.aum, snap.followers)
        return out

    def allocations(self, lead: str) -> dict[str, Decimal]:
        """What each follower of `lead` counts for in its AUM now (bot.aum.definition)."""
        return {c.follower: follower_contribution(c) for c in self._capitals(lead, configured=False)}

    def _lead_equity(self, lead: str) -> Decimal:
        return self.view.leads[lead].equity if self.settings.include_lead else ZERO

    def effective_cap(self, lead: str) -> Decimal | None:
        """The lower of the absolute cap and the one derived from max_slippage_bps (when known)."""
        caps = [self.settings.cap] if self.settings.cap is not None else []
        if self.settings.max_slippage_bps is not None:
            caps += [c.cap for c in self._state.capacity.get(lead, {}).values() if c.cap is not None]
        return min(caps) if caps else None

    def _total_ratio(self, lead: str, qty: Decimal, price: Decimal, *, configured: bool) -> Decimal:
        state = self._observe()
        total = ZERO
        for f in self.view.followers_of.get(lead, ()):
            if f.state not in COUNTED_STATES:
                continue
            sizing = state.configured[(f.id, lead)] if configured else f.settings.sizings[lead]
            total += base_ratio(sizing, lead_after=qty, price=price, follower_equity=f.balance.equity,
                                lead_equity=self.view.leads[lead].equity)  # fmt: skip
        return total

    # -- followers joining and leaving at run time (bot/service/membership.py) ----------------

    def forget(self, follower: str) -> None:
        """A follower left or its sizing changed: the next pass reads its sizing afresh."""
        state = self._state
        for key in [k for k in state.configured if k[0] == follower]:
            state.configured.pop(key, None)
            state.admissions.pop(key, None)

    def preview_join(
        self,
        follower: str,
        sizings: dict[str, Sizing],
        equity: Decimal,
        before: Sequence[FollowerCapital] = (),
        elsewhere: Mapping[str, Decimal] | None = None,
    ) -> list[Admission]:
        """What each lead's cap would admit of a joiner's capital, admitted after the current
        followers (and `before`, joiners ahead of it in the same change). `elsewhere`: per lead, the
        follower capital other processes serve (a cluster's other shards, docs/cluster.md), ahead
        of every follower here like the lead's own equity."""
        out = []
        for lead, sizing in sizings.items():
            joiner = FollowerCapital(
                follower, lead, sizing.allocation, equity, TradingState.ACTIVE, len(sizings)
            )
            capitals = [
                *self._capitals(lead, configured=True),
                *(c for c in before if c.lead == lead),
                joiner,
            ]
            other = (elsewhere or {}).get(lead, ZERO)
            ahead = self._lead_equity(lead) + other
            admission = admit(lead, capitals, self.effective_cap(lead), lead_equity=ahead)[-1]
            if other > 0 and admission.reason is not None:
                shards = f"the cluster's other shards serve {other:.2f} of the lead's follower capital"
                admission = replace(admission, reason=f"{admission.reason}; {shards}")
            out.append(admission)
        return out

    # -- passes -------------------------------------------------------------------------------

    async def refresh_capacity(self, multipliers: Sequence[int] = DEFAULT_MULTIPLIERS) -> None:
        """Fetch the current book of every symbol the lead has entered and cache, per lead and symbol,
        the projected slippage of the combined follower order at each AUM multiple, and the cap
        derived from max_slippage_bps. One book request per (lead, symbol)."""
        state = self._observe()
        max_bps = self.settings.max_slippage_bps
        for lead_id, lead in self.view.leads.items():
            entries = typical_entries(lead_trades(self.journal.lead_fills(lead_id)), TYPICAL_ENTRY_WINDOW)
            followers_aum = sum(
                (follower_contribution(c) for c in self._capitals(lead_id, configured=True)), ZERO
            )
            result: dict[str, SymbolCapacity] = {}
            for symbol, qty in entries.items():
                book = await (
                    self.read_book(lead_id, symbol) if self.read_book else lead.rest.fetch_order_book(symbol)
                )
                sides = {Side.BUY: _book_side(book["asks"]), Side.SELL: _book_side(book["bids"])}
                lead_buy = walk_book(sides[Side.BUY], qty) if sides[Side.BUY] else None
                if lead_buy is None or lead_buy.avg_price is None:
                    continue
                ref = lead_buy.avg_price
                total = self._total_ratio(lead_id, qty, ref, configured=False)
                points: dict[Side, tuple[ProjectedPoint, ...]] = {}
                for side, levels in sides.items():
                    side_ref = walk_book(levels, qty).avg_price if levels else None
                    if total > 0 and side_ref is not None:
                        points[side] = tuple(projection(levels, side_ref, side, qty, total, multipliers))
                cap = None
                if max_bps is not None:
                    configured_total = self._total_ratio(lead_id, qty, ref, configured=True)
                    cap = slippage_cap(sides, qty, configured_total, followers_aum, max_bps,
                                       lead_equity=self._lead_equity(lead_id))  # fmt: skip
                result[symbol] = SymbolCapacity(symbol, qty, total, ref, points, cap)
            state.capacity[lead_id] = result
            self._sample_equity(lead_id, lead.equity, int(time.time() * 1000))

    def _sample_equity(self, lead: str, equity: Decimal, now_ms: int) -> None:
        points = self._state.equity_points.setdefault(lead, [])
        if equity > 0 and (not points or now_ms - points[-1][0] >= EQUITY_SAMPLE_MS):
            points.append((now_ms, equity))

    def apply_cap(self) -> list[str]:
        """Admit each lead's followers under its cap and rewrite the sizings of those partly or wholly
        refused (or restore them once they fit). Returns the reasons of the admissions that changed in
        this pass; each is also journaled as an `aum_cap` event for the follower."""
        state = self._observe()
        changed: list[str] = []
        for lead_id in self.view.followers_of:
            capitals = self._capitals(lead_id, configured=True)
            cap = self.effective_cap(lead_id)
            for adm in admit(lead_id, capitals, cap, lead_equity=self._lead_equity(lead_id)):
                follower = self.view.followers[adm.follower]
                key = (adm.follower, lead_id)
                follower.settings.sizings[lead_id] = capped_sizing(state.configured[key], adm)
                before = state.admissions.get(key)
                state.admissions[key] = adm
                if adm.fraction < 1 or (before is not None and before.fraction < 1):
                    self.flows.capped.add((lead_id, adm.follower))  # the cap moved it, not an operator
                if (before.fraction if before else Decimal(1)) == adm.fraction:
                    continue  # the sizing follows equity silently; only a new fraction is an event
                reason = adm.reason or f"lead {lead_id} AUM cap {cap}: all {adm.requested:.2f} admitted"
                self.journal.record_event("aum_cap", adm.follower, {
                    "lead": lead_id, "cap": jsonable(cap), "requested": jsonable(adm.requested),
                    "admitted": jsonable(adm.admitted), "fraction": jsonable(adm.fraction), "reason": reason,
                })  # fmt: skip
                changed.append(f"{adm.follower}: {reason}")
        return changed

    def observe_flows(self, now_ms: int | None = None, actor: str = "daemon") -> list[Flow]:
        """Journal the flows since the last observation (bot.aum.flow_tracker) and, when there are
        any, an AUM sample at the same timestamp, so that AUM(t) includes every flow at or before t.
        Call it synchronously after any change of followers, sizings, caps or states."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        flows = self._observe_flows(now_ms, actor)
        if flows:
            self._record_samples(now_ms)
        return flows

    def _observe_flows(self, now_ms: int, actor: str) -> list[Flow]:
        capitals = {
            (lead, c.follower): c
            for lead in self.view.followers_of
            for c in self._capitals(lead, configured=False)
        }
        equity = {fid: f.balance.equity for fid, f in self.view.followers.items()}
        return self.flows.observe(capitals, equity, now_ms, actor, self._state.admissions)

    def snapshot(self, now_ms: int | None = None, actor: str = "daemon") -> dict[str, str]:
        """Record every lead's AUM (the history behind `copybot aum --plot`), after the flows since
        the last observation; returns it per lead."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        self._observe_flows(now_ms, actor)
        return self._record_samples(now_ms)

    def _record_samples(self, now_ms: int) -> dict[str, str]:
        out: dict[str, str] = {}
        for lead_id in self.view.followers_of:
            snap = lead_aum(lead_id, self._capitals(lead_id, configured=False),
                            lead_equity=self.view.leads[lead_id].equity,
                            include_lead=self.settings.include_lead)  # fmt: skip
            self.journal.record_aum(now_ms, lead_id, snap.aum, snap.followers,
                                    {f: str(a) for f, a in snap.contributions})  # fmt: skip
            if self.on_aum is not None:
                self.on_aum(lead_id, snap.aum)
            out[lead_id] = str(snap.aum)
        return out

    async def run(
        self,
        period_s: float,
        *,
        on_success: Callable[[], None] | None = None,
        on_failure: Callable[[Exception], None] | None = None,
    ) -> None:
        """Capacity and the cap every `period_s` (the balance refresh period, so that the cap follows
        equity), the AUM history at once and then every minute. A failed pass is reported to
        `on_failure` (the app's supervisor) or logged, and the next one runs."""
        next_pass = time.monotonic() + period_s
        next_history = time.monotonic()
        while True:
            now = time.monotonic()
            try:
                if now >= next_pass:
                    next_pass = now + period_s
                    await self.refresh_capacity()
                    self.apply_cap()
                if now >= next_history:
                    next_history = now + HISTORY_EVERY_S
                    self.snapshot()
                else:
                    self.observe_flows()  # a halt, a resume, a leaver gone: within a second
                if on_success is not None:
                    on_success()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # AUM must outlive a bad pass
                if on_failure is not None:
                    on_failure(exc)
                else:
                    log.warning("aum_pass_failed", error=f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(1.0)

    # -- the lead table -----------------------------------------------------------------------

    def lead_rows(self, *, now_ms: int) -> list[LeadRow]:
        """One row per lead. Copier PnL is the followers' equity change since this process first saw
        them, split evenly among the leads each follows (fees and funding included, not persisted
        across restarts). Projected slippage is the worst 1x point over the lead's symbols and both
        sides."""
        state = self._observe()
        rows = []
        for lead_id, lead in self.view.leads.items():
            self._sample_equity(lead_id, lead.equity, now_ms)
            snap = lead_aum(lead_id, self._capitals(lead_id, configured=False),
                            lead_equity=lead.equity, include_lead=self.settings.include_lead)  # fmt: skip
            trades = lead_trades(self.journal.lead_fills(lead_id))
            points = state.equity_points.get(lead_id, [])
            try:
                stats = lead_stats(trades, points, now_ms, marks=self.view.marks)
            except ValueError:  # an open position without a mark: report it without unrealized PnL
                stats = lead_stats(trades, points, now_ms)
            copier = ZERO
            for f in self.view.followers_of.get(lead_id, ()):
                start = state.start_equity.get(f.id)
                if start is not None:
                    copier += (f.balance.equity - start) / len(f.settings.sizings)
            capacity = state.capacity.get(lead_id, {}).values()
            one_x = [p[0].bps for c in capacity for p in c.points.values() if p]
            rows.append(
                LeadRow(
                    lead=lead_id,
                    aum=snap.aum,
                    followers=snap.followers,
                    return_7d=stats.return_7d,
                    return_30d=stats.return_30d,
                    return_90d=stats.return_90d,
                    return_all=stats.return_all,
                    pnl_realized=stats.pnl_realized,
                    pnl_unrealized=stats.pnl_unrealized,
                    max_drawdown=stats.max_drawdown,
                    win_rate=stats.win_rate,
                    trades=stats.trades,
                    copier_pnl=copier,
                    projected_slippage_bps=max(one_x) if one_x else None,
                )
            )
        return rows
