"""The journal's record of each follower's fees and funding (schema v5), as read from its account's
income or transaction log and attributed to the leads it follows (bot.core.pnl). Fills need no
table of their own: they are the journal's filled orders (`Journal.filled_orders`), replayed at
start. Mixed into bot.journal.store.Journal; the SQL stays in bot/journal."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from bot.core.types import Side
from bot.journal.writer import JournalBase


@dataclass(frozen=True, slots=True)
class IncomeRow:
    follower: str
    ref: str  # the venue's id of the row (unique per follower)
    lead: str  # the lead it is attributed to ("" when copybot never traded the symbol)
    kind: str  # "fee" (paid) | "funding" (received)
    symbol: str
    amount: Decimal
    ts_ms: int


@dataclass(frozen=True, slots=True)
class FollowerFill:
    """One follower order with a fill, with its intent's lead, side and reference (lead) price."""

    client_order_id: str
    lead: str
    symbol: str
    side: Side
    ref_price: Decimal
    avg_price: Decimal
    filled_qty: Decimal
    ts_ms: int  # when the order's row last changed (this host's clock)


def _ms(updated: object) -> int:
    """orders.updated_ts in ms; journals of early versions kept seconds (as settled_fill_from_row)."""
    ts = Decimal(str(updated))
    return int(ts * 1000) if ts < 10**11 else int(ts)


class PnlRecords(JournalBase):
    def follower_fills(self, follower: str) -> list[FollowerFill]:
        """The follower's filled orders in the order they were journaled."""
        rows = self._read(
            "SELECT o.client_order_id, i.lead, i.symbol, i.side, i.ref_price, o.avg_price, o.filled_qty,"
            " o.updated_ts FROM orders o JOIN intents i ON i.client_order_id = o.client_order_id"
            " WHERE o.follower = ? AND o.avg_price IS NOT NULL AND CAST(o.filled_qty AS REAL) > 0"
            " ORDER BY o.updated_ts, o.rowid",
            (follower,),
        )
        return [FollowerFill(cid, lead, sym, Side(side), Decimal(ref), Decimal(avg), Decimal(qty), _ms(ts))
                for cid, lead, sym, side, ref, avg, qty, ts in rows]  # fmt: skip

    def record_income(self, rows: list[IncomeRow]) -> None:
        """One venue row may be split among leads: one stored row per (ref, lead); a row read
        twice is ignored."""
        for r in rows:
            self._put(
                "INSERT OR IGNORE INTO follower_income(follower, ref, lead, kind, symbol, amount, ts_ms)"
                " VALUES (?,?,?,?,?,?,?)",
                (r.follower, r.ref, r.lead, r.kind, r.symbol, str(r.amount), r.ts_ms),
            )

    def income_rows(self, follower: str | None = None) -> list[IncomeRow]:
        rows = self._read(
            "SELECT follower, ref, lead, kind, symbol, amount, ts_ms FROM follower_income"
            " WHERE (? IS NULL OR follower = ?) ORDER BY ts_ms, ref, lead",
            (follower, follower),
        )
        return [IncomeRow(f, ref, lead, kind, sym, Decimal(amount), ts)
                for f, ref, lead, kind, sym, amount, ts in rows]  # fmt: skip
