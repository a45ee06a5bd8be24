"""The lead's user data stream on Binance USD-M: ORDER_TRADE_UPDATE frames with execution type TRADE
become `LeadFill`s, decoded from the raw message strings (exact decimals) inside ccxt's own message
handler; `listenKeyExpired` (which ccxt ignores) ends the session so the feed reconnects with a new
key."""

from __future__ import annotations

import time
from typing import Any

from bot.core.rounding import dec
from bot.core.types import LeadFill, Side
from bot.venues.base import StreamDecoder, StreamEvent, StreamExpired


def fill_from_update(lead: str, exchange: Any, message: dict[str, Any]) -> LeadFill | None:
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


def decoder(lead: str, exchange: Any) -> StreamDecoder:
    def decode(message: dict[str, Any]) -> StreamEvent:
        event = message.get("e")
        if event == "ORDER_TRADE_UPDATE":
            return fill_from_update(lead, exchange, message)
        if event == "listenKeyExpired":
            return StreamExpired("listenKeyExpired received: reconnecting with a new key")
        return None

    return decode
