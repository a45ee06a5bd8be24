"""Reading an account's history on Bybit V5: an order by its client id (orderLinkId), and the
executions since a time, by cursor, at most 100 a page and 7 days a query."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import ccxt

from bot.core.types import LeadFill
from bot.venues.bybit.decode import fill_from_execution

PAGE_LIMIT = 100  # GET /v5/execution/list `limit` maximum
# GET /v5/order/history answers the last 7 days by default (and /v5/order/realtime only the latest
# 500 orders): an order older than that may not be found by its orderLinkId however it ended.
LOOKUP_REACH_MS = 7 * 24 * 3600 * 1000
WINDOW_MS = 7 * 24 * 3600 * 1000  # endTime - startTime may span at most 7 days
RETENTION_MS = 730 * 24 * 3600 * 1000  # executions are kept two years
# The cursor is the venue's time, "now" this host's: a venue clock running ahead by up to this much
# must not leave the latest fills (stamped after our "now") unread.
CLOCK_SLACK_MS = 60_000


async def fetch_by_link_id(client: Any, symbol: str, link_id: str) -> dict[str, Any]:
    """`/v5/order/realtime` by orderLinkId (open orders, and any status among the latest 500), then
    `/v5/order/history` (filled, cancelled, rejected). ccxt's fetch_open_order / fetch_closed_order
    send `orderId`, which Bybit prefers over orderLinkId, and fetch_order needs `acknowledged`."""
    params = {"orderLinkId": link_id}
    for fetch in (client.fetch_open_orders, client.fetch_canceled_and_closed_orders):
        orders = await fetch(symbol, None, None, params)
        matching = [o for o in orders if (o.get("info") or {}).get("orderLinkId") == link_id]
        if matching:
            found: dict[str, Any] = matching[0]
            return found
    raise ccxt.OrderNotFound(f"bybit: no order with orderLinkId {link_id} on {symbol}")


async def executions(
    rest: Any, lead: str, symbol: str, since_ms: int, limit: int
) -> AsyncIterator[list[LeadFill]]:
    """Position-moving executions (Trade, BustTrade, AdlTrade) from `since_ms` on, oldest first, in
    pages of at most `limit`. Bybit pages newest first within a query: each 7-day window is read
    in full, then handed on in time order, so a cursor saved after each fill only moves forward."""
    market = rest.market(symbol)
    limit = max(1, min(limit, PAGE_LIMIT))
    now = int(rest.milliseconds()) + CLOCK_SLACK_MS
    start = max(since_ms, now - RETENTION_MS)
    while start <= now:
        end = start + WINDOW_MS - 1
        rows: list[dict[str, Any]] = []
        cursor = ""
        while True:
            request: dict[str, Any] = {"category": "linear", "symbol": market["id"], "startTime": start,
                                       "endTime": end, "limit": PAGE_LIMIT}  # fmt: skip
            if cursor:
                request["cursor"] = cursor
            reply = await rest.privateGetV5ExecutionList(request)
            result = reply.get("result") or {}
            rows.extend(result.get("list") or [])
            cursor = result.get("nextPageCursor") or ""
            if not cursor or not result.get("list"):
                break
        rows.reverse()  # newest first as served: the stable sort keeps the venue's order within a ms
        fills = [f for row in rows if (f := fill_from_execution(lead, rest, row, "rest")) is not None]
        fills.sort(key=lambda f: f.ts_ms)
        for i in range(0, len(fills), limit):
            yield fills[i : i + limit]
        start = end + 1
