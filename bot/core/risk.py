"""RiskGate: a pure function of (follower state, intent) -> approved, clipped or denied, with a reason.

Entry guards (symbol lists, caps, the slippage band) apply to entries only: a reduce-only intent is
approved in full whatever the caps or the REDUCE_ONLY state say, because blocking an exit can only
increase risk (invariant 4, docs/architecture.md). Only HALTED (follower, global or the kill
switch) stops exits.

Exposure is measured on `FollowerRiskState.positions`, which must already include the signed
quantity of the follower's in-flight orders; an approved entry then never takes the follower over a
cap however many orders are in flight (invariant 3). Notional values are |contracts| x mark x
contract size, in the settlement currency.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal

from bot.core.rounding import plain as _fmt
from bot.core.rounding import round_price, round_to_step
from bot.core.trading_state import StateCode
from bot.core.types import ZERO, Decision, Intent, MarketSpec, Reason, ReasonCode, Side, TradingState, Verdict

_BPS = Decimal(10_000)


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Per follower caps; None means no cap. Notionals are in the settlement currency."""

    max_order_notional: Decimal | None = None
    max_position_notional: Decimal | None = None  # per symbol
    max_total_exposure: Decimal | None = None
    max_leverage: Decimal | None = None  # total exposure / equity
    symbols_allow: frozenset[str] | None = None
    symbols_deny: frozenset[str] = frozenset()
    slippage_bps: Decimal | None = None  # entry band around the lead's price; None = market orders
    portfolio_stop: Decimal | None = None  # fraction of allocation_base below which to halt
    daily_loss_limit: Decimal | None = None  # quote amount lost since the day started
    max_drawdown: Decimal | None = None  # fraction below the equity peak

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name.startswith("symbols") or value is None:
                continue
            if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
                raise ValueError(f"RiskLimits.{f.name}: expected a non-negative Decimal, got {value!r}")
        for name in ("portfolio_stop", "max_drawdown"):
            value = getattr(self, name)
            if value is not None and value > 1:
                raise ValueError(f"RiskLimits.{name}: a fraction in [0, 1], got {value}")


@dataclass(frozen=True, slots=True)
class FollowerRiskState:
    follower: str
    state: TradingState
    global_state: TradingState
    kill_switch: bool
    equity: Decimal
    peak_equity: Decimal
    day_start_equity: Decimal
    allocation_base: Decimal  # sum of allocations, or the starting equity
    positions: Mapping[str, Decimal]  # signed contracts, confirmed + in flight
    marks: Mapping[str, Decimal]  # price per symbol
    contract_sizes: Mapping[str, Decimal] = field(default_factory=dict)  # missing = 1


@dataclass(frozen=True, slots=True)
class StopTrigger:
    stop: StateCode  # PORTFOLIO_STOP, DAILY_LOSS or MAX_DRAWDOWN
    action: TradingState
    reason: str


def _contract_size(state: FollowerRiskState, symbol: str) -> Decimal:
    return state.contract_sizes.get(symbol, Decimal(1))


def clip_target(
    target: Decimal,
    symbol: str,
    state: FollowerRiskState,
    limits: RiskLimits,
    market: MarketSpec,
    *,
    ref_price: Decimal | None = None,
) -> tuple[Decimal, str | None]:
    """Clip |target| toward zero so that its notional stays within max_position_notional.

    Priced at the symbol's mark, else at ref_price; with neither the target is returned as is (the
    gate still checks every entry against the caps)."""
    cap = limits.max_position_notional
    price = state.marks.get(symbol) or ref_price
    if cap is None or price is None or price <= 0:
        return target, None
    unit_value = price * _contract_size(state, symbol)
    allowed = round_to_step(cap / unit_value, market.step)
    if abs(target) <= allowed:
        return target, None
    clipped = allowed if target > 0 else -allowed
    notional = abs(target) * unit_value
    return (
        clipped,
        f"max_position_notional: {_fmt(notional)} > {_fmt(cap)}; target {_fmt(target)} -> {_fmt(clipped)}",
    )


def exposure(state: FollowerRiskState) -> tuple[Decimal, list[str]]:
    """Total |notional| over the follower's positions, and the symbols held without a mark."""
    total = ZERO
    unpriced: list[str] = []
    for symbol, qty in state.positions.items():
        if qty == 0:
            continue
        mark = state.marks.get(symbol)
        if mark is None or mark <= 0:
            unpriced.append(symbol)
            continue
        total += abs(qty) * mark * _contract_size(state, symbol)
    return total, unpriced


