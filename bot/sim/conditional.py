"""Conditional (trigger) orders: stop-market and take-profit-market orders that rest outside the
book until the mark or last price crosses their trigger, then execute as market orders.

Binance USD-M keeps them in its Algo Service since 2025-12-09 (`POST /fapi/v1/algoOrder`, status
NEW -> TRIGGERING -> TRIGGERED -> FINISHED, or CANCELED / REJECTED / EXPIRED; docs/sim.md,
"Conditional orders"). Bybit V5 takes them on `/v5/order/create` with `triggerPrice` and
`triggerDirection`. One record serves both personalities: `order_id` is reserved at creation and
becomes the id of the market order placed when it triggers (Bybit shows one order throughout;
Binance reports it as the algo order's `actualOrderId`).

Trigger rules (Binance "New Order" / "New Algo Order": STOP_MARKET BUY when price >= stopPrice,
SELL when price <= stopPrice; TAKE_PROFIT_MARKET the other way round; Bybit triggerDirection 1
"rises to", 2 "falls to"): `direction` is "up" or "down", the price is the mark (`MARK_PRICE`,
Bybit `MarkPrice`) or the last trade (`CONTRACT_PRICE`, Bybit `LastPrice`). Pure and synchronous,
like the matching engine that drives it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from bot.sim.accounts import Account, Order, SimError
from bot.sim.book import Book
from bot.sim.config import MarketConfig

ZERO = Decimal(0)
OPEN = frozenset({"NEW"})


@dataclass(slots=True)
class Conditional:
    algo_id: int
    order_id: int  # reserved: the triggered market order's id
    client_id: str
    symbol: str
    side: str  # BUY | SELL
    type: str  # STOP_MARKET | TAKE_PROFIT_MARKET
    qty: Decimal  # 0 with close_position
    trigger_price: Decimal
    direction: str  # "up": price >= trigger; "down": price <= trigger
    working_type: str  # MARK_PRICE | CONTRACT_PRICE
    reduce_only: bool
    close_position: bool
    price_protect: bool
    time_ms: int
    venue: str = "binance"
    status: str = "NEW"  # NEW, TRIGGERING, TRIGGERED, FINISHED, CANCELED, REJECTED, EXPIRED
    update_time_ms: int = 0
    trigger_time_ms: int = 0
    order: Order | None = None  # the market order placed when it triggered
    reject_reason: str = ""
    # Bybit shows a conditional order as an order from the start (orderStatus Untriggered, then
    # Triggered, or Deactivated): this engine order stands for it and becomes the market order.
    placeholder: Order | None = None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def is_buy(self) -> bool:
        return self.side == "BUY"


def binance_direction(otype: str, side: str) -> str:
    """STOP_MARKET: BUY when the price rises to the trigger, SELL when it falls to it;
    TAKE_PROFIT_MARKET the other way round."""
    stop = otype == "STOP_MARKET"
    return "up" if (side == "BUY") == stop else "down"


def crossed(direction: str, price: Decimal, trigger: Decimal) -> bool:
    return price >= trigger if direction == "up" else price <= trigger


class EngineHooks(Protocol):
    """What the trigger pass needs of the matching engine (bot.sim.matching)."""

    @property
    def books(self) -> Mapping[str, Book]: ...
    def now_ms(self) -> int: ...
    def emit_algo(self, account: Account, cond: Conditional) -> None: ...
    def market(self, symbol: str | None) -> MarketConfig: ...
    def check_client_id(self, account: Account, client_id: str, param: str = ...) -> None: ...
    def check_margin(
        self, account: Account, cfg: MarketConfig, buy: bool, qty: Decimal, price: Decimal, reduce_only: bool
    ) -> None: ...
    def emit_order(self, account: Account, order: Order, exec_type: str) -> None: ...
    def execute_triggered(self, account: Account, order: Order) -> None: ...


class Conditionals:
    """Every conditional order of the engine, by symbol, with the trigger pass."""

    def __init__(self, engine: EngineHooks) -> None:
        self.engine = engine
        self.waiting: dict[str, dict[int, tuple[Account, Conditional]]] = {s: {} for s in engine.books}
        self.by_account: dict[str, dict[int, Conditional]] = {}  # api_key -> algo_id -> record
        self.by_order: dict[int, Conditional] = {}  # reserved order id -> record
        self._next_algo_id = 3_000
        self._running = False
        self._again: set[str] = set()

    def next_algo_id(self) -> int:
        self._next_algo_id += 1
        return self._next_algo_id

    def price_for(self, cond: Conditional) -> Decimal:
        book = self.engine.books[cond.symbol]
        return book.fair if cond.working_type == "MARK_PRICE" else book.last_price

    def add(self, account: Account, cond: Conditional) -> None:
        """Rest a validated conditional order. One whose trigger is already crossed is refused, as
        both venues do (Binance -2021 "Order would immediately trigger."; Bybit 110092/110093)."""
        if crossed(cond.direction, self.price_for(cond), cond.trigger_price):
            raise SimError(-2021, "Order would immediately trigger.")
        self.by_account.setdefault(account.api_key, {})[cond.algo_id] = cond
        self.by_order[cond.order_id] = cond
        self.waiting[cond.symbol][cond.algo_id] = (account, cond)
        self.engine.emit_algo(account, cond)

    def of(self, account: Account) -> dict[int, Conditional]:
        return self.by_account.get(account.api_key, {})

    def cancel(self, account: Account, cond: Conditional, status: str = "CANCELED") -> None:
        self.waiting[cond.symbol].pop(cond.algo_id, None)
        self._set(account, cond, status)

    def _set(self, account: Account, cond: Conditional, status: str, reason: str = "") -> None:
        now = self.engine.now_ms()
        cond.status, cond.update_time_ms = status, now
        if reason:
            cond.reject_reason = reason
        held = cond.placeholder
        if held is not None and cond.order is None:  # not yet the market order it becomes
            held.status = "TRIGGERED" if status == "TRIGGERING" else "DEACTIVATED"
            held.update_time_ms = now
            if held.status == "DEACTIVATED":
                account.open_orders.pop(held.order_id, None)
        self.engine.emit_algo(account, cond)

    def check(self, symbol: str) -> None:
        """Trigger what the current mark / last price has crossed. A triggered order's fills move
        the last price and may trigger others: those run in the same pass, never recursively."""
        self._again.add(symbol)
        if self._running:
            return
        self._running = True
        try:
            while self._again:
                sym = self._again.pop()
                for account, cond in list(self.waiting[sym].values()):
                    if cond.is_open and crossed(cond.direction, self.price_for(cond), cond.trigger_price):
                        self._trigger(account, cond)
        finally:
            self._running = False

    def _trigger(self, account: Account, cond: Conditional) -> None:
        engine = self.engine
        self.waiting[cond.symbol].pop(cond.algo_id, None)
        cond.trigger_time_ms = engine.now_ms()
        self._set(account, cond, "TRIGGERING")
        pos = account.position(cond.symbol).amt
        reducing = pos != 0 and (pos > 0) != cond.is_buy
        if (cond.close_position or cond.reduce_only) and not reducing:
            # Nothing left to reduce (closed meanwhile, or on the other side): a reduce-only order
            # never opens or flips, so the triggered order cannot be placed.
            self._set(account, cond, "EXPIRED", "ReduceOnly Order is rejected.")
            return
        qty = abs(pos) if cond.close_position else cond.qty
        try:
            order = triggered_order(engine, account, cond, qty)
        except SimError as exc:
            self._set(account, cond, "REJECTED", exc.msg)
            return
        cond.order = order
        self._set(account, cond, "TRIGGERED")
        engine.execute_triggered(account, order)
        self._set(account, cond, "FINISHED")


def triggered_order(engine: EngineHooks, account: Account, cond: Conditional, qty: Decimal) -> Order:
    """The market order a triggered conditional order sends to the book, under the same rules
    as any order: client id unique among open orders, reduce-only capped to the position, the
    margin checked now (the algo service checks none before the trigger)."""
    cfg = engine.market(cond.symbol)
    engine.check_client_id(account, cond.client_id)
    reduce_only = cond.reduce_only or cond.close_position
    if reduce_only:
        qty = min(qty, abs(account.position(cfg.symbol).amt))
    elif qty * engine.books[cfg.symbol].fair < cfg.min_notional:
        raise SimError(-4164, f"Order's notional must be no smaller than {cfg.min_notional}.")
    buy = cond.side == "BUY"
    engine.check_margin(account, cfg, buy, qty, engine.books[cfg.symbol].fair, reduce_only)
    now_ns = time.time_ns()
    now = now_ns // 1_000_000
    held = cond.placeholder
    if held is not None:  # Bybit: the order that stood for it becomes the market order
        account.open_orders.pop(held.order_id, None)
        held.type, held.status, held.orig_qty, held.reduce_only = "MARKET", "NEW", qty, reduce_only
        held.update_time_ms, held.engine_time_ns = now, now_ns
        engine.emit_order(account, held, "NEW")
        return held
    order = Order(
        order_id=cond.order_id,
        client_order_id=cond.client_id,
        symbol=cfg.symbol,
        side=cond.side,
        type="MARKET",
        time_in_force="GTC",
        orig_qty=qty,
        price=ZERO,
        reduce_only=reduce_only,
        time_ms=now,
        recv_time_ns=now_ns,
        update_time_ms=now,
        engine_time_ns=now_ns,
        orig_type=cond.type,
        stop_price=cond.trigger_price,
        working_type=cond.working_type,
        close_position=cond.close_position,
    )
    account.orders[order.order_id] = order
    account.by_client_id[order.client_order_id] = order
    engine.emit_order(account, order, "NEW")
    return order
