"""Decoding Bybit V5 (linear) answers at the boundary, from the venue's raw strings where ccxt keeps
them in `info` (exact decimals), with ccxt's unified fields as the fallback.

A create-order reply carries only `orderId` and `orderLinkId`: its outcome decodes as UNKNOWN with no
error, which the executor settles by looking the client id up (bot.live.executor)."""

from __future__ import annotations

import time
from dataclasses import replace
from decimal import Decimal
from typing import Any

from bot.core.rounding import dec
from bot.core.types import LeadFill, MarketSpec, OrderOutcome, OrderStatus, PositionSnapshot, Side
from bot.venues import ccxt_common

STATUS = {
    "New": OrderStatus.NEW,
    "Untriggered": OrderStatus.NEW,
    "Triggered": OrderStatus.NEW,
    "PartiallyFilled": OrderStatus.PARTIALLY_FILLED,
    "Filled": OrderStatus.FILLED,
    "Cancelled": OrderStatus.CANCELED,
    "PartiallyFilledCanceled": OrderStatus.CANCELED,
    "Deactivated": OrderStatus.CANCELED,
    "Rejected": OrderStatus.REJECTED,
}

# Fills of the account's own position, whatever caused them: a lead's liquidation (BustTrade) or
# auto-deleveraging (AdlTrade) moves its position as a trade does and must be copied the same way.
# Funding, Settle, Delivery and the like move no position.
POSITION_EXEC_TYPES = frozenset({"Trade", "BustTrade", "AdlTrade"})


def _raw(value: Any) -> Any:
    return None if value in (None, "") else value


def market_spec(market: dict[str, Any]) -> MarketSpec:
    """instruments-info's lotSizeFilter / priceFilter strings win over ccxt's floats; market orders
    are bounded by maxMktOrderQty, which is below maxOrderQty (limit orders) on most symbols."""
    info = market.get("info") or {}
    lot = info.get("lotSizeFilter") or {}
    price = info.get("priceFilter") or {}
    return ccxt_common.market_spec(
        market,
        step=_raw(lot.get("qtyStep")),
        min_qty=_raw(lot.get("minOrderQty")),
        max_qty=_raw(lot.get("maxMktOrderQty")) or _raw(lot.get("maxOrderQty")),
        tick=_raw(price.get("tickSize")),
        min_notional=_raw(lot.get("minNotionalValue")),
    )


def positions(rows: list[dict[str, Any]]) -> dict[str, PositionSnapshot]:
    out: dict[str, PositionSnapshot] = {}
    for row in rows:
        info = row.get("info") or {}
        size = _raw(info.get("size"))
        qty = None
        if size is not None:
            qty = -dec(size) if info.get("side") == "Sell" else dec(size)
        out[row["symbol"]] = ccxt_common.position(
            row,
            qty=qty,
            entry=_raw(info.get("avgPrice")),
            update_ms=_raw(info.get("updatedTime")),
            leverage=_raw(info.get("leverage")),
        )
    return out


def equity(balance: dict[str, Any], settle: str = "USDT") -> Decimal:
    """The settlement coin's equity (wallet balance plus unrealised PnL) of the unified account."""
    info = balance.get("info") or {}
    result = info.get("result") if isinstance(info, dict) else None
    for account in (result or {}).get("list", []) or []:
        for coin in account.get("coin", []) or []:
            if coin.get("coin") == settle and _raw(coin.get("equity")) is not None:
                return dec(coin["equity"])
    return ccxt_common.unified_equity(balance, settle)


def order_outcome(order: dict[str, Any], client_order_id: str) -> OrderOutcome:
    info = order.get("info") or {}
    raw_status = info.get("orderStatus")
    status = STATUS.get(str(raw_status)) if raw_status else None
    if status is OrderStatus.CANCELED and (
        info.get("orderType") == "Market" or info.get("timeInForce") in ("IOC", "FOK")
    ):
        status = OrderStatus.EXPIRED  # the remainder of a market / IOC order, as Binance calls it
    if status is None:
        # Only orderId and orderLinkId (a create reply): not a status, and ccxt's parse of it (its
        # guessed "open", amount 0) must not stand in for one.
        outcome = OrderOutcome(client_order_id, OrderStatus.UNKNOWN)
    else:
        outcome = ccxt_common.order_outcome(
            order,
            client_order_id,
            status=status,
            filled=_raw(info.get("cumExecQty")),
            avg=_raw(info.get("avgPrice")),
            ts_ms=_raw(info.get("updatedTime")),
        )
    if info.get("orderId"):
        outcome = replace(outcome, order_id=str(info["orderId"]))
    return outcome


def fill_from_execution(lead: str, exchange: Any, row: dict[str, Any], source: str) -> LeadFill | None:
    """One raw execution (REST execution/list row or `execution` stream item) as a LeadFill, or None
    for an execution that moves no position (funding, settlement)."""
    if row.get("execType", "Trade") not in POSITION_EXEC_TYPES or row.get("category", "linear") != "linear":
        return None
    market = exchange.safe_market(row.get("symbol"), None, None, "swap")
    return LeadFill(
        lead=lead,
        trade_id=str(row["execId"]),
        order_id=str(row.get("orderId") or ""),
        symbol=market["symbol"],
        side=Side(str(row["side"]).lower()),
        qty=dec(row["execQty"]),
        price=dec(row["execPrice"]),
        ts_ms=int(row.get("execTime") or 0),
        received_ns=time.perf_counter_ns(),
        client_order_id=row.get("orderLinkId") or None,
        source=source,
    )
