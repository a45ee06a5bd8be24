"""The journal's records of trades made by hand in a follower's account (schema v4):

- `manual_quantities`: the owner's manual quantity per (follower, symbol) and the time the
  account's orders were read up to (bot.core.manual; bot/live/manual_trades.py);
- `manual_trades`: each order without a copybot client id seen in a follower's account, how much
  of it was applied and under which policy, so a restart never applies it twice.

Each detection is also an event (`manual_trade`) with the follower, symbol, quantity, order and
client id and the policy applied. Mixed into bot.journal.store.Journal; the SQL stays here."""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal

from bot.core.manual import AccountOrder
from bot.journal.writer import JournalBase


@dataclass(frozen=True, slots=True)
class ManualQuantity:
    qty: Decimal
    cursor_ms: int


class ManualRecords(JournalBase):
    """Methods of Journal (bot.journal.store) for manual trades."""

    def save_manual_quantity(self, follower: str, symbol: str, qty: Decimal, cursor_ms: int) -> None:
        self._put(
            "INSERT OR REPLACE INTO manual_quantities(follower, symbol, qty, cursor_ms, updated_ts)"
            " VALUES (?,?,?,?,?)",
            (follower, symbol, str(qty), cursor_ms, time.time_ns() // 1_000_000),
        )

    def manual_quantities(self, follower: str) -> dict[str, ManualQuantity]:
        rows = self._read(
            "SELECT symbol, qty, cursor_ms FROM manual_quantities WHERE follower = ?", (follower,)
        )
        return {r[0]: ManualQuantity(Decimal(r[1]), int(r[2])) for r in rows}

    def record_manual_trade(self, follower: str, order: AccountOrder, policy: str) -> None:
        """The order as far as it is applied (its filled quantity so far)."""
        self._put(
            "INSERT OR REPLACE INTO manual_trades(follower, order_id, symbol, client_order_id, side,"
            " filled, policy, ts_ms, recorded_ts) VALUES (?,?,?,?,?,?,?,?,?)",
            (follower, order.order_id, order.symbol, order.client_order_id or None, order.side.value,
             str(order.filled), policy, order.ts_ms, time.time_ns() // 1_000_000),
        )  # fmt: skip

    def manual_trades_applied(self, follower: str) -> dict[str, Decimal]:
        """order id -> the filled quantity already applied, for one follower."""
        rows = self._read("SELECT order_id, filled FROM manual_trades WHERE follower = ?", (follower,))
        return {r[0]: Decimal(r[1]) for r in rows}
