"""Decoding of ccxt's unified structures, for venues whose adapter has no raw decoder of its own
and as the fallback of those that do. ccxt's unified amounts are floats: each goes through
`dec` (repr), and the venue's raw `info` strings are preferred wherever they are known."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from bot.core.manual import AccountOrder
from bot.core.rounding import dec
from bot.core.types import ZERO, LeadFill, MarketSpec, OrderOutcome, OrderStatus, PositionSnapshot, Side
from bot.venues.base import VenueMode

UNIFIED_STATUS = {
    "closed": OrderStatus.FILLED,
    "open": OrderStatus.NEW,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}


def market_spec(market: dict[str, Any], *, step: Any = None, min_qty: Any = None, max_qty: Any = None,
                tick: Any = None, min_notional: Any = None) -> MarketSpec:  # fmt: skip
    """A MarketSpec from ccxt's unified market; keyword values (the venue's raw strings) win."""
    limits = market.get("limits") or {}
    precision = market.get("precision") or {}
    step_d = dec(step or precision.get("amount") or "1")
    min_qty_d = dec(min_qty or (limits.get("amount") or {}).get("min") or step_d)
    max_raw = max_qty or (limits.get("amount") or {}).get("max")
    tick_d = dec(tick or precision.get("price") or "0.01")
    min_notional_d = dec(min_notional or (limits.get("cost") or {}).get("min") or "0")
    return MarketSpec(
        symbol=market["symbol"],
        venue_symbol=market["id"],
        base=market.get("base", ""),
        quote=market.get("quote", ""),
        settle=market.get("settle") or market.get("quote", ""),
        step=step_d.normalize() if step_d != 0 else Decimal(1),
        min_qty=min_qty_d,
        max_qty=dec(max_raw) if max_raw else None,
        tick=tick_d.normalize(),
        min_notional=min_notional_d,
        contract_size=dec(market.get("contractSize") or 1),
        taker_fee=dec(market.get("taker") or 0),
    )


def position(row: dict[str, Any], *, qty: Any = None, entry: Any = None, update_ms: Any = None,
             leverage: Any = None) -> PositionSnapshot:  # fmt: skip
    """A PositionSnapshot from ccxt's unified position; keyword values (raw strings) win."""
    if qty is None:
        contracts = dec(row.get("contracts") or 0)
        signed = -contracts if row.get("side") == "short" else contracts
    else:
        signed = dec(qty)
    lev = leverage if leverage not in (None, "") else row.get("leverage")
    return PositionSnapshot(
        symbol=row["symbol"],
        qty=signed,
        entry_price=dec(entry if entry not in (None, "") else (row.get("entryPrice") or 0)),
        update_ms=int(update_ms or row.get("timestamp") or 0),
        leverage=int(float(lev)) if lev not in (None, "") else None,
    )


def unified_equity(balance: dict[str, Any], settle: str = "USDT") -> Decimal:
    total = (balance.get("total") or {}).get(settle)
    return dec(total) if total is not None else ZERO


def order_outcome(order: dict[str, Any], client_order_id: str, *, status: OrderStatus | None = None,
                  filled: Any = None, avg: Any = None, ts_ms: Any = None) -> OrderOutcome:  # fmt: skip
    """An OrderOutcome from ccxt's unified order; keyword values (raw fields) win."""
    if status is None:
        status = UNIFIED_STATUS.get(str(order.get("status") or ""), OrderStatus.UNKNOWN)
    raw_filled = filled if filled is not None else order.get("filled")
    filled_qty = dec(raw_filled) if raw_filled is not None else ZERO
    raw_avg = avg if avg not in (None, "", "0", "0.0") else order.get("average")
    return OrderOutcome(
        client_order_id=client_order_id,
        status=status,
        filled_qty=filled_qty,
        avg_price=dec(raw_avg) if raw_avg not in (None, "") and filled_qty > 0 else None,
        order_id=str(order.get("id") or "") or None,
        exchange_ts_ms=int(ts_ms or order.get("timestamp") or 0) or None,
    )


def account_order(order: dict[str, Any], *, filled: Any = None, client_order_id: Any = None,
                  ts_ms: Any = None) -> AccountOrder:  # fmt: skip
    """An AccountOrder from ccxt's unified order; keyword values (raw fields) win."""
    raw_filled = filled if filled not in (None, "") else order.get("filled")
    cid = client_order_id if client_order_id is not None else order.get("clientOrderId")
    return AccountOrder(
        order_id=str(order.get("id") or ""),
        client_order_id=str(cid or ""),
        symbol=order["symbol"],
        side=Side(str(order["side"]).lower()),
        filled=dec(raw_filled) if raw_filled not in (None, "") else ZERO,
        ts_ms=int(ts_ms or order.get("lastTradeTimestamp") or order.get("timestamp") or 0),
    )


def fill_from_trade(lead: str, trade: dict[str, Any], source: str, *, qty: Any = None, price: Any = None,
                    client_order_id: str | None = None) -> LeadFill:  # fmt: skip
    """A LeadFill from ccxt's unified trade (REST history, or a stream without a raw decoder)."""
    return LeadFill(
        lead=lead,
        trade_id=str(trade["id"]),
        order_id=str(trade.get("order") or ""),
        symbol=trade["symbol"],
        side=Side(trade["side"]),
        qty=dec(qty if qty is not None else trade["amount"]),
        price=dec(price if price is not None else trade["price"]),
        ts_ms=int(trade.get("timestamp") or 0),
        received_ns=time.perf_counter_ns(),
        client_order_id=client_order_id or trade.get("clientOrderId"),
        source=source,
    )


def apply_mode(exchange: Any, mode: VenueMode) -> Any:
    """Point a ccxt client at the venue's testnet or demo-trading hosts (live and sim: unchanged)."""
    if mode is VenueMode.TESTNET:
        exchange.set_sandbox_mode(True)
    elif mode is VenueMode.DEMO:
        exchange.enable_demo_trading(True)
    return exchange


def order_flags(params: dict[str, Any], *, reduce_only: bool, ioc: bool) -> dict[str, Any]:
    """ccxt's unified reduce-only and IOC flags added to an order's params."""
    if reduce_only:
        params["reduceOnly"] = True
    if ioc:
        params["timeInForce"] = "IOC"
    return params


def cached_tickers(client: Any, symbols: list[str]) -> dict[str, Any]:
    """The latest ticker of each of `symbols` in a ccxt.pro client's cache. A watch call wakes on
    one message; updates of other symbols in the same burst land only in the cache."""
    tickers = getattr(client, "tickers", None) or {}
    return {s: tickers[s] for s in symbols if s in tickers}


def marks_from_tickers(tickers: dict[str, Any], raw_field: str | None) -> dict[str, Decimal]:
    """unified symbol -> mark of ccxt tickers: from the raw `info[raw_field]` string when the venue
    is known, else ccxt's unified `markPrice`; a ticker without a mark is left out."""
    out: dict[str, Decimal] = {}
    for symbol, ticker in tickers.items():
        info = ticker.get("info") or {}
        raw = info.get(raw_field) if raw_field else None
        value = raw if raw not in (None, "") else ticker.get("markPrice")
        if value not in (None, ""):
            mark = dec(value)
            if mark > 0:
                out[symbol] = mark
    return out
