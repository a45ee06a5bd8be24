"""Take-profit / stop-loss orders on Bybit V5 (linear). ccxt 4.5.90 sends a `stopLossPrice` /
`takeProfitPrice` market order to `/v5/order/create` as a conditional order: `triggerPrice`,
`triggerDirection` (a sell stop-loss falls to it: 2, a sell take-profit rises to it: 1) and
`reduceOnly`; `triggerBy=MarkPrice` is passed through. It is one order throughout (Untriggered,
then Triggered and the fill, or Deactivated), found by its orderLinkId like any order.

ccxt would use `/v5/position/trading-stop` (the position's own TP/SL) only when both prices come
in one call or with `tradingStopEndpoint`; copybot places two conditional orders instead, each
under its own orderLinkId, so a restart finds each one by id as on Binance."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt

from bot.core.protect import ProtectStatus
from bot.venues.bybit.history import fetch_by_link_id

_OPEN = frozenset({"Untriggered"})
_GONE = frozenset({"Deactivated", "Rejected", "Cancelled"})


def params(kind: str, trigger_price: Decimal, client_order_id: str) -> dict[str, Any]:
    key = "takeProfitPrice" if kind == "tp" else "stopLossPrice"
    return {key: str(trigger_price), "reduceOnly": True, "triggerBy": "MarkPrice",
            "orderLinkId": client_order_id, "positionIdx": 0}  # fmt: skip


async def status(client: Any, symbol: str, client_order_id: str) -> ProtectStatus:
    try:
        order = await fetch_by_link_id(client, symbol, client_order_id)
    except ccxt.OrderNotFound:
        return ProtectStatus.GONE
    info = order.get("info") or {}
    state = str(info.get("orderStatus") or "")
    if state in _OPEN:
        return ProtectStatus.OPEN
    filled = Decimal(str(info.get("cumExecQty") or "0"))
    if state in _GONE and filled == 0:
        return ProtectStatus.GONE
    return ProtectStatus.TRIGGERED


async def cancel(client: Any, symbol: str, client_order_id: str) -> bool:
    try:
        await client.cancel_order(None, symbol, {"orderLinkId": client_order_id})
    except ccxt.OrderNotFound:
        return False
    return True
