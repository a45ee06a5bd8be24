"""Bybit's unified-account transaction log (`GET /v5/account/transaction-log`): the fees and
funding of an account, decoded from the raw strings.

Bybit ("Get Transaction Log"): a TRADE row's `fee` is positive when paid and names the order
(`orderLinkId`); a SETTLEMENT row's `funding` is positive when received; `id` is unique; a request
spans at most 7 days (only startTime: the 24 hours after it), 50 rows a page with a cursor."""

from __future__ import annotations

import time
from typing import Any

from bot.core.rounding import dec
from bot.core.types import IncomeKind, IncomeRecord

PAGE = 50
_SPAN_MS = 7 * 86_400_000 - 1


def decode(client: Any, rows: list[dict[str, Any]]) -> list[IncomeRecord]:
    out: list[IncomeRecord] = []
    for row in rows:
        kind = row.get("type")
        if kind == "TRADE" and row.get("fee") not in (None, "", "0"):
            amount, income = dec(row["fee"]), IncomeKind.FEE
        elif kind == "SETTLEMENT" and row.get("funding") not in (None, "", "0"):
            amount, income = dec(row["funding"]), IncomeKind.FUNDING
        else:
            continue
        if not row.get("symbol"):
            continue
        out.append(
            IncomeRecord(
                ref=str(row["id"]),
                kind=income,
                symbol=client.safe_symbol(row["symbol"], None, None, "swap"),
                amount=amount,
                ts_ms=int(row["transactionTime"]),
                client_order_id=row.get("orderLinkId") or None,
            )
        )
    return out


async def fetch(client: Any, since_ms: int, now_ms: int | None = None) -> list[IncomeRecord]:
    """Every fee and funding row from `since_ms` on, in windows of 7 days, page by page."""
    end_all = now_ms if now_ms is not None else int(time.time() * 1000) + 60_000
    out: list[IncomeRecord] = []
    start = since_ms
    while start <= end_all:
        end = min(start + _SPAN_MS, end_all)
        cursor = ""
        while True:
            params: dict[str, Any] = {"accountType": "UNIFIED", "category": "linear",
                                      "startTime": start, "endTime": end, "limit": PAGE}  # fmt: skip
            if cursor:
                params["cursor"] = cursor
            result = (await client.privateGetV5AccountTransactionLog(params)).get("result") or {}
            out += decode(client, result.get("list") or [])
            cursor = result.get("nextPageCursor") or ""
            if not cursor:
                break
        start = end + 1
    return out
