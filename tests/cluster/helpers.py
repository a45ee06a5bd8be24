"""Small builders shared by the cluster tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal

from bot.core.types import LeadFill, Side

KEYS_PREFIX = "t"


def lead_fill(
    trade_id: str, *, lead: str = "alpha", symbol: str = "BTC/USDT:USDT", ts_ms: int = 1_000
) -> LeadFill:
    return LeadFill(
        lead=lead,
        trade_id=trade_id,
        order_id=f"o{trade_id}",
        symbol=symbol,
        side=Side.BUY,
        qty=Decimal("0.123"),
        price=Decimal("65000.10"),
        ts_ms=ts_ms,
    )


async def eventually(
    check: Callable[[], Awaitable[bool]], *, timeout_s: float = 10.0, every_s: float = 0.02
) -> float:
    """Poll `check` until true; the seconds it took. Generous timeouts: a loaded 2-core machine."""
    start = time.monotonic()
    while not await check():
        if time.monotonic() - start > timeout_s:
            raise AssertionError(f"not true within {timeout_s} s")
        await asyncio.sleep(every_s)
    return time.monotonic() - start