def _halted(state: FollowerRiskState) -> Reason | None:
    if state.kill_switch:
        return Reason(ReasonCode.KILL_SWITCH, "halted: kill switch engaged")
    if state.state is TradingState.HALTED:
        return Reason(ReasonCode.HALTED, f"halted: follower {state.follower} is HALTED")
    if state.global_state is TradingState.HALTED:
        return Reason(ReasonCode.HALTED, "halted: global state is HALTED")
    return None


def _entry_block(intent: Intent, state: FollowerRiskState, limits: RiskLimits) -> Reason | None:
    if state.state is TradingState.REDUCE_ONLY:
        text = f"reduce_only: follower {state.follower} is REDUCE_ONLY, entries are denied"
        return Reason(ReasonCode.REDUCE_ONLY, text)
    if state.global_state is TradingState.REDUCE_ONLY:
        return Reason(ReasonCode.REDUCE_ONLY, "reduce_only: global state is REDUCE_ONLY, entries are denied")
    if limits.symbols_allow is not None and intent.symbol not in limits.symbols_allow:
        return Reason(
            ReasonCode.SYMBOL_NOT_ALLOWED, f"symbol_not_allowed: {intent.symbol} is not in symbols_allow"
        )
    if intent.symbol in limits.symbols_deny:
        return Reason(ReasonCode.SYMBOL_DENIED, f"symbol_denied: {intent.symbol} is in symbols_deny")
    return None


def _headrooms(
    intent: Intent, state: FollowerRiskState, limits: RiskLimits, price: Decimal
) -> list[tuple[Decimal, Reason]] | Reason:
    """(largest allowed qty, reason if the intent exceeds it) per cap, or a denial reason.

    Each cap on a position notional bounds |pos + s*q| by some C, which for q >= 0 is q <= C - s*pos
    whichever way the order goes (s = +1 buy, -1 sell)."""
    cs = _contract_size(state, intent.symbol)
    unit_value = price * cs
    pos = state.positions.get(intent.symbol, ZERO)
    s = intent.side.sign
    new_notional = abs(pos + s * intent.qty) * unit_value
    rooms: list[tuple[Decimal, Reason]] = []
    if limits.max_order_notional is not None:
        order_value = intent.ref_price * cs if intent.ref_price > 0 else unit_value
        notional = intent.qty * order_value
        rooms.append(
            (
                limits.max_order_notional / order_value,
                Reason(
                    ReasonCode.MAX_ORDER_NOTIONAL,
                    f"max_order_notional: {_fmt(notional)} > {_fmt(limits.max_order_notional)}",
                ),
            )
        )
    if limits.max_position_notional is not None:
        cap = limits.max_position_notional
        text = f"max_position_notional: {_fmt(new_notional)} > {_fmt(cap)}"
        rooms.append((cap / unit_value - s * pos, Reason(ReasonCode.MAX_POSITION_NOTIONAL, text)))
    if limits.max_total_exposure is not None or limits.max_leverage is not None:
        total, unpriced = exposure(state)
        if unpriced:
            text = f"no_mark: cannot measure exposure without a mark for {', '.join(sorted(unpriced))}"
            return Reason(ReasonCode.NO_MARK, text)
        others = total - abs(pos) * unit_value
        new_total = others + new_notional
        if limits.max_total_exposure is not None:
            cap = limits.max_total_exposure
            rooms.append(
                (
                    (cap - others) / unit_value - s * pos,
                    Reason(
                        ReasonCode.MAX_TOTAL_EXPOSURE, f"max_total_exposure: {_fmt(new_total)} > {_fmt(cap)}"
                    ),
                )
            )
        if limits.max_leverage is not None:
            if state.equity <= 0:
                text = f"max_leverage: equity is {_fmt(state.equity)}, no leverage headroom"
                return Reason(ReasonCode.MAX_LEVERAGE, text)
            cap = limits.max_leverage * state.equity
            rooms.append(
                (
                    (cap - others) / unit_value - s * pos,
                    Reason(
                        ReasonCode.MAX_LEVERAGE,
                        f"max_leverage: {_fmt(new_total / state.equity)} > {_fmt(limits.max_leverage)}"
                        f" (exposure {_fmt(new_total)}, equity {_fmt(state.equity)})",
                    ),
                )
            )
    return rooms


