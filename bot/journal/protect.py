"""The journal's record of take-profit / stop-loss orders resting at the venue for a copied
position (schema v5, `protect_orders`): one row per (follower, symbol, kind) with the client id and
sequence number of the order last placed, written before it is sent, so a restart looks that id up
instead of placing another (bot/live/protect.py). A row outlives its order (`active` 0): the next
order of that kind takes a higher sequence number, never an id the venue has seen.

Mixed into bot.journal.store.Journal; the SQL stays in bot/journal."""

from __future__ import annotations

import time
from decimal import Decimal

from bot.core.protect import ProtectOrder
from bot.core.types import Side
from bot.journal.writer import JournalBase


class ProtectRecords(JournalBase):
    """Methods of Journal (bot.journal.store) for TP/SL orders."""

    def save_protect(self, follower: str, symbol: str, order: ProtectOrder, *, active: bool = True) -> None:
        self._put(
            "INSERT OR REPLACE INTO protect_orders(follower, symbol, kind, client_id, seq, side, qty,"
            " trigger_price, active, ts) VALUES (?,?,?,?,?,?,?,?,?,?)",
            (follower, symbol, order.kind, order.client_order_id, order.seq, order.side.value,
             str(order.qty), str(order.trigger_price), int(active), time.time_ns() // 1_000_000),
        )  # fmt: skip

    def protects(self, follower: str) -> dict[str, dict[str, tuple[ProtectOrder, bool]]]:
        """symbol -> kind -> (the order last placed or about to be, whether it is still active)."""
        rows = self._read(
            "SELECT symbol, kind, client_id, seq, side, qty, trigger_price, active FROM protect_orders"
            " WHERE follower = ?",
            (follower,),
        )
        out: dict[str, dict[str, tuple[ProtectOrder, bool]]] = {}
        for symbol, kind, cid, seq, side, qty, price, active in rows:
            order = ProtectOrder(kind, Side(side), Decimal(qty), Decimal(price), cid, int(seq))
            out.setdefault(symbol, {})[kind] = (order, bool(active))
        return out
