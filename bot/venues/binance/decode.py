"""Decoding Binance USD-M answers at the boundary, from the venue's raw strings where ccxt keeps
them in `info` (exact decimals), with ccxt's unified fields as the fallback."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

from bot.core.rounding import dec
from bot.core.types import MarketSpec, OrderOutcome, OrderStatus, PositionSnapshot
from bot.venues import ccxt_common

STATUS = {
    "FILLED": OrderStatus.FILLED,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED,
    "NEW": OrderStatus.NEW,
    "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
    "CANCELED": OrderStatus.CANCELED,
    "REJECTED": OrderStatus.REJECTED,
}


def market_spec(market: dict[str, Any]) -> MarketSpec:
    """Binance's raw filter strings are preferred over ccxt's floats."""
    info = market.get("info") or {}
    filters = {f.get("filterType", ""): f for f in info.get("filters", []) or []}
    lot = filters.get("MARKET_LOT_SIZE") or filters.get("LOT_SIZE") or {}
    return ccxt_common.market_spec(
        market,
        step=lot.get("stepSize"),
        min_qty=lot.get("minQty"),
        max_qty=lot.get("maxQty"),
        tick=(filters.get("PRICE_FILTER") or {}).get("tickSize"),
        min_notional=(filters.get("MIN_NOTIONAL") or {}).get("notional"),
    )


def positions(rows: list[dict[str, Any]]) -> dict[str, PositionSnapshot]:
    out: dict[str, PositionSnapshot] = {}
    for row in rows:
        info = row.get("info") or {}
        out[row["symbol"]] = ccxt_common.position(
            row,
            qty=info.get("positionAmt"),
            entry=info.get("entryPrice"),
            update_ms=info.get("updateTime"),
            leverage=info.get("leverage"),
        )
    return out


def equity(balance: dict[str, Any], settle: str = "USDT") -> Decimal:
    """Account equity in the settlement currency: wallet balance plus unrealized PnL."""
    info = balance.get("info") or {}
    for asset in info.get("assets", []) if isinstance(info, dict) else []:
        if asset.get("asset") == settle and asset.get("marginBalance") is not None:
            return dec(asset["marginBalance"])
    if isinstance(info, dict) and info.get("totalMarginBalance") is not None:
        return dec(info["totalMarginBalance"])
    return ccxt_common.unified_equity(balance, settle)


def order_outcome(order: dict[str, Any], client_order_id: str) -> OrderOutcome:
    info = order.get("info") or {}
    raw_status = info.get("status")
    status = STATUS.get(str(raw_status)) if raw_status else None
    outcome = ccxt_common.order_outcome(
        order,
        client_order_id,
        status=status,
        filled=info.get("executedQty"),
        avg=info.get("avgPrice"),
        ts_ms=info.get("updateTime"),
    )
    if outcome.order_id is None and info.get("orderId") is not None:
        outcome = replace(outcome, order_id=str(info["orderId"]))
    return outcome
