"""Take-profit / stop-loss orders on Binance USD-M. Since 2025-12-09 conditional orders live in
the Algo Service (`/fapi/v1/algoOrder`; `/fapi/v1/order` refuses them with -4120, change log of
2025-11-06). ccxt 4.5.90 routes there by itself: `create_order(..., params={"stopLossPrice": p})`
becomes a STOP_MARKET algo order (`takeProfitPrice`: TAKE_PROFIT_MARKET) with `clientAlgoId`, and
`fetch_order` / `cancel_order` with `{"trigger": True}` read and cancel it by that id.

`workingType=MARK_PRICE`: the trigger follows the mark price, not the last trade, so a wick on
thin trading does not close a copied position the mark never reached."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import ccxt

from bot.core.protect import ProtectStatus

_TRIGGERED = frozenset({"TRIGGERING", "TRIGGERED", "FINISHED"})
_OPEN = frozenset({"NEW"})


def params(kind: str, trigger_price: Decimal, client_order_id: str) -> dict[str, Any]:
    key = "takeProfitPrice" if kind == "tp" else "stopLossPrice"
    return {key: str(trigger_price), "reduceOnly": True, "workingType": "MARK_PRICE",
            "clientOrderId": client_order_id}  # fmt: skip


async def status(client: Any, symbol: str, client_order_id: str) -> ProtectStatus:
    try:
        order = await client.fetch_order(None, symbol, {"trigger": True, "clientOrderId": client_order_id})
    except ccxt.OrderNotFound:
        return ProtectStatus.GONE
    algo = str((order.get("info") or {}).get("algoStatus") or "")
    if algo in _OPEN:
        return ProtectStatus.OPEN
    return ProtectStatus.TRIGGERED if algo in _TRIGGERED else ProtectStatus.GONE


async def cancel(client: Any, symbol: str, client_order_id: str) -> bool:
    try:
        await client.cancel_order(None, symbol, {"trigger": True, "clientOrderId": client_order_id})
    except ccxt.OrderNotFound:
        return False  # already triggered, cancelled or never placed
    return True
