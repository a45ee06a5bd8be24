"""Decoding of account snapshots (positions, balances) at the adapter boundary, from the venue's
raw strings where it has them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bot.core.rounding import dec
from bot.core.types import ZERO


@dataclass(frozen=True, slots=True)
class PositionSnapshot:
    symbol: str
    qty: Decimal  # signed contracts
    entry_price: Decimal
    update_ms: int
    leverage: int | None = None


def positions_from_ccxt(rows: list[dict[str, Any]]) -> dict[str, PositionSnapshot]:
    out: dict[str, PositionSnapshot] = {}
    for row in rows:
        info = row.get("info") or {}
        if "positionAmt" in info:
            qty = dec(info["positionAmt"])
        else:
            contracts = dec(row.get("contracts") or 0)
            qty = -contracts if row.get("side") == "short" else contracts
        entry = info.get("entryPrice") or row.get("entryPrice") or 0
        lev = info.get("leverage") or row.get("leverage")
        out[row["symbol"]] = PositionSnapshot(
            symbol=row["symbol"],
            qty=qty,
            entry_price=dec(entry),
            update_ms=int(info.get("updateTime") or row.get("timestamp") or 0),
            leverage=int(float(lev)) if lev not in (None, "") else None,
        )
    return out


def equity_from_balance(balance: dict[str, Any], settle: str = "USDT") -> Decimal:
    """Account equity in the settlement currency: wallet balance plus unrealized PnL."""
    info = balance.get("info") or {}
    for asset in info.get("assets", []) if isinstance(info, dict) else []:
        if asset.get("asset") == settle and asset.get("marginBalance") is not None:
            return dec(asset["marginBalance"])
    if isinstance(info, dict) and info.get("totalMarginBalance") is not None:
        return dec(info["totalMarginBalance"])
    total = (balance.get("total") or {}).get(settle)
    return dec(total) if total is not None else ZERO
