"""The daily summary: once a day at `alerts.daily_summary_utc` ("HH:MM", UTC), one message per
daemon through the notifications (bot/service/notify.py) with, for the 24 hours before, per lead its
fills and reconstructed realized PnL, and per follower its orders by outcome, denials, realized PnL
and realized slippage. Everything is read from the journal, so a restart loses nothing.

PnL is the price PnL of the positions closed in the window (bot.aum.stats.realized_pnl over every
fill up to the window's end), before fees and funding: a summary to read, not an account statement.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog

from bot.aum.slippage import realized_slippage_bps
from bot.aum.stats import lead_trades, realized_pnl
from bot.core.types import ZERO, Side

if TYPE_CHECKING:
    from bot.journal.store import Journal

log = structlog.get_logger(__name__)

DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class _Fill:
    symbol: str
    side: Side
    qty: Decimal
    price: Decimal
    ts_ms: int


def next_run(now: datetime, at: str) -> datetime:
    """The first `at` (HH:MM UTC) strictly after `now`."""
    hour, minute = (int(x) for x in at.split(":"))
    run = now.astimezone(UTC).replace(hour=hour, minute=minute, second=0, microsecond=0)
    return run if run > now else run + timedelta(days=1)


def _window_pnl(fills: list[_Fill], since_ms: int, until_ms: int) -> Decimal:
    fills = sorted((f for f in fills if f.ts_ms < until_ms), key=lambda f: f.ts_ms)
    return sum((pnl for f, pnl in zip(fills, realized_pnl(fills), strict=True) if f.ts_ms >= since_ms), ZERO)


def _money(value: Decimal) -> str:
    text = f"{value.quantize(Decimal('0.01')):,}"
    return "0.00" if text == "-0.00" else text


def summary(journal: Journal, leads: list[str], since_ms: int, until_ms: int) -> tuple[str, str]:
    """(title, body) of the summary for [since_ms, until_ms)."""
    lines: list[str] = []
    for lead in leads:
        trades = lead_trades(journal.lead_fills(lead))
        fills = [_Fill(t.symbol, t.side, t.qty, t.price, t.ts_ms) for t in trades]
        count = sum(1 for f in fills if since_ms <= f.ts_ms < until_ms)
        lines.append(
            f"lead {lead}: {count} fills, realized PnL {_money(_window_pnl(fills, since_ms, until_ms))}"
        )
    activity: dict[tuple[str, str], dict[str, int]] = {}
    for lead, follower, what, n in journal.activity(since_ms, until_ms):
        activity.setdefault((lead, follower), {})[what] = n
    settled = journal.filled_orders()
    for lead, follower in sorted(set(activity) | {(s.lead, s.follower) for s in settled}):
        mine = [s for s in settled if (s.lead, s.follower) == (lead, follower)]
        fills = [_Fill(s.symbol, s.side, s.filled_qty, s.avg_price, s.ts) for s in mine]
        slips = [
            realized_slippage_bps(s.side, s.ref_price, s.avg_price)
            for s in mine
            if since_ms <= s.ts < until_ms
        ]
        counts = activity.get((lead, follower), {})
        orders = {k.split(":", 1)[1]: v for k, v in sorted(counts.items()) if k.startswith("order:")}
        denied = counts.get("decision:denied", 0)
        slip = (
            f"mean slippage {sum(slips, ZERO) / len(slips):.1f} bps over {len(slips)} fills"
            if slips
            else "no fills"
        )
        lines.append(
            f"follower {follower} (of {lead}): {sum(orders.values())} orders "
            f"({', '.join(f'{n} {k}' for k, n in orders.items()) or 'none'}), {denied} denied, "
            f"realized PnL {_money(_window_pnl(fills, since_ms, until_ms))}, {slip}"
        )
    day = datetime.fromtimestamp(until_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M")
    return f"copybot daily summary to {day} UTC", "\n".join(lines or ["no leads"])


class DailySummary:
    """Sends `summary()` every day at `at`. `now` and `sleep` are injectable (tests)."""

    def __init__(
        self,
        journal: Journal,
        leads: list[str],
        at: str,
        send: Callable[[str, str], Awaitable[None]],
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.journal, self.leads, self.at, self._send = journal, leads, at, send
        self._now, self._sleep = now, sleep
        self.sent = 0

    async def run_once(self) -> None:
        """Wait for the next `at`, then send the summary of the 24 hours before it."""
        run = next_run(self._now(), self.at)
        await self._sleep(max(0.0, (run - self._now()).total_seconds()))
        until_ms = int(run.timestamp() * 1000)
        title, body = summary(self.journal, self.leads, until_ms - DAY_MS, until_ms)
        await self._send(title, body)
        self.sent += 1
        log.info("daily_summary_sent", until=run.isoformat())

    async def run(self) -> None:
        while True:
            await self.run_once()
