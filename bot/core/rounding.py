"""Market precision: decode ccxt markets into `MarketSpec` and round with the market's own steps.

Rounding is done on `Decimal` multiples of the step, never by float arithmetic.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, ROUND_UP, Decimal
from typing import Any

from bot.core.types import MarketSpec, Side


def dec(value: Any) -> Decimal:
    """Decimal from a venue value; floats go through repr so 0.1 stays 0.1."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


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


def _filters(info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f.get("filterType", ""): f for f in info.get("filters", []) or []}


def market_spec_from_ccxt(market: dict[str, Any]) -> MarketSpec:
    """Decode one ccxt market. Binance's raw filter strings are preferred over ccxt's floats."""
    info = market.get("info") or {}
    filters = _filters(info)
    lot = filters.get("MARKET_LOT_SIZE") or filters.get("LOT_SIZE") or {}
    price_filter = filters.get("PRICE_FILTER") or {}
    notional = filters.get("MIN_NOTIONAL") or {}
    limits = market.get("limits") or {}
    precision = market.get("precision") or {}

    step = dec(lot.get("stepSize") or precision.get("amount") or "1")
    min_qty = dec(lot.get("minQty") or (limits.get("amount") or {}).get("min") or step)
    max_raw = lot.get("maxQty") or (limits.get("amount") or {}).get("max")
    tick = dec(price_filter.get("tickSize") or precision.get("price") or "0.01")
    min_notional = dec(notional.get("notional") or (limits.get("cost") or {}).get("min") or "0")
    return MarketSpec(
        symbol=market["symbol"],
        venue_symbol=market["id"],
        base=market.get("base", ""),
        quote=market.get("quote", ""),
        settle=market.get("settle") or market.get("quote", ""),
        step=step.normalize() if step != 0 else Decimal(1),
        min_qty=min_qty,
        max_qty=dec(max_raw) if max_raw else None,
        tick=tick.normalize(),
        min_notional=min_notional,
        contract_size=dec(market.get("contractSize") or 1),
    )
