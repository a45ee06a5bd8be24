"""The matching engine: validates orders as Binance does, executes them against the synthetic
books, keeps resting limit orders and crosses them when the price moves, and settles fills into
accounts. Pure and synchronous; every event a client would see on its user stream is handed to the
`publish` callback the moment it happens.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.sim.accounts import Account, Funding, Order, SimError, Trade
from bot.sim.book import Book
from bot.sim.conditional import Conditional, Conditionals
from bot.sim.config import MarketConfig, SimConfig
from bot.sim.wire import account_event, algo_event, funding_event, order_event

ZERO = Decimal(0)
_CLIENT_ID = re.compile(r"^[.A-Z:/a-z0-9_-]{1,36}$")
_TIFS = frozenset({"GTC", "IOC", "FOK", "GTX"})

Publish = Callable[[str, dict[str, Any]], None]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _decimal(params: dict[str, str], name: str) -> Decimal:
    raw = params.get(name)
    if raw is None or raw == "":
        raise SimError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise SimError(-1102, f"Parameter '{name}' was malformed: {raw!r}.") from None
    if not value.is_finite():
        raise SimError(-1102, f"Parameter '{name}' was malformed: {raw!r}.")
    return value


def _check_engine_recv_window(params: dict[str, str], now_ms: int) -> None:
    """Binance's matching engine rejects an order whose recvWindow has run out by the time it gets
    there (-5028), even though the gateway accepted it on arrival."""
    try:
        timestamp = int(params["timestamp"])
        recv_window = int(params.get("recvWindow") or "5000")
    except ValueError:
        return  # the gateway already rejected malformed values
    if now_ms - timestamp > recv_window:
        raise SimError(-5028, "Timestamp for this request is outside of the ME recvWindow.")


def _multiple(value: Decimal, step: Decimal) -> bool:
    return (value % step) == 0


class MatchingEngine:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.books: dict[str, Book] = {m.symbol: Book(m) for m in config.markets}
        self.accounts: dict[str, Account] = {}
        self.publish: Publish | None = None  # set by the user-stream server
        self.wants: Callable[[str], bool] = lambda api_key: False
        # open limit orders per symbol, in arrival order (price-time priority among users)
        self.resting: dict[str, dict[int, tuple[Account, Order]]] = {s: {} for s in self.books}
        self._next_order_id = 1_000_000
        self._next_trade_id = 1
        self._next_funding_id = 1
        # One rate for every market, settable at run time (admin `POST /_sim/funding`).
        self.funding_rate: Decimal = config.funding_rate
        self.funding_interval_ms = max(1, int(config.funding_interval_s * 1000))
        self.conditionals = Conditionals(self)  # stop / take-profit orders waiting for their trigger

    # -- accounts and markets -------------------------------------------------------------------

    def create_account(
        self,
        api_key: str,
        secret: str,
        balance: Decimal,
        name: str = "",
        withdrawals_enabled: bool = False,
        venue: str = "binance",
    ) -> Account:
        if not api_key or not secret:
            raise ValueError("an account needs a non-empty api_key and secret")
        if venue not in ("binance", "bybit"):
            raise ValueError(f"unknown venue {venue!r} (binance or bybit)")
        if api_key in self.accounts:
            raise ValueError(f"account with api_key {api_key[:6]}... already exists")
        account = Account(api_key, secret, name or api_key, Decimal(balance), update_time_ms=_now_ms())
        account.withdrawals_enabled = withdrawals_enabled
        account.venue = venue
        # Binance's default leverage is 20x, lower where the market does not allow it
        account.leverage = {m.symbol: min(20, m.max_leverage) for m in self.config.markets}
        self.accounts[api_key] = account
        return account

    def market(self, symbol: str | None) -> MarketConfig:
        book = self.books.get(symbol or "")
        if book is None:
            raise SimError(-1121, "Invalid symbol.")
        return book.cfg

    def marks(self) -> dict[str, Decimal]:
        return {symbol: book.fair for symbol, book in self.books.items()}

    def set_leverage(self, account: Account, symbol: str, leverage: int) -> dict[str, Any]:
        cfg = self.market(symbol)
        if not 1 <= leverage <= cfg.max_leverage:
            raise SimError(-4028, f"Leverage {leverage} is not valid")
        account.leverage[symbol] = leverage
        max_notional = str(self.max_notional(cfg, leverage))
        return {"leverage": leverage, "maxNotionalValue": max_notional, "symbol": symbol}

    @staticmethod
    def max_notional(cfg: MarketConfig, leverage: int) -> Decimal:
        return cfg.max_qty * cfg.price * cfg.max_leverage / leverage

    # -- orders ---------------------------------------------------------------------------------

    def place_order(self, account: Account, params: dict[str, str], recv_ns: int) -> Order:
        engine_ns = time.time_ns()
        if self.config.recv_window_at_engine and params.get("timestamp"):
            _check_engine_recv_window(params, engine_ns // 1_000_000)
        cfg = self.market(params.get("symbol"))
        book = self.books[cfg.symbol]
        side = params.get("side", "")
        if side not in ("BUY", "SELL"):
            raise SimError(-1117, "Invalid side.")
        otype = params.get("type", "")
        if otype not in ("LIMIT", "MARKET"):
            raise SimError(-1116, "Invalid orderType.")
        if params.get("positionSide", "BOTH") != "BOTH":
            raise SimError(-4061, "Order's position side does not match user's setting.")
        qty = _decimal(params, "quantity")
        if qty <= 0:
            raise SimError(-4003, "Quantity less than or equal to zero.")
        if not _multiple(qty, cfg.step):
            raise SimError(-1111, "Precision is over the maximum defined for this asset.")
        if qty < cfg.min_qty:
            raise SimError(-4004, "Quantity less than min quantity.")
        if qty > cfg.max_qty:
            raise SimError(-4005, "Quantity greater than max quantity.")
        price = ZERO
        tif = "GTC"
        if otype == "LIMIT":
            price = _decimal(params, "price")
            if price <= 0:
                raise SimError(-4013, "Price less than min price.")
            if not _multiple(price, cfg.tick):
                raise SimError(-1111, "Precision is over the maximum defined for this asset.")
            tif = params.get("timeInForce", "")
            if tif not in _TIFS:
                raise SimError(-1115, "Invalid timeInForce.")
        client_id = params.get("newClientOrderId") or f"sim_{self._next_order_id}"
        if not _CLIENT_ID.match(client_id):
            raise SimError(-1100, "Illegal characters found in parameter 'newClientOrderId'.")
        earlier = account.by_client_id.get(client_id)
        if earlier is not None and (earlier.is_open or self.config.client_id_rule == "ever"):
            raise SimError(-4116, "ClientOrderId is duplicated.")
        reduce_only = params.get("reduceOnly", "false").lower() == "true"
        buy = side == "BUY"
        pos = account.position(cfg.symbol)
        if reduce_only:
            if pos.amt == 0 or (pos.amt > 0) == buy:
                raise SimError(-2022, "ReduceOnly Order is rejected.")
            qty = min(qty, abs(pos.amt))
        ref_price = price if otype == "LIMIT" else book.fair
        if not reduce_only and qty * ref_price < cfg.min_notional:
            floor = cfg.min_notional
            msg = f"Order's notional must be no smaller than {floor} (unless you choose reduce only)."
            raise SimError(-4164, msg)
        self.check_margin(account, cfg, buy, qty, ref_price, reduce_only)

        now = _now_ms()
        order = Order(
            order_id=self._next_order_id,
            client_order_id=client_id,
            symbol=cfg.symbol,
            side=side,
            type=otype,
            time_in_force=tif,
            orig_qty=qty,
            price=price,
            reduce_only=reduce_only,
            time_ms=now,
            recv_time_ns=recv_ns,
            update_time_ms=now,
            engine_time_ns=engine_ns,
        )
        self._next_order_id += 1
        account.orders[order.order_id] = order
        account.by_client_id[client_id] = order  # the newest order with this id answers lookups
        self.emit_order(account, order, "NEW")
        self._execute(account, order, book)
        self.conditionals.check(cfg.symbol)  # its fills moved the last price
        return order

    # -- conditional orders (bot.sim.conditional) -----------------------------------------------

    @staticmethod
    def now_ms() -> int:
        return _now_ms()

    def reserve_order_id(self) -> int:
        self._next_order_id += 1
        return self._next_order_id - 1

    def check_client_id(self, account: Account, client_id: str, param: str = "newClientOrderId") -> None:
        if not _CLIENT_ID.match(client_id):
            raise SimError(-1100, f"Illegal characters found in parameter '{param}'.")
        earlier = account.by_client_id.get(client_id)
        if earlier is not None and (earlier.is_open or self.config.client_id_rule == "ever"):
            raise SimError(-4116, "ClientOrderId is duplicated.")

    def execute_triggered(self, account: Account, order: Order) -> None:
        self._execute(account, order, self.books[order.symbol])

    def emit_algo(self, account: Account, cond: Conditional) -> None:
        if self.publish is not None and self.wants(account.api_key):
            self.publish(account.api_key, algo_event(cond, cond.update_time_ms or cond.time_ms))

    def check_margin(
        self, account: Account, cfg: MarketConfig, buy: bool, qty: Decimal, price: Decimal, reduce_only: bool
    ) -> None:
        if reduce_only:
            return
        pos_amt = account.position(cfg.symbol).amt
        opposite = pos_amt < 0 if buy else pos_amt > 0
        increase = max(ZERO, qty - abs(pos_amt)) if opposite else qty
        if not increase:
            return
        needed = increase * price / account.leverage_of(cfg.symbol)
        if needed > account.available(self.marks()):
            raise SimError(-2019, "Margin is insufficient.")

    def _execute(self, account: Account, order: Order, book: Book) -> None:
        buy = order.is_buy
        if order.type == "MARKET":
            for price, qty in book.take(buy, order.orig_qty):
                self._fill(account, order, price, qty, maker=False)
            if order.remaining > 0:  # the ladder ran out: the rest expires, as a market order would
                self._finish(account, order, "EXPIRED")
            return
        crossing = book.available(buy, order.price)
        if order.time_in_force == "GTX" and crossing > 0:
            self._finish(account, order, "EXPIRED")  # post-only would have taken liquidity
            return
        if order.time_in_force == "FOK" and crossing < order.orig_qty:
            self._finish(account, order, "EXPIRED")
            return
        if crossing > 0:
            for price, qty in book.take(buy, order.remaining, limit=order.price):
                self._fill(account, order, price, qty, maker=False)
        if order.remaining <= 0:
            return
        if order.time_in_force == "IOC":
            self._finish(account, order, "EXPIRED")
            return
        account.open_orders[order.order_id] = order
        self.resting[order.symbol][order.order_id] = (account, order)

    def _fill(self, account: Account, order: Order, price: Decimal, qty: Decimal, *, maker: bool) -> None:
        cfg = self.books[order.symbol].cfg
        pos = account.position(order.symbol)
        realized = pos.apply(qty if order.is_buy else -qty, price)
        quote = price * qty
        fee = quote * (cfg.maker_fee if maker else cfg.taker_fee)
        account.wallet += realized - fee
        order.executed_qty += qty
        order.cum_quote += quote
        order.status = "FILLED" if order.remaining <= 0 else "PARTIALLY_FILLED"
        time_ns = time.time_ns()
        now = time_ns // 1_000_000
        order.update_time_ms = pos.update_time_ms = account.update_time_ms = now
        trade = Trade(
            trade_id=self._next_trade_id,
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            qty=qty,
            quote_qty=quote,
            commission=fee,
            commission_asset=account.asset,
            maker=maker,
            realized_pnl=realized,
            time_ms=now,
            time_ns=time_ns,
        )
        self._next_trade_id += 1
        account.trades.append(trade)
        self.books[order.symbol].record_trade(price, qty)
        if not order.is_open:
            self._unrest(account, order)
        if self.publish is not None and self.wants(account.api_key):
            self.publish(account.api_key, order_event(order, "TRADE", now, trade))
            mark = self.books[order.symbol].fair
            self.publish(account.api_key, account_event(account, order.symbol, mark, realized - fee, now))

    def _finish(self, account: Account, order: Order, status: str) -> None:
        order.status = status
        order.update_time_ms = _now_ms()
        self._unrest(account, order)
        self.emit_order(account, order, "CANCELED" if status == "CANCELED" else "EXPIRED")

    def _unrest(self, account: Account, order: Order) -> None:
        account.open_orders.pop(order.order_id, None)
        self.resting[order.symbol].pop(order.order_id, None)

    def emit_order(self, account: Account, order: Order, exec_type: str) -> None:
        if self.publish is not None and self.wants(account.api_key):
            self.publish(account.api_key, order_event(order, exec_type, order.update_time_ms))

    def find_order(self, account: Account, params: dict[str, str], *, code: int) -> Order:
        """The order named by orderId or origClientOrderId; `code` is -2013 (query) or -2011 (cancel)."""
        symbol = self.market(params.get("symbol")).symbol
        order: Order | None = None
        if params.get("orderId"):
            try:
                order = account.orders.get(int(params["orderId"]))
            except ValueError:
                raise SimError(-1102, "Parameter 'orderId' was malformed.") from None
        elif params.get("origClientOrderId"):
            order = account.by_client_id.get(params["origClientOrderId"])
        else:
            msg = "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!"
            raise SimError(-1102, msg)
        if order is None or order.symbol != symbol:
            raise SimError(code, "Order does not exist." if code == -2013 else "Unknown order sent.")
        return order

    def cancel_order(self, account: Account, params: dict[str, str]) -> Order:
        order = self.find_order(account, params, code=-2011)
        if not order.is_open:
            raise SimError(-2011, "Unknown order sent.")
        self._finish(account, order, "CANCELED")
        return order

    def cancel_all(self, account: Account, symbol: str) -> int:
        symbol = self.market(symbol).symbol
        victims = [o for o in account.open_orders.values() if o.symbol == symbol]
        for order in victims:
            self._finish(account, order, "CANCELED")
        return len(victims)

    # -- funding --------------------------------------------------------------------------------

    def next_funding_ms(self, now_ms: int | None = None) -> int:
        """The next funding time: the next multiple of the interval since the epoch (Binance and
        Bybit settle at 00:00, 08:00 and 16:00 UTC with their 8 h interval)."""
        now = _now_ms() if now_ms is None else now_ms
        return now - now % self.funding_interval_ms + self.funding_interval_ms

    def settle_funding(self, time_ms: int | None = None) -> list[tuple[Account, Funding]]:
        """Pay funding on every open position at the current mark: the wallet gains
        -position x mark x rate (Binance "Get Funding Rate History": positive rate, longs pay
        shorts). Each payment is kept on the account (income / transaction log) and reported as
        the venue pushes it (Binance: ACCOUNT_UPDATE, reason FUNDING_FEE, balance only)."""
        now = _now_ms() if time_ms is None else time_ms
        rate = self.funding_rate
        paid: list[tuple[Account, Funding]] = []
        for account in self.accounts.values():
            change, touched = ZERO, False
            for symbol, pos in account.positions.items():
                if not pos.amt:
                    continue
                mark = self.books[symbol].fair
                amount = -pos.amt * mark * rate
                funding = Funding(self._next_funding_id, symbol, pos.amt, mark, rate, amount, now)
                self._next_funding_id += 1
                account.fundings.append(funding)
                account.wallet += amount
                change += amount
                touched = True
                paid.append((account, funding))
            if touched:
                account.update_time_ms = now
                if self.publish is not None and self.wants(account.api_key):
                    self.publish(account.api_key, funding_event(account, change, now))
        return paid

    # -- market moves ---------------------------------------------------------------------------

    def set_price(self, symbol: str, price: Decimal) -> Decimal:
        book = self.books[self.market(symbol).symbol]
        book.set_fair(price)
        self.cross_resting(symbol)
        self.conditionals.check(book.cfg.symbol)
        return book.fair

    def set_last(self, symbol: str, price: Decimal) -> Decimal:
        """Print a trade at `price` by someone outside the sim's accounts: the last price
        (CONTRACT_PRICE / LastPrice triggers) moves, the mark does not."""
        book = self.books[self.market(symbol).symbol]
        if not price.is_finite() or price <= 0:
            raise ValueError(f"{symbol}: price must be positive, got {price}")
        book.record_trade(price.quantize(book.cfg.tick), ZERO)
        self.conditionals.check(book.cfg.symbol)
        return book.last_price

    def tick(self, dt_s: float) -> None:
        for symbol, book in self.books.items():
            book.random_step(dt_s)
            self.cross_resting(symbol)
            self.conditionals.check(symbol)

    def cross_resting(self, symbol: str) -> None:
        """Fill resting limits the ladder now reaches, at their own price (they are makers)."""
        resting = self.resting[symbol]
        if not resting:
            return
        book = self.books[symbol]
        for account, order in list(resting.values()):
            if order.reduce_only:
                pos = account.position(symbol).amt
                if pos == 0 or (pos > 0) == order.is_buy:
                    self._finish(account, order, "EXPIRED")
                    continue
            want = order.remaining
            if order.reduce_only:
                want = min(want, abs(account.position(symbol).amt))
            taken = sum((q for _, q in book.take(order.is_buy, want, limit=order.price)), ZERO)
            if taken > 0:
                self._fill(account, order, order.price, taken, maker=True)
