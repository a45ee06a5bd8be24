"""The journal's SQLite schema, its migrations, and the conversion of stored rows back into domain
values.

The schema version lives in SQLite's `user_version`. Money and quantities are stored as TEXT
decimals, so every converter here turns them back into `Decimal`, never float.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bot.core.errors import ErrorKind
from bot.core.trading_state import StateCode
from bot.core.types import Intent, LeadFill, OrderOutcome, OrderStatus, Side, TradingState

_V1 = """
CREATE TABLE lead_fills(lead TEXT NOT NULL, trade_id TEXT NOT NULL, order_id TEXT, symbol TEXT NOT NULL,
  side TEXT NOT NULL, qty TEXT NOT NULL, price TEXT NOT NULL, ts_ms INTEGER NOT NULL, received_ns INTEGER,
  client_order_id TEXT, source TEXT, status TEXT NOT NULL, note TEXT, recorded_ts INTEGER NOT NULL,
  PRIMARY KEY (lead, trade_id));
CREATE INDEX lead_fills_by_time ON lead_fills(lead, ts_ms);
CREATE TABLE cursors(lead TEXT NOT NULL, symbol TEXT NOT NULL, last_ts_ms INTEGER NOT NULL,
  last_trade_id TEXT NOT NULL, updated_ts INTEGER NOT NULL, PRIMARY KEY (lead, symbol));
CREATE TABLE intents(client_order_id TEXT PRIMARY KEY, lead TEXT NOT NULL, follower TEXT NOT NULL,
  symbol TEXT NOT NULL, trigger TEXT NOT NULL, leg INTEGER NOT NULL, side TEXT NOT NULL, qty TEXT NOT NULL,
  reduce_only INTEGER NOT NULL, ref_price TEXT NOT NULL, target TEXT NOT NULL, current TEXT NOT NULL,
  created_ts INTEGER NOT NULL);
CREATE INDEX intents_by_follower ON intents(follower);
CREATE TABLE decisions(id INTEGER PRIMARY KEY, client_order_id TEXT, lead TEXT NOT NULL,
  follower TEXT NOT NULL, trigger TEXT NOT NULL, symbol TEXT NOT NULL, verdict TEXT NOT NULL, qty TEXT,
  reason TEXT, ts INTEGER NOT NULL);
CREATE INDEX decisions_by_order ON decisions(client_order_id);
CREATE INDEX decisions_by_trigger ON decisions(lead, follower, trigger);
CREATE TABLE orders(client_order_id TEXT PRIMARY KEY, follower TEXT NOT NULL, order_id TEXT,
  status TEXT NOT NULL, filled_qty TEXT NOT NULL, avg_price TEXT, error TEXT, reason TEXT, sent_ns INTEGER,
  acked_ns INTEGER, exchange_ts_ms INTEGER, updated_ts INTEGER NOT NULL);
CREATE TABLE copy_ratios(lead TEXT NOT NULL, follower TEXT NOT NULL, symbol TEXT NOT NULL,
  ratio TEXT NOT NULL, updated_ts INTEGER NOT NULL, PRIMARY KEY (lead, follower, symbol));
CREATE TABLE follower_state(follower TEXT PRIMARY KEY, state TEXT NOT NULL, reason TEXT,
  updated_ts INTEGER NOT NULL);
CREATE TABLE aum_history(ts INTEGER NOT NULL, lead TEXT NOT NULL, aum TEXT NOT NULL,
  followers INTEGER NOT NULL, equity_json TEXT NOT NULL);
CREATE INDEX aum_by_lead ON aum_history(lead, ts);
CREATE TABLE events(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, kind TEXT NOT NULL, subject TEXT,
  detail TEXT);
CREATE INDEX events_by_kind ON events(kind, ts);
"""

# v2: a trading state carries its code (bot.core.trading_state.StateCode). Rows written before it
# get the code their reason text implies, once, here; nothing reads reason texts afterwards.
_V2 = """
ALTER TABLE follower_state ADD COLUMN code TEXT NOT NULL DEFAULT 'operator';
UPDATE follower_state SET code = CASE
  WHEN reason LIKE 'authentication failed%' THEN 'auth_failed'
  WHEN reason LIKE 'start-up failed%' THEN 'startup_failed'
  WHEN reason LIKE 'key refused%' THEN 'key_refused'
  WHEN reason LIKE 'portfolio_stop%' THEN 'portfolio_stop'
  WHEN reason LIKE 'daily_loss%' THEN 'daily_loss'
  WHEN reason LIKE 'max_drawdown%' THEN 'max_drawdown'
  ELSE 'operator' END;
"""

# v3: followers joining and leaving while the daemon runs (bot/journal/membership.py): who changed
# what and when, the runtime changes that outlive a restart, and the lead positions a follower
# does not copy (joined with new_only, or refused by the join price guard).
_V3 = """
CREATE TABLE membership_changes(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, follower TEXT NOT NULL,
  action TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT);
