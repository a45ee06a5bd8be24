"""Rounding with a market's own steps, and Decimals from venue values.

Rounding is done on `Decimal` multiples of the step, never by float arithmetic.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_HALF_EVEN, ROUND_UP, Decimal
from typing import Any

from bot.core.types import Side


def dec(value: Any) -> Decimal:
    """Decimal from a venue value; floats go through repr so 0.1 stays 0.1."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def plain(value: Decimal) -> str:
    """A Decimal as plain text for reasons and messages: no exponent, no trailing zeros (1E+1 -> 10)."""
    return f"{value.normalize():f}"


def round_to_step(qty: Decimal, step: Decimal, *, up: bool = False) -> Decimal:
    """Round |qty| down (or up) to a multiple of step, keeping the sign."""
    if step <= 0:
        return qty
    units = (abs(qty) / step).to_integral_value(rounding=ROUND_UP if up else ROUND_DOWN)
    result = (units * step).quantize(step) if units else Decimal(0)
    return -result if qty < 0 else result


def round_price(price: Decimal, tick: Decimal, side: Side) -> Decimal:
    """Round a limit price to the tick on the side that keeps it inside the intended band:
    a buy limit rounds down, a sell limit rounds up."""
    if tick <= 0:
        return price
    rounding = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
    return ((price / tick).to_integral_value(rounding=rounding) * tick).quantize(tick)


def shown(value: Decimal | str, step: Decimal = Decimal("0.01"), *, grouped: bool = False) -> str:
    """An amount for people: as many decimals as the venue's step (a lot step for quantities, the
    cent of the settle currency for money by default), never "-0.00", optionally with thousands
    separators. Display only: nothing computes with the result."""
    amount = dec(value).quantize(step.normalize() if step >= 1 else step, rounding=ROUND_HALF_EVEN)
    if amount == 0:
        amount = abs(amount)
    return f"{amount:,f}" if grouped else f"{amount:f}"
