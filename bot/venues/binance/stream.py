"""Lead account adapter: decodes the lead's executions into `LeadFill`s at the boundary.

Binance's ORDER_TRADE_UPDATE is decoded from the raw message strings (exact decimals) inside ccxt's
own message handler, the moment the frame is parsed: a fill never waits in ccxt's cache for a watch
call to be pending (see shared/notes: a message arriving while no watch call is pending is only
returned with the next one). Other venues go through ccxt's unified trades.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bot.core.rounding import dec
from bot.core.types import LeadFill, Side

StreamEvent = Callable[[dict[str, Any]], None]


def fill_from_binance_update(lead: str, exchange: Any, message: dict[str, Any]) -> LeadFill | None:
    """An ORDER_TRADE_UPDATE with execution type TRADE, else None."""
    order = message.get("o")
    if not isinstance(order, dict) or order.get("x") != "TRADE":
        return None
    market = exchange.safe_market(order.get("s"), None, None, "swap")
    return LeadFill(
        lead=lead,
        trade_id=str(order["t"]),
        order_id=str(order["i"]),
        symbol=market["symbol"],
        side=Side(str(order["S"]).lower()),
        qty=dec(order["l"]),
        price=dec(order["L"]),
        ts_ms=int(order.get("T") or message.get("T") or message.get("E") or 0),
        received_ns=time.perf_counter_ns(),
        client_order_id=order.get("c"),
        source="ws",
    )


def fill_from_ccxt_trade(lead: str, trade: dict[str, Any], source: str) -> LeadFill:
    """A ccxt unified trade (REST backfill, or a venue without a raw decoder)."""
    info = trade.get("info") or {}
    # Prefer the venue's raw strings; ccxt's unified amount/price are floats.
    qty = info.get("qty") or info.get("l") or info.get("execQty") or trade["amount"]
    price = info.get("price") or info.get("L") or info.get("execPrice") or trade["price"]
    return LeadFill(
        lead=lead,
        trade_id=str(trade["id"]),
        order_id=str(trade.get("order") or ""),
        symbol=trade["symbol"],
        side=Side(trade["side"]),
        qty=dec(qty),
        price=dec(price),
        ts_ms=int(trade.get("timestamp") or 0),
        received_ns=time.perf_counter_ns(),
        client_order_id=info.get("c") or info.get("clientOrderId"),
        source=source,
    )


def install_hook(exchange: Any, on_message: StreamEvent) -> None:
    """Have `on_message` see every decoded websocket message before ccxt processes it.

    Must be called before the first watch call: ccxt binds `handle_message` when it creates the
    websocket client."""
    original = exchange.handle_message

    def handle_message(client: Any, message: Any) -> Any:
        if isinstance(message, dict):
            on_message(message)
        return original(client, message)

    exchange.handle_message = handle_message


def last_pong_ms(exchange: Any) -> int | None:
    """The latest pong any of the exchange's websocket clients received (ccxt pings on keepAlive)."""
    pongs = [c.lastPong for c in getattr(exchange, "clients", {}).values() if getattr(c, "lastPong", None)]
    return max(pongs) if pongs else None


def is_connected(exchange: Any) -> bool:
    return any(
        getattr(c, "isConnected", False) and not c.closed() for c in getattr(exchange, "clients", {}).values()
    )