CREATE INDEX membership_by_follower ON membership_changes(follower, ts);
CREATE TABLE follower_overrides(follower TEXT PRIMARY KEY, action TEXT NOT NULL, config TEXT,
  file_hash TEXT NOT NULL, on_leave TEXT, actor TEXT NOT NULL, updated_ts INTEGER NOT NULL);
CREATE TABLE follow_holds(follower TEXT NOT NULL, lead TEXT NOT NULL, symbol TEXT NOT NULL,
  reason TEXT NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY (follower, lead, symbol));
"""

# v4: trades the account's owner makes by hand in a follower's account (bot/journal/manual.py): the
# owner's quantity per symbol with the point the account's orders were read up to, and each
# manual order seen with how much of it was applied.
_V4 = """
CREATE TABLE manual_quantities(follower TEXT NOT NULL, symbol TEXT NOT NULL, qty TEXT NOT NULL,
  cursor_ms INTEGER NOT NULL, updated_ts INTEGER NOT NULL, PRIMARY KEY (follower, symbol));
CREATE TABLE manual_trades(follower TEXT NOT NULL, order_id TEXT NOT NULL, symbol TEXT NOT NULL,
  client_order_id TEXT, side TEXT NOT NULL, filled TEXT NOT NULL, policy TEXT NOT NULL,
  ts_ms INTEGER NOT NULL, recorded_ts INTEGER NOT NULL, PRIMARY KEY (follower, order_id));
"""

# v5: take-profit / stop-loss orders resting at the venue for a copied position
# (bot/journal/protect.py): the client id each one was placed under, so a restart finds it.
_V5 = """
CREATE TABLE protect_orders(follower TEXT NOT NULL, symbol TEXT NOT NULL, kind TEXT NOT NULL,
  client_id TEXT NOT NULL, seq INTEGER NOT NULL, side TEXT NOT NULL, qty TEXT NOT NULL,
  trigger_price TEXT NOT NULL, active INTEGER NOT NULL, ts INTEGER NOT NULL,
  PRIMARY KEY (follower, symbol, kind));
"""

# v6: AUM flows (bot/journal/flows.py): each change of a lead's AUM that is not mark to market (a
# follower joining or leaving, its allocation changed, the cap clipping it, a halt or a resume),
# with the amount it moved the lead's AUM by at that moment (docs/aum.md, "Flows and performance").
_V6 = """
CREATE TABLE aum_flows(id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, lead TEXT NOT NULL,
  follower TEXT NOT NULL, kind TEXT NOT NULL, amount TEXT NOT NULL, actor TEXT NOT NULL, detail TEXT);
CREATE INDEX aum_flows_by_lead ON aum_flows(lead, ts);
"""

# v7: each follower's fees and funding, read from its account's income / transaction log and
# attributed to the leads it follows (bot/journal/pnl.py, docs/pnl.md).
_V7 = """
CREATE TABLE follower_income(follower TEXT NOT NULL, ref TEXT NOT NULL, lead TEXT NOT NULL,
  kind TEXT NOT NULL, symbol TEXT NOT NULL, amount TEXT NOT NULL, ts_ms INTEGER NOT NULL,
  PRIMARY KEY (follower, ref, lead));
CREATE INDEX follower_income_by_time ON follower_income(follower, ts_ms);
"""

# MIGRATIONS[n] takes the schema from user_version n to n + 1. Append, never edit.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7)


class JournalError(Exception):
    pass


@dataclass(frozen=True, slots=True)
class FollowerStateRow:
    state: TradingState
    reason: str | None
    updated_ts: int
    code: StateCode = StateCode.OPERATOR


@dataclass(frozen=True, slots=True)
class AumPoint:
    ts: int
    lead: str
    aum: Decimal
    followers: int
    detail: dict[str, Decimal]  # per follower: its contribution (equity allocated)


@dataclass(frozen=True, slots=True)
class SettledFill:
    """A follower order with a fill, beside its intent's reference (lead fill) price."""

    lead: str
    follower: str
    symbol: str
    side: Side
    ref_price: Decimal
    avg_price: Decimal
    filled_qty: Decimal
    ts: int  # ms: when the order's row last changed


@dataclass(frozen=True, slots=True)
class CopyLeg:
    """One follower order planned for a lead fill: the risk gate's verdict and the venue's answer
    (None until the order has an outcome)."""

    client_order_id: str
    verdict: str  # approved, clipped, denied
    qty: Decimal | None
    reason: str | None
    status: str | None  # the order's status (bot.core.types.OrderStatus value)
    filled_qty: Decimal | None
    avg_price: Decimal | None
    error: str | None  # the error kind (bot.core.errors.ErrorKind value)
    venue_reason: str | None  # the venue's words, redacted


@dataclass(frozen=True, slots=True)
class CopyDisposition:
    """What became of one lead fill for one follower (bot.live.work.Disposition: "<kind>: <text>")
    and, when orders were planned, each of them."""

    follower: str
    disposition: str
    legs: tuple[CopyLeg, ...]