def evaluate(intent: Intent, state: FollowerRiskState, limits: RiskLimits, market: MarketSpec) -> Decision:
    """Approve, clip or deny one intent. Every CLIPPED and DENIED decision carries its reason."""
    if intent.symbol != market.symbol:
        raise ValueError(
            f"evaluate: intent {intent.client_order_id} is for {intent.symbol}, market is {market.symbol}"
        )
    halted = _halted(state)
    if halted is not None:
        return _deny(intent, halted)
    if intent.reduce_only:
        return Decision(intent, Verdict.APPROVED, intent.qty)
    blocked = _entry_block(intent, state, limits)
    if blocked is not None:
        return _deny(intent, blocked)
    price = state.marks.get(intent.symbol) or intent.ref_price
    if price <= 0:
        return _deny(
            intent, Reason(ReasonCode.NO_PRICE, f"no_price: no mark or reference price for {intent.symbol}")
        )
    rooms = _headrooms(intent, state, limits, price)
    if isinstance(rooms, Reason):
        return _deny(intent, rooms)
    tight = [(room, reason) for room, reason in rooms if room < intent.qty]
    if not tight:
        return Decision(intent, Verdict.APPROVED, intent.qty)
    room, (code, text) = min(tight, key=lambda pair: pair[0])
    qty = round_to_step(max(room, ZERO), market.step)
    notional = qty * intent.ref_price * _contract_size(state, intent.symbol)
    if qty <= 0:
        return _deny(intent, Reason(code, f"{text}; no headroom"))
    if qty < market.min_qty:
        return _deny(intent, Reason(code, f"{text}; headroom {_fmt(qty)} < min_qty {_fmt(market.min_qty)}"))
    if notional < market.min_notional:
        headroom = f"headroom {_fmt(notional)} < min_notional {_fmt(market.min_notional)}"
        return _deny(intent, Reason(code, f"{text}; {headroom}"))
    return Decision(intent, Verdict.CLIPPED, qty, f"{text}; clipped {_fmt(intent.qty)} -> {_fmt(qty)}", code)


def _deny(intent: Intent, reason: Reason) -> Decision:
    return Decision(intent, Verdict.DENIED, ZERO, reason.text, reason.code)


def entry_price_limit(side: Side, ref_price: Decimal, slippage_bps: Decimal, tick: Decimal) -> Decimal:
    """The IOC limit price of an entry: the lead's price moved against us by the band, rounded to the
    tick inward (a buy down, a sell up) so the order never pays more than the band allows."""
    band = ref_price * slippage_bps / _BPS
    return round_price(ref_price + side.sign * band, tick, side)


def check_stops(state: FollowerRiskState, limits: RiskLimits) -> list[StopTrigger]:
    """The account-level stops that fire for this follower now, tightest action first. Reads the
    account figures only (equity, peak, day start, allocation base), never positions or marks."""
    triggers: list[StopTrigger] = []
    if limits.portfolio_stop is not None and state.allocation_base > 0:
        floor = limits.portfolio_stop * state.allocation_base
        if state.equity < floor:
            triggers.append(
                StopTrigger(
                    StateCode.PORTFOLIO_STOP,
                    TradingState.HALTED,
                    f"portfolio_stop: equity {_fmt(state.equity)} < {_fmt(limits.portfolio_stop)}"
                    f" x {_fmt(state.allocation_base)} = {_fmt(floor)}",
                )
            )
    if limits.daily_loss_limit is not None:
        loss = state.day_start_equity - state.equity
        if loss >= limits.daily_loss_limit:
            triggers.append(
                StopTrigger(
                    StateCode.DAILY_LOSS,
                    TradingState.REDUCE_ONLY,
                    f"daily_loss: lost {_fmt(loss)} >= {_fmt(limits.daily_loss_limit)} since"
                    f" {_fmt(state.day_start_equity)}",
                )
            )
    if limits.max_drawdown is not None and state.peak_equity > 0:
        drawdown = (state.peak_equity - state.equity) / state.peak_equity
        if drawdown >= limits.max_drawdown:
            shown = drawdown.quantize(Decimal("0.0001"))
            triggers.append(
                StopTrigger(
                    StateCode.MAX_DRAWDOWN,
                    TradingState.REDUCE_ONLY,
                    f"max_drawdown: {_fmt(shown)} >= {_fmt(limits.max_drawdown)}"
                    f" (equity {_fmt(state.equity)}, peak {_fmt(state.peak_equity)})",
                )
            )
    return triggers
