"""Sizing: how much of a lead's position a follower copies.

The copy ratio of one (lead, follower, symbol) is STATE, not a formula re-evaluated on every event.
It is decided when the lead opens (or flips) a position and carried unchanged while the lead adds to
or reduces that position, so that a move of the price or of either account's equity alone never
changes the follower's target and never causes a rebalancing trade. Exits are proportional: when
the lead halves its position the follower halves its own.

- multiplier: ratio = m, fixed at the open.
- equity_ratio: ratio = follower_equity / lead_equity x m, both equities taken at the open.
- allocation: ratio = allocation / lead_equity x m, lead equity taken at the open.
- fixed_notional: the follower puts `notional` (quote) into each lead entry ORDER. The first fill of
  a lead order that opens or increases the position adds notional / price to the follower's
  target; the later partial fills of that same order add nothing, because the order's notional was
  already committed in full at its first fill (the lead's final order size is unknown then). The
  ratio is re-blended at every new entry so that target = ratio x lead_position holds exactly.

`price` is the price of one lead contract (the ccxt price times the lead's contract size on
contract-sized markets; the two are equal on Binance USD-M).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from bot.core.rounding import round_to_step
from bot.core.types import ZERO, MarketSpec


class SizingMode(StrEnum):
    EQUITY_RATIO = "equity_ratio"
    MULTIPLIER = "multiplier"
    FIXED_NOTIONAL = "fixed_notional"
    ALLOCATION = "allocation"


@dataclass(frozen=True, slots=True)
class Sizing:
    mode: SizingMode
    multiplier: Decimal = Decimal(1)
    notional: Decimal | None = None  # fixed_notional: quote amount per lead entry order
    allocation: Decimal | None = None  # allocation: capital reserved for this lead

    def __post_init__(self) -> None:
        if not isinstance(self.mode, SizingMode):
            try:
                object.__setattr__(self, "mode", SizingMode(self.mode))
            except ValueError:
                choices = ", ".join(m.value for m in SizingMode)
                raise ValueError(f"Sizing.mode: {self.mode!r} is not one of {choices}") from None
        for name in ("multiplier", "notional", "allocation"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, Decimal | int):
                raise ValueError(f"Sizing.{name}: expected a Decimal, got {type(value).__name__} {value!r}")
            if not isinstance(value, Decimal):
                object.__setattr__(self, name, Decimal(value))
            if not getattr(self, name).is_finite() or getattr(self, name) <= 0:
                raise ValueError(f"Sizing.{name}: must be a positive finite amount, got {value}")
        if self.multiplier is None:
            raise ValueError("Sizing.multiplier: must be a positive amount, got None")
        if self.mode is SizingMode.FIXED_NOTIONAL and self.notional is None:
            raise ValueError("Sizing.notional: required when mode is fixed_notional")
        if self.mode is SizingMode.ALLOCATION and self.allocation is None:
            raise ValueError("Sizing.allocation: required when mode is allocation")


def base_ratio(
    sizing: Sizing,
    *,
    lead_after: Decimal,
    price: Decimal,
    follower_equity: Decimal,
    lead_equity: Decimal,
) -> Decimal:
    """The ratio taken when a position opens or flips. Zero when an input it needs is not positive:
    copying nothing is the safe answer to an unknown equity or price."""
    m = sizing.multiplier
    if sizing.mode is SizingMode.MULTIPLIER:
        return m
    if sizing.mode is SizingMode.EQUITY_RATIO:
        if lead_equity <= 0 or follower_equity <= 0:
            return ZERO
        return follower_equity / lead_equity * m
    if sizing.mode is SizingMode.ALLOCATION:
        assert sizing.allocation is not None  # checked in __post_init__
        return sizing.allocation / lead_equity * m if lead_equity > 0 else ZERO
    assert sizing.notional is not None  # checked in __post_init__
    if price <= 0 or lead_after == 0:
        return ZERO
    return sizing.notional / (abs(lead_after) * price)


def next_ratio(
    sizing: Sizing,
    *,
    prev_ratio: Decimal,
    lead_before: Decimal,
    lead_after: Decimal,
    price: Decimal,
    follower_equity: Decimal,
    lead_equity: Decimal,
    new_entry: bool,
) -> Decimal:
    """The copy ratio after a lead fill moved the lead's position from lead_before to lead_after.

    new_entry: this fill is the first fill of a lead order id that increases the position (only
    fixed_notional uses it). A prev_ratio of zero on an open position (state lost, or equity
    unknown at the open) is re-derived as at an open rather than pinning the follower at zero.
    """
    if lead_after == 0:
        return ZERO
    opening = lead_before == 0 or (lead_before > 0) != (lead_after > 0)
    if opening or prev_ratio <= 0:
        return base_ratio(
            sizing,
            lead_after=lead_after,
            price=price,
            follower_equity=follower_equity,
            lead_equity=lead_equity,
        )
    before, after = abs(lead_before), abs(lead_after)
    if after <= before or sizing.mode is not SizingMode.FIXED_NOTIONAL:
        return prev_ratio
    assert sizing.notional is not None
    added = sizing.notional / price if new_entry and price > 0 else ZERO
    return (prev_ratio * before + added) / after


def target_position(
    parts: Iterable[tuple[Decimal, Decimal]],
    market: MarketSpec,
    *,
    lead_contract_size: Decimal = Decimal(1),
) -> Decimal:
    """The follower's target position in its own market's contracts, rounded toward zero to the step.

    parts: (ratio, lead_position) for every lead this follower copies on this symbol; the follower
    holds one netted position (one-way mode), so their contributions add up.
    """
    if market.contract_size <= 0:
        raise ValueError(f"target_position: {market.symbol} has contract_size {market.contract_size}")
    base_units = sum((ratio * position for ratio, position in parts), ZERO) * lead_contract_size
    return round_to_step(base_units / market.contract_size, market.step)
