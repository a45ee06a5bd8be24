"""Planner: the legs that take a follower from its current position to its target.

Plans are made against TARGETS, not copies of fills (docs/architecture.md, "Planner notes"): `current` is the
follower's confirmed position plus its signed in-flight quantity, so a missed, duplicated or
reordered lead fill only moves the target, and the next plan corrects the difference.

Venue minimums: an entry below min_qty or min_notional is not sent; the difference is deferred
with a reason and waits until later fills of the lead add up past the minimum (or, with
round_up_min, is rounded up to the smallest order the venue takes). Reduce-only legs are exempt
from min_notional on Binance but not from min_qty.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from bot.core.rounding import plain as _fmt
from bot.core.rounding import round_to_step
from bot.core.types import ZERO, Leg, MarketSpec, Side


@dataclass(frozen=True, slots=True)
class PlanResult:
    legs: tuple[Leg, ...]
    deferred: str | None = None  # why (part of) the difference cannot be sent yet


def _entry_qty(qty: Decimal, market: MarketSpec, ref_price: Decimal, round_up_min: bool) -> Decimal | str:
    """qty if the venue takes it as an entry, the rounded-up qty when allowed, else the deferral reason."""
    unit_value = ref_price * market.contract_size
    notional = qty * unit_value
    if qty >= market.min_qty and notional >= market.min_notional:
        return qty
    if round_up_min and unit_value > 0:
        needed = max(
            qty,
            round_to_step(market.min_qty, market.step, up=True),
            round_to_step(market.min_notional / unit_value, market.step, up=True),
        )
        if market.max_qty is None or needed <= market.max_qty:
            return needed
    if qty < market.min_qty:
        return f"below_min_qty: {_fmt(qty)} < {_fmt(market.min_qty)}"
    if unit_value <= 0:
        return f"no_price: reference price {_fmt(ref_price)} for {market.symbol}"
    return f"below_min_notional: {_fmt(notional)} < {_fmt(market.min_notional)} {market.quote}"


def _split(side: Side, qty: Decimal, reduce_only: bool, market: MarketSpec) -> tuple[Leg, ...]:
    """Split qty into near-equal step multiples of at most max_qty, so that no remainder leg ends
    up below the venue minimum."""
    max_qty = round_to_step(market.max_qty, market.step) if market.max_qty is not None else ZERO
    if max_qty <= 0 or qty <= max_qty:
        return (Leg(side, qty, reduce_only),)
    count = int((qty / max_qty).to_integral_value(rounding=ROUND_CEILING))
    base = round_to_step(qty / count, market.step)
    extra_steps = int((qty - base * count) / market.step)
    return tuple(
        Leg(side, base + (market.step if i < extra_steps else ZERO), reduce_only) for i in range(count)
    )


def _reduce(current: Decimal, qty: Decimal, market: MarketSpec) -> PlanResult:
    side = Side.SELL if current > 0 else Side.BUY
    if qty < market.min_qty:
        return PlanResult((), f"below_min_qty: {_fmt(qty)} < {_fmt(market.min_qty)} (reduce-only)")
    return PlanResult(_split(side, qty, True, market))


def _enter(
    side: Side, qty: Decimal, market: MarketSpec, ref_price: Decimal, round_up_min: bool
) -> PlanResult:
    sized = _entry_qty(qty, market, ref_price, round_up_min)
    if isinstance(sized, str):
        return PlanResult((), sized)
    return PlanResult(_split(side, sized, False, market))


def plan_legs(
    target: Decimal,
    current: Decimal,
    market: MarketSpec,
    ref_price: Decimal,
    *,
    round_up_min: bool = False,
) -> PlanResult:
    """Legs (each a step multiple, at most max_qty) that move `current` to `target`, both signed
    contracts of the follower's market; `ref_price` is the price the entry minimum is measured at."""
    diff = round_to_step(target - current, market.step)
    if diff == 0:
        return PlanResult(())
    flip = target != 0 and current != 0 and (target > 0) != (current > 0)
    if flip:
        close = abs(current)
        if close < market.min_qty:
            # A reduce-only close below min_qty would be rejected: cross zero in one entry instead.
            return _enter(Side.of(diff), abs(diff), market, ref_price, round_up_min)
        closing = _split(Side.of(-current), close, True, market)
        opening = _enter(
            Side.of(target), round_to_step(abs(target), market.step), market, ref_price, round_up_min
        )
        return PlanResult(closing + opening.legs, opening.deferred)
    if abs(target) < abs(current):
        # Closing outright sends exactly the position, even if it is not a step multiple (dust).
        qty = abs(current) if target == 0 else abs(diff)
        return _reduce(current, qty, market)
    return _enter(Side.of(diff), abs(diff), market, ref_price, round_up_min)
