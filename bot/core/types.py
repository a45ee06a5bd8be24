"""Domain types shared by every component.

Everything past the exchange adapter works with these frozen objects: money and quantities are
`Decimal`, sides and states are enums, and no component touches a raw ccxt or websocket dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

from bot.core.errors import ErrorKind

ZERO = Decimal(0)


@dataclass(frozen=True, repr=False)
class Credentials:
    """An account's API credentials; never printed."""

    api_key: str
    secret: str
    password: str | None = None

    def __repr__(self) -> str:
        password = "None" if self.password is None else "***"
        return f"Credentials(api_key=***, secret=***, password={password})"

    __str__ = __repr__


class Side(StrEnum):
    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is Side.BUY else -1

    @staticmethod
    def of(signed_qty: Decimal) -> Side:
        return Side.BUY if signed_qty > 0 else Side.SELL


class TradingState(StrEnum):
    """Per follower and global. REDUCE_ONLY lets exits through; HALTED lets nothing through."""

    ACTIVE = "ACTIVE"
    REDUCE_ONLY = "REDUCE_ONLY"
    HALTED = "HALTED"


class OrderStatus(StrEnum):
    """What became of one follower order; the journal stores the value."""

    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    EXPIRED = "expired"  # IOC / market remainder expired, filled_qty may be > 0
    CANCELED = "canceled"
    REJECTED = "rejected"
    NOT_PLACED = "not_placed"  # looked up after a restart: the venue never had it
    # looked up after a restart, older than the venue's lookup reach and not found: nobody can tell
    # whether it was placed; the follower's positions are read from the venue instead
    UNRESOLVED = "unresolved"
    UNKNOWN = "unknown"  # ambiguous and not settled yet

    @property
    def final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.EXPIRED,
        OrderStatus.CANCELED,
        OrderStatus.REJECTED,
        OrderStatus.NOT_PLACED,
        OrderStatus.UNRESOLVED,
    }
)


class Verdict(StrEnum):
    APPROVED = "approved"
    CLIPPED = "clipped"
    DENIED = "denied"


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One market of one venue, decoded once from ccxt's market structure."""

    symbol: str  # ccxt unified symbol, e.g. "BTC/USDT:USDT"
    venue_symbol: str  # the venue's id, e.g. "BTCUSDT"
    base: str
    quote: str
    settle: str
    step: Decimal  # amount step (lot size) in contracts
    min_qty: Decimal
    max_qty: Decimal | None
    tick: Decimal
    min_notional: Decimal  # in quote currency; Binance exempts reduce-only orders
    contract_size: Decimal = Decimal(1)  # base units per contract
    # ccxt's published taker rate for the market: the follower's fee estimate between account reads
    # (bot.core.ledger); the account's own tier may be lower, and each read corrects the estimate.
    taker_fee: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class PositionSnapshot:
    """One position as the venue reports it, decoded by the venue's adapter."""

    symbol: str
    qty: Decimal  # signed contracts
    entry_price: Decimal
    update_ms: int
    leverage: int | None = None


@dataclass(frozen=True, slots=True)
class LeadFill:
    """One execution in a lead's account, deduplicated by (lead, trade_id)."""

    lead: str
    trade_id: str
    order_id: str
    symbol: str  # ccxt unified symbol
    side: Side
    qty: Decimal  # > 0, in the lead venue's contracts
    price: Decimal
    ts_ms: int  # exchange trade time
    received_ns: int = 0  # time.perf_counter_ns() when the process first saw it
    client_order_id: str | None = None
    source: str = "ws"  # "ws" | "rest" (backfill)

    @property
    def signed_qty(self) -> Decimal:
        return self.qty if self.side is Side.BUY else -self.qty


@dataclass(frozen=True, slots=True)
class Leg:
    """One order the planner wants, before the risk gate."""

    side: Side
    qty: Decimal  # > 0, rounded to the market step
    reduce_only: bool


@dataclass(frozen=True, slots=True)
class Intent:
    """A leg bound to a follower, a trigger and a deterministic client order id."""

    lead: str
    follower: str
    symbol: str
    trigger: str  # the lead trade id (or reconcile id) that caused this plan
    leg: int
    side: Side
    qty: Decimal
    reduce_only: bool
    ref_price: Decimal  # the lead's fill price (or mark) the order is measured against
    target: Decimal  # follower target position after this plan
    current: Decimal  # follower position (confirmed + in flight) when planned
    client_order_id: str


class ReasonCode(StrEnum):
    """Why the risk gate or the planner did not copy a lead fill in full: a metric label and what
    code branches on. The text beside it (Decision.reason) is for people."""

    MAX_ORDER_NOTIONAL = "max_order_notional"
    MAX_POSITION_NOTIONAL = "max_position_notional"
    MAX_TOTAL_EXPOSURE = "max_total_exposure"
    MAX_LEVERAGE = "max_leverage"
    SYMBOL_NOT_ALLOWED = "symbol_not_allowed"
    SYMBOL_DENIED = "symbol_denied"
    NOT_LISTED = "not_listed"  # the follower's venue does not list the symbol
    REDUCE_ONLY = "reduce_only"
    HALTED = "halted"
    KILL_SWITCH = "kill_switch"
    NO_MARK = "no_mark"
    NO_PRICE = "no_price"
    PORTFOLIO_STOP = "portfolio_stop"  # closing everything after the stop
    NOT_JOINED = "not_joined"  # a lead position held when the follower joined (bot.core.join_leave)
    LEAVING = "leaving"  # the follower is leaving: it closes, or copies exits only


class Reason(NamedTuple):
    code: ReasonCode
    text: str


@dataclass(frozen=True, slots=True)
class Decision:
    intent: Intent
    verdict: Verdict
    qty: Decimal  # what may be sent (0 when denied)
    reason: str | None = None  # for people; always set for CLIPPED and DENIED
    code: ReasonCode | None = None  # for metrics and control flow; set with `reason`


class IncomeKind(StrEnum):
    FEE = "fee"  # a trading fee: amount paid (positive: paid, negative: a rebate)
    FUNDING = "funding"  # a funding payment: amount received (positive: received, negative: paid)


@dataclass(frozen=True, slots=True)
class IncomeRecord:
    """One row of an account's income / transaction log, decoded at the adapter."""

    ref: str  # unique per account and row (the venue's ids), to drop a row read twice
    kind: IncomeKind
    symbol: str  # unified
    amount: Decimal  # fee: paid; funding: received
    ts_ms: int  # venue clock
    client_order_id: str | None = None  # the order behind a fee, when the venue names it


@dataclass(frozen=True, slots=True)
class OrderOutcome:
    """What became of one follower order at the venue."""

    client_order_id: str
    status: OrderStatus
    filled_qty: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    order_id: str | None = None
    error: ErrorKind | None = None  # from the adapter taxonomy, when rejected or unknown
    reason: str | None = None
    exchange_ts_ms: int | None = None
