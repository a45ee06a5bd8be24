"""AUM in the running daemon: the lead table, capacity projections against live order books, and the
per-lead AUM cap applied to the followers' sizings.

The cap. A lead's AUM cap is `aum.cap` (absolute), or derived from `aum.max_slippage_bps`: today's
follower AUM times the largest multiple whose projected slippage of the combined follower order
(bot.aum.capacity, the lead's typical entry against the current book, both sides) stays under the limit;
with both set, the lower one. Followers are admitted in config order; the part of a follower's
capital above the cap is refused by rewriting its sizing for that lead (`capped_sizing`): the copy
ratio is scaled by the admitted fraction and the admitted capital becomes the sizing's explicit
allocation, so that the AUM definition (and upkeep's AUM history) counts exactly what was admitted.
Ratios are taken when a position opens (bot.core.sizing), so a cap changes the next entry, never an open
position, and exits are always copied in full. Growth is clipped the same way: every pass starts
again from the configured sizings and the current equity.

The engine keeps no AUM state of its own, so this module keeps it per engine (`_STATES`): the
configured sizings, the cached capacity per lead, start equities for copier PnL and an equity series
per lead for returns and drawdown.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Decimal
from typing import TYPE_CHECKING, Any

from bot.aum.capacity import (
    DEFAULT_MULTIPLIERS,
    Level,
    ProjectedPoint,
    max_aum_for_slippage,
    projection,
    typical_entries,
    walk_book,
)
from bot.aum.definition import (
    COUNTED_STATES,
    FollowerCapital,
    LeadRow,
    follower_contribution,
    lead_aum,
)
from bot.aum.stats import LeadTrade, lead_stats
from bot.core.rounding import dec
from bot.core.sizing import Sizing, SizingMode, base_ratio
from bot.core.types import ZERO, Side

if TYPE_CHECKING:
    from bot.live.engine import Engine

FRACTION_STEP = Decimal("0.0001")
# Sizing refuses zero amounts. A fully refused follower keeps its sizing entry for the lead (so that
# what it already copied is still exited with the lead) with this factor, which rounds every new
# target to zero lots.
REFUSED_FACTOR = Decimal("1e-12")
TYPICAL_ENTRY_WINDOW = 20
EQUITY_SAMPLE_MS = 60_000


# -- pure cap arithmetic ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Admission:
    """How much of one follower's capital a lead's AUM cap admits."""

    follower: str
    lead: str
    requested: Decimal  # its contribution under the configured sizing
    admitted: Decimal  # requested x fraction, never more than the room left under the cap
    fraction: Decimal  # admitted / requested, rounded down to FRACTION_STEP; 1 when uncapped
    cap: Decimal | None
    reason: str | None = None  # set when part of the capital is refused

    @property
    def refused(self) -> Decimal:
        return self.requested - self.admitted


def admit(
    lead: str, capitals: Sequence[FollowerCapital], cap: Decimal | None, *, lead_equity: Decimal = ZERO
) -> list[Admission]:
    """Admit followers of `lead` in the given (config) order until the cap is used up. The lead's
    own counted equity (include_lead) takes its room first: it cannot be refused."""
    room = None if cap is None else max(cap - lead_equity, ZERO)
    out: list[Admission] = []
    for capital in capitals:
        if capital.lead != lead:
            continue
        requested = follower_contribution(capital)
        if room is None or requested <= room:
            fraction = Decimal(1)
        else:
            fraction = (room / requested).quantize(FRACTION_STEP, rounding=ROUND_DOWN)
        admitted = requested * fraction
        if room is not None:
            room -= admitted
        reason = None
        if fraction < 1:
            reason = (
                f"lead {lead} AUM cap {cap}: admitted {admitted:.2f} of {requested:.2f}, refused "
                f"{requested - admitted:.2f} (followers are admitted in config order)"
            )
        out.append(Admission(capital.follower, lead, requested, admitted, fraction, cap, reason))
    return out


def capped_sizing(configured: Sizing, admission: Admission) -> Sizing:
    """The sizing that trades only the admitted capital. In allocation mode the allocation itself is
    the capital; in the other modes the multiplier (or the fixed notional) is scaled by the admitted
    fraction and the admitted capital is recorded as the explicit allocation that AUM counts."""
    if admission.fraction >= 1:
        return configured
    factor = admission.fraction if admission.fraction > 0 else REFUSED_FACTOR
    amount = admission.admitted if admission.admitted > 0 else REFUSED_FACTOR
    if configured.mode is SizingMode.ALLOCATION:
        return replace(configured, allocation=amount)
    if configured.mode is SizingMode.FIXED_NOTIONAL:
        assert configured.notional is not None  # Sizing checks it for this mode
        return replace(configured, notional=configured.notional * factor, allocation=amount)
    return replace(configured, multiplier=configured.multiplier * factor, allocation=amount)


def slippage_cap(
    sides: Mapping[Side, Sequence[Level]],
    lead_qty: Decimal,
    total_ratio: Decimal,
    followers_aum: Decimal,
    max_bps: Decimal,
    *,
    lead_equity: Decimal = ZERO,
) -> Decimal | None:
    """The AUM at which the combined follower order for one lead entry of `lead_qty` would pay
    `max_bps` against these book sides (the worse side wins). The reference is the lead's own
    average price on that book; None when no side has depth or nobody copies."""
    if lead_qty <= 0 or total_ratio <= 0 or followers_aum <= 0:
        return None
    caps = []
    for side, levels in sides.items():
        lead_walk = walk_book(levels, lead_qty)
        if lead_walk.avg_price is None:
            continue
        multiple = max_aum_for_slippage(levels, lead_walk.avg_price, side, lead_qty, total_ratio, max_bps)
        caps.append(lead_equity + followers_aum * multiple)
    return min(caps) if caps else None


# -- state kept per engine -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SymbolCapacity:
    symbol: str
    lead_qty: Decimal  # the lead's typical entry
    total_ratio: Decimal  # sum of the current copy ratios at that entry
    ref_price: Decimal  # the lead's own average on the ask side (buy)
    points: Mapping[Side, tuple[ProjectedPoint, ...]]
    cap: Decimal | None  # derived from max_slippage_bps, when configured


@dataclass
class AumState:
    configured: dict[tuple[str, str], Sizing] = field(default_factory=dict)  # (follower, lead)
    admissions: dict[tuple[str, str], Admission] = field(default_factory=dict)
    capacity: dict[str, dict[str, SymbolCapacity]] = field(default_factory=dict)
    start_equity: dict[str, Decimal] = field(default_factory=dict)
    equity_points: dict[str, list[tuple[int, Decimal]]] = field(default_factory=dict)


_STATES: weakref.WeakKeyDictionary[Engine, AumState] = weakref.WeakKeyDictionary()


def state_of(engine: Engine) -> AumState:
    state = _STATES.get(engine)
    if state is None:
        state = _STATES[engine] = AumState()
    for follower in engine.followers.values():
        for lead, sizing in follower.settings.sizings.items():
            # First sight is the config: every later change of the sizing is this module's.
            state.configured.setdefault((follower.id, lead), sizing)
        if follower.balance.equity > 0:
            state.start_equity.setdefault(follower.id, follower.balance.equity)
    return state


def _capitals(engine: Engine, lead: str, *, configured: bool) -> list[FollowerCapital]:
    """Followers of `lead` in config order, with the configured or the current (capped) sizing."""
    order = {f.id: i for i, f in enumerate(engine.cfg.followers)}
    state = state_of(engine)
    rows = []
    for f in sorted(engine.followers_of.get(lead, ()), key=lambda f: order.get(f.id, len(order))):
        sizing = state.configured[(f.id, lead)] if configured else f.settings.sizings[lead]
        rows.append(
            FollowerCapital(f.id, lead, sizing.allocation, f.balance.equity, f.state, len(f.settings.sizings))
        )
    return rows


def _lead_equity(engine: Engine, lead: str) -> Decimal:
    return engine.leads[lead].equity if engine.cfg.aum.include_lead else ZERO


def effective_cap(engine: Engine, lead: str) -> Decimal | None:
    """The lower of the absolute cap and the one derived from max_slippage_bps (when known)."""
    caps = [engine.cfg.aum.cap] if engine.cfg.aum.cap is not None else []
    if engine.cfg.aum.max_slippage_bps is not None:
        derived = [c.cap for c in state_of(engine).capacity.get(lead, {}).values() if c.cap is not None]
        caps += derived
    return min(caps) if caps else None


def _field(row: Any, name: str) -> Any:
    return row[name] if isinstance(row, Mapping) else getattr(row, name)


def lead_trades(rows: Iterable[Any]) -> list[LeadTrade]:
    """Journal lead-fill rows (LeadFill objects or mappings) as statistics inputs, in time order."""
    trades = [
        LeadTrade(
            symbol=str(_field(r, "symbol")),
            side=Side(str(_field(r, "side"))),
            qty=dec(_field(r, "qty")),
            price=dec(_field(r, "price")),
            ts_ms=int(_field(r, "ts_ms")),
        )
        for r in rows
    ]
    return sorted(trades, key=lambda t: t.ts_ms)


def _book_side(levels: Iterable[Sequence[Any]]) -> list[Level]:
    return [(dec(level[0]), dec(level[1])) for level in levels if dec(level[1]) > 0]


def _total_ratio(engine: Engine, lead: str, qty: Decimal, price: Decimal, *, configured: bool) -> Decimal:
    state = state_of(engine)
    total = ZERO
    for f in engine.followers_of.get(lead, ()):
        if f.state not in COUNTED_STATES:
            continue
        sizing = state.configured[(f.id, lead)] if configured else f.settings.sizings[lead]
        total += base_ratio(
            sizing,
            lead_after=qty,
            price=price,
            follower_equity=f.balance.equity,
            lead_equity=engine.leads[lead].equity,
        )
    return total


async def refresh_capacity(engine: Engine, multipliers: Sequence[int] = DEFAULT_MULTIPLIERS) -> None:
    """Fetch the current book of every symbol the lead has entered and cache, per lead and symbol,
    the projected slippage of the combined follower order at each AUM multiple, and the cap derived
    from max_slippage_bps. One book request per (lead, symbol); run it from the upkeep pass."""
    state = state_of(engine)
    max_bps = engine.cfg.aum.max_slippage_bps
    for lead_id, lead in engine.leads.items():
        entries = typical_entries(lead_trades(engine.journal.lead_fills(lead_id)), TYPICAL_ENTRY_WINDOW)
        followers_aum = sum(
            (follower_contribution(c) for c in _capitals(engine, lead_id, configured=True)), ZERO
        )
        result: dict[str, SymbolCapacity] = {}
        for symbol, qty in entries.items():
            book = await lead.rest.fetch_order_book(symbol)
            sides = {Side.BUY: _book_side(book["asks"]), Side.SELL: _book_side(book["bids"])}
            lead_buy = walk_book(sides[Side.BUY], qty) if sides[Side.BUY] else None
            if lead_buy is None or lead_buy.avg_price is None:
                continue
            ref = lead_buy.avg_price
            total = _total_ratio(engine, lead_id, qty, ref, configured=False)
            points: dict[Side, tuple[ProjectedPoint, ...]] = {}
            for side, levels in sides.items():
                side_ref = walk_book(levels, qty).avg_price if levels else None
                if total > 0 and side_ref is not None:
                    points[side] = tuple(projection(levels, side_ref, side, qty, total, multipliers))
            cap = None
            if max_bps is not None:
                configured_total = _total_ratio(engine, lead_id, qty, ref, configured=True)
                cap = slippage_cap(sides, qty, configured_total, followers_aum, max_bps,
                                   lead_equity=_lead_equity(engine, lead_id))  # fmt: skip
            result[symbol] = SymbolCapacity(symbol, qty, total, ref, points, cap)
        state.capacity[lead_id] = result
        _sample_equity(state, lead_id, lead.equity, int(time.time() * 1000))


def _sample_equity(state: AumState, lead: str, equity: Decimal, now_ms: int) -> None:
    points = state.equity_points.setdefault(lead, [])
    if equity > 0 and (not points or now_ms - points[-1][0] >= EQUITY_SAMPLE_MS):
        points.append((now_ms, equity))


def apply_aum_cap(engine: Engine) -> list[str]:
    """Admit each lead's followers under its cap and rewrite the sizings of those partly or wholly
    refused (or restore them once they fit). Returns the reasons of the admissions that changed in
    this pass; each is also journaled as an `aum_cap` event for the follower."""
    state = state_of(engine)
    changed: list[str] = []
    for lead_id in engine.followers_of:
        capitals = _capitals(engine, lead_id, configured=True)
        cap = effective_cap(engine, lead_id)
        for adm in admit(lead_id, capitals, cap, lead_equity=_lead_equity(engine, lead_id)):
            follower = engine.followers[adm.follower]
            key = (adm.follower, lead_id)
            follower.settings.sizings[lead_id] = capped_sizing(state.configured[key], adm)
            before = state.admissions.get(key)
            state.admissions[key] = adm
            if (before.fraction if before else Decimal(1)) == adm.fraction:
                continue  # the sizing follows equity silently; only a new fraction is an event
            reason = adm.reason or f"lead {lead_id} AUM cap {cap}: all {adm.requested:.2f} admitted"
            engine.journal.record_event("aum_cap", adm.follower, {
                "lead": lead_id, "cap": jsonable(cap), "requested": jsonable(adm.requested),
                "admitted": jsonable(adm.admitted), "fraction": jsonable(adm.fraction), "reason": reason,
            })  # fmt: skip
            changed.append(f"{adm.follower}: {reason}")
    return changed


# -- the lead table ---------------------------------------------------------------------------------


def lead_rows(engine: Engine, *, now_ms: int) -> list[LeadRow]:
    """One row per lead. Copier PnL is the followers' equity change since this process first saw
    them, split evenly among the leads each follows (fees and funding included, not persisted across
    restarts). Projected slippage is the worst 1x point over the lead's symbols and both sides."""
    state = state_of(engine)
    rows = []
    for lead_id, lead in engine.leads.items():
        _sample_equity(state, lead_id, lead.equity, now_ms)
        snap = lead_aum(lead_id, _capitals(engine, lead_id, configured=False),
                        lead_equity=lead.equity, include_lead=engine.cfg.aum.include_lead)  # fmt: skip
        trades = lead_trades(engine.journal.lead_fills(lead_id))
        points = state.equity_points.get(lead_id, [])
        try:
            stats = lead_stats(trades, points, now_ms, marks=engine.marks)
        except ValueError:  # an open position without a mark: report it without unrealized PnL
            stats = lead_stats(trades, points, now_ms)
        copier = ZERO
        for f in engine.followers_of.get(lead_id, ()):
            start = state.start_equity.get(f.id)
            if start is not None:
                copier += (f.balance.equity - start) / len(f.settings.sizings)
        one_x = [p[0].bps for c in state.capacity.get(lead_id, {}).values() for p in c.points.values() if p]
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


# -- JSON ------------------------------------------------------------------------------------------


def jsonable(value: Any) -> Any:
    """Decimals as strings (exact), recursively; everything else as is."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def history_point(row: Any) -> tuple[int, str, Decimal]:
    """(ts_ms, lead, aum) from a journal aum_history row (mapping, object or tuple)."""
    if isinstance(row, Sequence) and not isinstance(row, str | bytes):
        return int(row[0]), str(row[1]), dec(row[2])
    return int(_field(row, "ts")), str(_field(row, "lead")), dec(_field(row, "aum"))
