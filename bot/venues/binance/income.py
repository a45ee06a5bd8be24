"""Binance USD-M's income history (`GET /fapi/v1/income`, weight 30): the fees and funding of an
account, decoded from the raw strings.

Binance ("Get Income History"): `income` is the wallet's change (negative: paid); COMMISSION rows
name the trade (`tradeId`) but not the order, FUNDING_FEE rows neither; `tranId` is unique per
income type; at most 1,000 rows a page, oldest first from `startTime`; without a time only the last
7 days."""

from __future__ import annotations

from typing import Any

from bot.core.rounding import dec
from bot.core.types import IncomeKind, IncomeRecord

PAGE = 1000
_KINDS = {"COMMISSION": IncomeKind.FEE, "FUNDING_FEE": IncomeKind.FUNDING}


def decode(client: Any, rows: list[dict[str, Any]]) -> list[IncomeRecord]:
    out: list[IncomeRecord] = []
    for row in rows:
        kind = _KINDS.get(str(row.get("incomeType")))
        if kind is None or not row.get("symbol"):
            continue
        amount = dec(row["income"])
        out.append(
            IncomeRecord(
                ref=f"{row['incomeType']}:{row.get('tranId')}",
                kind=kind,
                symbol=client.safe_symbol(row["symbol"], None, None, "swap"),
                amount=-amount if kind is IncomeKind.FEE else amount,
                ts_ms=int(row["time"]),
            )
        )
    return out


async def fetch(client: Any, since_ms: int) -> list[IncomeRecord]:
    """Every fee and funding row from `since_ms` on (inclusive), page by page."""
    out: list[IncomeRecord] = []
    start = since_ms
    while True:
        rows = await client.fapiPrivateGetIncome({"startTime": start, "limit": PAGE})
        out += decode(client, rows)
        if len(rows) < PAGE:
            return out
        newest = max(int(r["time"]) for r in rows)
        if newest <= start:  # a page of one millisecond: step past it rather than loop
            newest = start + 1
        start = newest
