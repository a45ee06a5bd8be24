"""Accounts of the local exchange: wallet, one-way positions, orders and trades.

Pure and synchronous; the matching engine is the only writer. Positions are one-way (positionSide
BOTH): a fill against the position realizes PnL on the closed part and a flip opens the rest at the
fill price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

ZERO = Decimal(0)

# UNTRIGGERED: a Bybit conditional order waiting for its trigger (bot.sim.conditional)
OPEN_STATUSES = frozenset({"NEW", "PARTIALLY_FILLED", "UNTRIGGERED"})


class SimError(Exception):
    """A request the exchange rejects, with Binance's error code and HTTP status."""

    def __init__(
        self, code: int, msg: str, http_status: int = 400, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.http_status = http_status
        self.headers = headers


@dataclass(slots=True)
class Order:
    """An order's mutable life at the venue; the engine drives its status transitions."""

    order_id: int
    client_order_id: str
    symbol: str
    side: str  # "BUY" | "SELL"
    type: str  # "LIMIT" | "MARKET"
    time_in_force: str
    orig_qty: Decimal
    price: Decimal  # 0 for market orders
    reduce_only: bool
    time_ms: int
    recv_time_ns: int
    status: str = "NEW"
    executed_qty: Decimal = ZERO
    cum_quote: Decimal = ZERO
    update_time_ms: int = 0
    ack_time_ns: int = 0
    engine_time_ns: int = 0  # when the order reached the matching engine
    # a market order placed by a triggered conditional order (bot.sim.conditional): its type
    orig_type: str = ""  # STOP_MARKET | TAKE_PROFIT_MARKET ("" for a plain order)
    stop_price: Decimal = ZERO
    working_type: str = "CONTRACT_PRICE"
    close_position: bool = False
    trigger_direction: int = 0  # Bybit: 1 rises to the trigger, 2 falls to it

    @property
    def is_buy(self) -> bool:
        return self.side == "BUY"

    @property
    def remaining(self) -> Decimal:
        return self.orig_qty - self.executed_qty

    @property
    def avg_price(self) -> Decimal:
        return self.cum_quote / self.executed_qty if self.executed_qty else ZERO

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class Trade:
    trade_id: int
    order_id: int
    client_order_id: str
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    maker: bool
    realized_pnl: Decimal
    time_ms: int
    time_ns: int


@dataclass(frozen=True, slots=True)
class Funding:
    """One funding payment of one position: `amount` is what the wallet gained (negative: paid)."""

    funding_id: int
    symbol: str
    position_amt: Decimal  # signed, engine units, at the funding time
    mark: Decimal
    rate: Decimal
    amount: Decimal
    time_ms: int


@dataclass(slots=True)
class Position:
    amt: Decimal = ZERO  # signed base quantity
    entry_price: Decimal = ZERO
    update_time_ms: int = 0

    def apply(self, signed_qty: Decimal, price: Decimal) -> Decimal:
        """Apply a fill; returns the PnL realized by the part that closed the position."""
        realized = ZERO
        if self.amt == 0 or (self.amt > 0) == (signed_qty > 0):
            total = self.amt + signed_qty
            self.entry_price = (abs(self.amt) * self.entry_price + abs(signed_qty) * price) / abs(total)
            self.amt = total
            return realized
        closing = min(abs(signed_qty), abs(self.amt))
        direction = 1 if self.amt > 0 else -1
        realized = (price - self.entry_price) * closing * direction
        self.amt += signed_qty
        if self.amt == 0:
            self.entry_price = ZERO
        elif (self.amt > 0) != (direction > 0):  # flipped: the rest opened at this price
            self.entry_price = price
        return realized

    def unrealized(self, mark: Decimal) -> Decimal:
        return (mark - self.entry_price) * self.amt if self.amt else ZERO


@dataclass(slots=True)
class Account:
    api_key: str
    secret: str
    name: str
    wallet: Decimal
    asset: str = "USDT"
    withdrawals_enabled: bool = False
    revoked: bool = False
    venue: str = "binance"  # the protocol personality whose keys these are: "binance" | "bybit"
    update_time_ms: int = 0
    positions: dict[str, Position] = field(default_factory=dict)
    leverage: dict[str, int] = field(default_factory=dict)
    orders: dict[int, Order] = field(default_factory=dict)  # every order ever placed, by id
    by_client_id: dict[str, Order] = field(default_factory=dict)  # the newest order per client id
    open_orders: dict[int, Order] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    fundings: list[Funding] = field(default_factory=list)

    def position(self, symbol: str) -> Position:
        pos = self.positions.get(symbol)
        if pos is None:
            pos = self.positions[symbol] = Position()
        return pos

    def leverage_of(self, symbol: str) -> int:
        return self.leverage.get(symbol, 20)

    def initial_margin(self, marks: dict[str, Decimal]) -> Decimal:
        """Margin held by positions and by open orders that could add exposure."""
        total = ZERO
        for symbol, pos in self.positions.items():
            if pos.amt:
                total += abs(pos.amt) * marks[symbol] / self.leverage_of(symbol)
        for order in self.open_orders.values():
            if not order.reduce_only:
                total += order.remaining * order.price / self.leverage_of(order.symbol)
        return total

    def unrealized(self, marks: dict[str, Decimal]) -> Decimal:
        return sum((p.unrealized(marks[s]) for s, p in self.positions.items() if p.amt), ZERO)

    def available(self, marks: dict[str, Decimal]) -> Decimal:
        return self.wallet + self.unrealized(marks) - self.initial_margin(marks)