@dataclass(frozen=True, slots=True)
class CopiedFill:
    """A lead fill with each follower's outcome: a line of the dashboard's timeline."""

    fill: LeadFill
    status: str  # accepted, in_snapshot, ...
    recorded_ts: int
    followers: tuple[CopyDisposition, ...]


@dataclass(frozen=True, slots=True)
class JournalEvent:
    ts: int
    kind: str
    subject: str | None
    detail: Any


def migrate(conn: sqlite3.Connection, path: str) -> int:
    """Bring the schema up to date; returns the version. Each step is one transaction."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise JournalError(
            f"{path}: journal schema version {version} is newer than this copybot knows "
            f"({len(MIGRATIONS)}); upgrade copybot or use another journal path"
        )
    for target in range(version + 1, len(MIGRATIONS) + 1):
        try:
            conn.executescript(f"BEGIN; {MIGRATIONS[target - 1]}; PRAGMA user_version = {target}; COMMIT;")
        except sqlite3.Error as exc:
            conn.rollback()
            raise JournalError(f"{path}: migration to schema version {target} failed: {exc}") from exc
    return len(MIGRATIONS)


# Row converters: each reads the columns in the order of the SELECT that Journal's matching read
# method spells out; change both together.


def lead_fill_from_row(r: Sequence[Any]) -> LeadFill:
    """(lead, trade_id, order_id, symbol, side, qty, price, ts_ms, received_ns, client_order_id, source)"""
    return LeadFill(lead=r[0], trade_id=r[1], order_id=r[2] or "", symbol=r[3], side=Side(r[4]),
                    qty=Decimal(r[5]), price=Decimal(r[6]), ts_ms=r[7], received_ns=r[8] or 0,
                    client_order_id=r[9], source=r[10] or "ws")  # fmt: skip


def outcome_from_row(r: Sequence[Any]) -> OrderOutcome:
    """(client_order_id, status, filled_qty, avg_price, order_id, error, reason, exchange_ts_ms)"""
    return OrderOutcome(client_order_id=r[0], status=OrderStatus(r[1]), filled_qty=Decimal(r[2]),
                        avg_price=None if r[3] is None else Decimal(r[3]), order_id=r[4],
                        error=_error_kind(r[5]),
                        reason=r[6], exchange_ts_ms=r[7])  # fmt: skip


def _error_kind(value: str | None) -> ErrorKind | None:
    """Journals written before error kinds were an enum may hold other text: kept as unknown kind."""
    if value is None:
        return None
    try:
        return ErrorKind(value)
    except ValueError:
        return ErrorKind.FATAL


def intent_from_row(r: Sequence[Any]) -> Intent:
    """(lead, follower, symbol, trigger, leg, side, qty, reduce_only, ref_price, target, current,
    client_order_id)"""
    return Intent(lead=r[0], follower=r[1], symbol=r[2], trigger=r[3], leg=r[4], side=Side(r[5]),
                  qty=Decimal(r[6]), reduce_only=bool(r[7]), ref_price=Decimal(r[8]), target=Decimal(r[9]),
                  current=Decimal(r[10]), client_order_id=r[11])  # fmt: skip


def aum_point_from_row(r: Sequence[Any]) -> AumPoint:
    """(ts, lead, aum, followers, equity_json)"""
    ts, lead, aum, n, equity = r
    return AumPoint(ts, lead, Decimal(aum), n, {k: Decimal(v) for k, v in json.loads(equity).items()})


def settled_fill_from_row(r: Sequence[Any]) -> SettledFill:
    """(lead, follower, symbol, side, ref_price, avg_price, filled_qty, updated_ts)"""
    lead, follower, symbol, side, ref, avg, qty, updated = r
    ts = Decimal(str(updated))
    ts_ms = int(ts * 1000) if ts < 10**11 else int(ts)  # journals of early versions kept seconds
    return SettledFill(lead, follower, symbol, Side(side), Decimal(ref), Decimal(avg), Decimal(qty), ts_ms)


def copy_leg_from_row(r: Sequence[Any]) -> CopyLeg:
    """(client_order_id, verdict, qty, reason, status, filled_qty, avg_price, error, order reason)"""
    cid, verdict, qty, reason, status, filled, avg, error, venue_reason = r
    return CopyLeg(cid, verdict, None if qty is None else Decimal(qty), reason, status,
                   None if filled is None else Decimal(filled), None if avg is None else Decimal(avg),
                   error, venue_reason)  # fmt: skip


def event_from_row(r: Sequence[Any]) -> JournalEvent:
    """(ts, kind, subject, detail)"""
    ts, kind, subject, detail = r
    return JournalEvent(ts, kind, subject, _decode(detail))


def _decode(detail: str | None) -> Any:
    if detail is None:
        return None
    try:
        return json.loads(detail)
    except ValueError:
        return detail
