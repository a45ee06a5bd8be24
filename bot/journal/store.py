"""Journal: what the bot saw and did, in SQLite (WAL).

Writes never block the event loop: `record_*` only puts a statement on a queue, and a single writer
thread (bot.journal.writer) commits whatever has queued up (at most BATCH_ROWS statements) in one
transaction. Use
`flush()` / `aflush()` to wait until everything queued so far is committed. Reads run at once on a
separate connection and see committed data only, except `has_lead_fill`, which also sees fills still
in the queue (it deduplicates the feed).

Money and quantities are stored as TEXT decimals; timestamps are integer milliseconds since the
epoch (`*_ts`, `ts`), except the monotonic `*_ns` latency stamps. Free-text fields (reasons, errors,
event details) pass through the log redactor, so no secret lands on disk.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from bot.core.redaction import redact_text
from bot.core.trading_state import StateCode
from bot.core.types import FINAL_STATUSES, Decision, Intent, LeadFill, OrderOutcome, TradingState
from bot.journal.flows import FlowRecords
from bot.journal.manual import ManualRecords
from bot.journal.membership import MembershipRecords
from bot.journal.pnl import PnlRecords
from bot.journal.protect import ProtectRecords
from bot.journal.schema import (
    AumPoint,
    CopiedFill,
    CopyDisposition,
    CopyLeg,
    FollowerStateRow,
    JournalError,
    JournalEvent,
    SettledFill,
    aum_point_from_row,
    copy_leg_from_row,
    event_from_row,
    intent_from_row,
    lead_fill_from_row,
    outcome_from_row,
    settled_fill_from_row,
)
from bot.journal.writer import BATCH_ROWS, JournalClosed

__all__ = ["BATCH_ROWS", "Journal", "JournalClosed", "JournalError"]

# The order statuses a later answer may not undo, as an SQL list (values of an enum: no injection).
_FINAL_SQL = "(" + ", ".join(f"'{s.value}'" for s in sorted(FINAL_STATUSES)) + ")"

# Both statements are built from constants only (the final statuses are enum values).
_UPSERT_ORDER = (
    "INSERT INTO orders(client_order_id, follower, order_id, status, filled_qty, avg_price, error,"  # noqa: S608
    " reason, sent_ns, acked_ns, exchange_ts_ms, updated_ts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT(client_order_id) DO UPDATE SET order_id = COALESCE(excluded.order_id, order_id),"
    " status = excluded.status, filled_qty = excluded.filled_qty,"
    " avg_price = COALESCE(excluded.avg_price, avg_price), error = excluded.error,"
    " reason = excluded.reason, sent_ns = COALESCE(excluded.sent_ns, sent_ns),"
    " acked_ns = COALESCE(excluded.acked_ns, acked_ns),"
    " exchange_ts_ms = COALESCE(excluded.exchange_ts_ms, exchange_ts_ms),"
    " updated_ts = excluded.updated_ts"
    f" WHERE status NOT IN {_FINAL_SQL} OR excluded.status IN {_FINAL_SQL}"
)
_UNSETTLED = (
    "SELECT i.lead, i.follower, i.symbol, i.trigger, i.leg, i.side, i.qty, i.reduce_only,"  # noqa: S608
    " i.ref_price, i.target, i.current, i.client_order_id FROM intents i"
    " WHERE (? IS NULL OR i.follower = ?)"
    " AND (SELECT d.verdict FROM decisions d WHERE d.client_order_id = i.client_order_id"
    "      ORDER BY d.id DESC LIMIT 1) IN ('approved', 'clipped')"
    " AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.client_order_id = i.client_order_id"
    f"      AND o.status IN {_FINAL_SQL})"
    " ORDER BY i.created_ts, i.client_order_id"
)
_DECISION_COLUMNS = "client_order_id, lead, follower, trigger, symbol, verdict, qty, reason, ts"
_INSERT_DECISION = f"INSERT INTO decisions({_DECISION_COLUMNS}) VALUES "  # noqa: S608 - constant


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _text(value: str | None) -> str | None:
    return None if value is None else redact_text(value)


def _planned_ids(disposition: str) -> list[str]:
    """The client ids of a "planned: <id>,<id> (target clipped: ...)" disposition (bot.live.follower)."""
    if not disposition.startswith("planned: "):
        return []
    return [c for c in disposition.removeprefix("planned: ").split(" ", 1)[0].split(",") if c]


class Journal(MembershipRecords, ManualRecords, ProtectRecords, FlowRecords, PnlRecords):
    # ------------------------------------------------------------ lead fills and cursors

    def record_lead_fill(self, fill: LeadFill, status: str, note: str | None = None) -> None:
        """First sighting stores the fill; later calls only update its status and note."""
        self._put(
            "INSERT INTO lead_fills(lead, trade_id, order_id, symbol, side, qty, price, ts_ms, received_ns,"
            " client_order_id, source, status, note, recorded_ts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(lead, trade_id) DO UPDATE SET status = excluded.status, note = excluded.note",
            (fill.lead, fill.trade_id, fill.order_id, fill.symbol, fill.side.value, str(fill.qty),
             str(fill.price), fill.ts_ms, fill.received_ns, fill.client_order_id, fill.source, status,
             _text(note), _now_ms()),
            fill_key=(fill.lead, fill.trade_id),
        )  # fmt: skip

    def has_lead_fill(self, lead: str, trade_id: str) -> bool:
        with self._pending_lock:
            if (lead, trade_id) in self._pending_fills:
                return True
        return bool(self._read("SELECT 1 FROM lead_fills WHERE lead = ? AND trade_id = ?", (lead, trade_id)))

    def lead_fill_status(self, lead: str, trade_id: str) -> tuple[str, str | None] | None:
        rows = self._read(
            "SELECT status, note FROM lead_fills WHERE lead = ? AND trade_id = ?", (lead, trade_id)
        )
        return (rows[0][0], rows[0][1]) if rows else None

    def lead_fills(self, lead: str, since: int | None = None) -> list[LeadFill]:
        """A lead's fills in trade time order, optionally from `since` (ms) on."""
        rows = self._read(
            "SELECT lead, trade_id, order_id, symbol, side, qty, price, ts_ms, received_ns, client_order_id,"
            " source FROM lead_fills WHERE lead = ? AND ts_ms >= ? ORDER BY ts_ms, trade_id",
            (lead, since if since is not None else -1),
        )
        return [lead_fill_from_row(r) for r in rows]

    def copy_timeline(self, followers_of: Mapping[str, Sequence[str]], limit: int = 50) -> list[CopiedFill]:
        """The most recently recorded lead fills, newest first, each with what became of it for every
        follower (`followers_of`: lead -> its followers; the decisions index starts with them).
        A disposition "planned: <client ids>" brings the decision and the outcome of each order."""
        rows = self._read(
            "SELECT lead, trade_id, order_id, symbol, side, qty, price, ts_ms, received_ns, client_order_id,"
            " source, status, recorded_ts FROM lead_fills ORDER BY rowid DESC LIMIT ?",
            (limit,),
        )
        by_fill: dict[tuple[str, str], list[tuple[str, str]]] = {}
        for lead in {r[0] for r in rows}:
            followers = list(followers_of.get(lead, ()))
            triggers = [r[1] for r in rows if r[0] == lead]
            if not followers:
                continue
            marks_f, marks_t = ",".join("?" * len(followers)), ",".join("?" * len(triggers))
            found = self._read(
                "SELECT follower, trigger, reason FROM decisions WHERE lead = ?"  # noqa: S608 - placeholders
                f" AND follower IN ({marks_f}) AND trigger IN ({marks_t}) AND client_order_id IS NULL"
                " ORDER BY id",
                (lead, *followers, *triggers),
            )
            for follower, trigger, reason in found:
                by_fill.setdefault((lead, trigger), []).append((follower, reason or ""))
        cids = {
            c for dispositions in by_fill.values() for _, text in dispositions for c in _planned_ids(text)
        }
        legs = self._legs(sorted(cids))
        out = []
        for r in rows:
            dispositions = tuple(
                CopyDisposition(follower, text, tuple(legs[c] for c in _planned_ids(text) if c in legs))
                for follower, text in by_fill.get((r[0], r[1]), [])
            )
            out.append(CopiedFill(lead_fill_from_row(r[:11]), r[11], r[12], dispositions))
        return out

    def _legs(self, cids: Sequence[str]) -> dict[str, CopyLeg]:
        """The latest decision of each order and its outcome, by client id."""
        if not cids:
            return {}
        marks = ",".join("?" * len(cids))
        rows = self._read(
            "SELECT d.client_order_id, d.verdict, d.qty, d.reason, o.status, o.filled_qty, o.avg_price,"  # noqa: S608
            f" o.error, o.reason FROM decisions d LEFT JOIN orders o ON o.client_order_id = d.client_order_id"
            f" WHERE d.client_order_id IN ({marks}) ORDER BY d.id",
            tuple(cids),
        )
        return {r[0]: copy_leg_from_row(r) for r in rows}

    def set_cursor(self, lead: str, symbol: str, ts_ms: int, trade_id: str) -> None:
        """The backfill resumes from here. Never moves back, whatever order calls arrive in."""
        self._put(
            "INSERT INTO cursors(lead, symbol, last_ts_ms, last_trade_id, updated_ts) VALUES (?,?,?,?,?)"
            " ON CONFLICT(lead, symbol) DO UPDATE SET last_ts_ms = excluded.last_ts_ms,"
            " last_trade_id = excluded.last_trade_id, updated_ts = excluded.updated_ts"
            " WHERE excluded.last_ts_ms >= cursors.last_ts_ms",
            (lead, symbol, ts_ms, trade_id, _now_ms()),
        )

    def cursors(self, lead: str) -> dict[str, tuple[int, str]]:
        rows = self._read("SELECT symbol, last_ts_ms, last_trade_id FROM cursors WHERE lead = ?", (lead,))
        return {symbol: (ts, trade_id) for symbol, ts, trade_id in rows}

    # ------------------------------------------------------------ intents, decisions, orders

    def record_intent(self, intent: Intent) -> None:
        """The first plan for a client order id wins: a replan of the same trigger collides."""
        i = intent
        self._put(
            "INSERT OR IGNORE INTO intents(client_order_id, lead, follower, symbol, trigger, leg, side, qty,"
            " reduce_only, ref_price, target, current, created_ts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (i.client_order_id, i.lead, i.follower, i.symbol, i.trigger, i.leg, i.side.value, str(i.qty),
             int(i.reduce_only), str(i.ref_price), str(i.target), str(i.current), _now_ms()),
        )  # fmt: skip

    def record_decision(self, decision: Decision) -> None:
        i = decision.intent
        self._put(
            _INSERT_DECISION + "(?,?,?,?,?,?,?,?,?)",
            (i.client_order_id, i.lead, i.follower, i.trigger, i.symbol, decision.verdict.value,
             str(decision.qty), _text(decision.reason), _now_ms()),
        )  # fmt: skip

    def record_deferral(self, lead: str, follower: str, trigger: str, symbol: str, reason: str) -> None:
        """A lead fill that produced no order for this follower (below minimum, denied before
        planning, ...): recorded so that nothing is dropped silently."""
        self._put(
            _INSERT_DECISION + "(NULL,?,?,?,?,'deferred',NULL,?,?)",
            (lead, follower, trigger, symbol, _text(reason), _now_ms()),
        )

    def record_outcome(
        self, outcome: OrderOutcome, follower: str, sent_ns: int | None = None, acked_ns: int | None = None
    ) -> None:
        """Upsert an order's state. A final status is never replaced by a non-final one, so a late
        'unknown' or 'new' cannot undo a fill."""
        o = outcome
        self._put(
            _UPSERT_ORDER,
            (o.client_order_id, follower, o.order_id, o.status.value, str(o.filled_qty),
             None if o.avg_price is None else str(o.avg_price), o.error.value if o.error else None,
             _text(o.reason), sent_ns, acked_ns, o.exchange_ts_ms, _now_ms()),
        )  # fmt: skip

    def outcome(self, client_order_id: str) -> OrderOutcome | None:
        rows = self._read(
            "SELECT client_order_id, status, filled_qty, avg_price, order_id, error, reason, exchange_ts_ms"
            " FROM orders WHERE client_order_id = ?",
            (client_order_id,),
        )
        if not rows:
            return None
        return outcome_from_row(rows[0])

    def unsettled_intents(self, follower: str | None = None) -> list[Intent]:
        """Intents whose latest decision let them through but whose order has no final outcome:
        on restart, each must be looked up by client id before anything is placed again."""
        rows = self._read(
            _UNSETTLED,
            (follower, follower),
        )
        return [intent_from_row(r) for r in rows]

    def intent_created_ms(self, client_order_id: str) -> int | None:
        """When the intent was first planned (this host's clock, ms), if it is journaled."""
        rows = self._read("SELECT created_ts FROM intents WHERE client_order_id = ?", (client_order_id,))
        return int(rows[0][0]) if rows else None

    def decisions_for(self, lead: str, follower: str, trigger: str) -> list[tuple[str, str | None]]:
        """(verdict, reason) of every decision and deferral of one trigger, oldest first."""
        rows = self._read(
            "SELECT verdict, reason FROM decisions WHERE lead = ? AND follower = ? AND trigger = ?"
            " ORDER BY id",
            (lead, follower, trigger),
        )
        return [(v, r) for v, r in rows]

    def filled_orders(self) -> list[SettledFill]:
        """Every follower order with a fill, beside the reference price of its intent (the lead
        fill's price): what realized slippage is computed from."""
        rows = self._read(
            "SELECT i.lead, o.follower, i.symbol, i.side, i.ref_price, o.avg_price, o.filled_qty,"
            " o.updated_ts FROM orders o JOIN intents i ON i.client_order_id = o.client_order_id"
            " WHERE o.avg_price IS NOT NULL AND CAST(o.filled_qty AS REAL) > 0 ORDER BY o.updated_ts"
        )
        return [settled_fill_from_row(r) for r in rows]

    # ------------------------------------------------------------ ratios and states

    def save_ratio(self, lead: str, follower: str, symbol: str, ratio: Decimal) -> None:
        self._put(
            "INSERT INTO copy_ratios(lead, follower, symbol, ratio, updated_ts) VALUES (?,?,?,?,?)"
            " ON CONFLICT(lead, follower, symbol) DO UPDATE SET ratio = excluded.ratio,"
            " updated_ts = excluded.updated_ts",
            (lead, follower, symbol, str(ratio), _now_ms()),
        )

    def load_ratios(self, follower: str) -> dict[tuple[str, str], Decimal]:
        """A follower's copy ratios by (lead, symbol)."""
        rows = self._read("SELECT lead, symbol, ratio FROM copy_ratios WHERE follower = ?", (follower,))
        return {(lead, symbol): Decimal(ratio) for lead, symbol, ratio in rows}

    def set_follower_state(
        self,
        follower: str,
        state: TradingState,
        reason: str | None = None,
        code: StateCode = StateCode.OPERATOR,
    ) -> None:
        self._put(
            "INSERT INTO follower_state(follower, state, reason, updated_ts, code) VALUES (?,?,?,?,?)"
            " ON CONFLICT(follower) DO UPDATE SET state = excluded.state, reason = excluded.reason,"
            " updated_ts = excluded.updated_ts, code = excluded.code",
            (follower, TradingState(state).value, _text(reason), _now_ms(), StateCode(code).value),
        )

    def follower_states(self) -> dict[str, FollowerStateRow]:
        rows = self._read("SELECT follower, state, reason, updated_ts, code FROM follower_state")
        return {
            f: FollowerStateRow(TradingState(s), reason, ts, StateCode(code))
            for f, s, reason, ts, code in rows
        }

    # ------------------------------------------------------------ AUM and events

    def record_aum(
        self, ts: int, lead: str, aum: Decimal, followers: int, detail: Mapping[str, Decimal | str]
    ) -> None:
        """`ts` in ms; `detail` maps each follower to its contribution."""
        equity = json.dumps({k: str(v) for k, v in detail.items()}, sort_keys=True)
        self._put(
            "INSERT INTO aum_history(ts, lead, aum, followers, equity_json) VALUES (?,?,?,?,?)",
            (ts, lead, str(aum), followers, equity),
        )

    def aum_history(self, lead: str | None = None, since: int | None = None) -> list[AumPoint]:
        rows = self._read(
            "SELECT ts, lead, aum, followers, equity_json FROM aum_history"
            " WHERE (? IS NULL OR lead = ?) AND ts >= ? ORDER BY ts, lead",
            (lead, lead, since if since is not None else -1),
        )
        return [aum_point_from_row(r) for r in rows]

    def record_event(
        self, kind: str, subject: str | None, detail: Mapping[str, Any] | str | None = None
    ) -> None:
        """Alerts, stops, state changes: anything an operator may want to see later."""
        text = detail if isinstance(detail, str) or detail is None else json.dumps(dict(detail), default=str)
        self._put(
            "INSERT INTO events(ts, kind, subject, detail) VALUES (?,?,?,?)",
            (_now_ms(), kind, subject, _text(text)),
        )

    def events(
        self, kind: str | None = None, since: int | None = None, limit: int = 100
    ) -> list[JournalEvent]:
        """Most recent first."""
        rows = self._read(
            "SELECT ts, kind, subject, detail FROM events WHERE (? IS NULL OR kind = ?) AND ts >= ?"
            " ORDER BY id DESC LIMIT ?",
            (kind, kind, since if since is not None else -1, limit),
        )
        return [event_from_row(r) for r in rows]

    def activity(self, since_ms: int, until_ms: int) -> list[tuple[str, str, str, int]]:
        """(lead, follower, what, count) of the orders (what = "order:<status>") and decisions
        (what = "decision:<verdict>", deferrals included) recorded in [since_ms, until_ms)."""
        rows = self._read(
            "SELECT i.lead, o.follower, 'order:' || o.status, COUNT(*) FROM orders o"
            " JOIN intents i ON i.client_order_id = o.client_order_id"
            " WHERE o.updated_ts >= ? AND o.updated_ts < ? GROUP BY 1, 2, 3"
            " UNION ALL SELECT lead, follower, 'decision:' || verdict, COUNT(*) FROM decisions"
            " WHERE ts >= ? AND ts < ? GROUP BY 1, 2, 3",
            (since_ms, until_ms, since_ms, until_ms),
        )
        return [(lead, follower, what, int(n)) for lead, follower, what, n in rows]

    def counts(self) -> dict[str, int]:
        """For the status endpoint: rows per table, unsettled intents, queued writes, write errors."""
        out = {
            table: int(self._read(f"SELECT COUNT(*) FROM {table}")[0][0])  # noqa: S608 - fixed names
            for table in ("lead_fills", "intents", "decisions", "orders", "aum_history", "events")
        }
        out["unsettled"] = len(self.unsettled_intents())
        out["queued"] = self._queue.qsize()
        out["write_errors"] = self.write_errors
        return out
