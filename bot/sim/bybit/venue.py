"""What the Bybit personality keeps besides the shared engine: its market views (symbol, base coin
and contract multiplier per engine market), its orderLinkIds, and the translation of engine rejects
into Bybit retCodes."""

from __future__ import annotations

import time
import uuid
import zlib
from dataclasses import dataclass
from decimal import Decimal

from bot.sim.accounts import Account, Order, SimError
from bot.sim.config import MarketConfig
from bot.sim.matching import MatchingEngine

VENUE = "bybit"
ZERO = Decimal(0)
_LINK_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")


class BybitError(Exception):
    """A request Bybit rejects: retCode and retMsg (the HTTP status stays 200, as on Bybit)."""

    def __init__(self, code: int, msg: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.headers = headers


# MatchingEngine (Binance) reject codes -> Bybit retCode and message.
_FROM_ENGINE: dict[int, tuple[int, str]] = {
    -1121: (10001, "params error: symbol invalid"),
    -1111: (10001, "Qty or price precision is over the maximum allowed"),
    -4003: (10001, "The number of contracts exceeds minimum limit allowed"),
    -4004: (10001, "The number of contracts exceeds minimum limit allowed"),
    -4005: (10001, "The number of contracts exceeds maximum limit allowed"),
    -4013: (10001, "params error: price invalid"),
    -4164: (110094, "Order does not meet minimum order value"),
    -2019: (110007, "ab not enough for new order"),
    -2022: (110017, "Reduce-only rule not satisfied"),
    -4116: (110072, "OrderLinkedID is duplicate"),
    -1100: (10001, "params error: orderLinkId invalid"),
    -2013: (110001, "order not exists or too late to cancel"),
    -2011: (110001, "order not exists or too late to cancel"),
    -4028: (10001, "leverage invalid"),
}


def from_engine(exc: SimError) -> BybitError:
    code, msg = _FROM_ENGINE.get(exc.code, (10001, f"params error: {exc.msg}"))
    return BybitError(code, msg)


def order_uuid(order_id: int) -> str:
    """Bybit order ids are UUIDs; the engine's integer id is its low bits (reversible)."""
    return str(uuid.UUID(int=order_id))


def parse_order_uuid(text: str) -> int | None:
    try:
        return uuid.UUID(text).int
    except ValueError:
        return None


def exec_uuid(trade_id: int) -> str:
    return str(uuid.UUID(int=(0xB1B1 << 96) | trade_id))


def uid_of(account: Account) -> int:
    """A stable numeric Bybit UID per account."""
    return 100_000_000 + zlib.crc32(account.api_key.encode()) % 900_000_000


@dataclass(frozen=True, slots=True)
class BybitMarket:
    """One engine market as Bybit lists it.

    qty_bybit = qty_engine x mult, price_bybit = price_engine / mult."""

    symbol: str
    base: str
    mult: Decimal
    cfg: MarketConfig

    @property
    def engine_symbol(self) -> str:
        return self.cfg.symbol

    def qty_out(self, qty: Decimal) -> Decimal:
        return qty * self.mult

    def price_out(self, price: Decimal) -> Decimal:
        return price / self.mult if self.mult != 1 else price

    def qty_in(self, qty: Decimal) -> Decimal:
        return qty / self.mult if self.mult != 1 else qty

    def price_in(self, price: Decimal) -> Decimal:
        return price * self.mult

    @property
    def tick(self) -> Decimal:
        return self.price_out(self.cfg.tick)

    @property
    def step(self) -> Decimal:
        return self.qty_out(self.cfg.step)


class BybitVenue:
    def __init__(self, engine: MatchingEngine) -> None:
        self.engine = engine
        self.clock_offset_ms = engine.config.bybit.clock_offset_ms
        self.markets: dict[str, BybitMarket] = {}  # by Bybit symbol
        self.by_engine: dict[str, BybitMarket] = {}  # by engine symbol
        for cfg in engine.config.markets:
            listing = cfg.listings.get(VENUE)
            market = (
                BybitMarket(listing.symbol, listing.base, listing.multiplier, cfg)
                if listing is not None
                else BybitMarket(cfg.symbol, cfg.base, Decimal(1), cfg)
            )
            if market.symbol in self.markets:
                raise ValueError(f"two markets are listed on Bybit as {market.symbol}")
            self.markets[market.symbol] = market
            self.by_engine[cfg.symbol] = market
        self._next_anonymous = 1
        # api_key -> (fills counted, realized PnL net of fees per engine symbol), kept incrementally
        self._realised: dict[str, tuple[int, dict[str, Decimal]]] = {}
        self._by_link: dict[str, dict[str, Order]] = {}  # api_key -> orderLinkId -> order

    # -- this venue's clock: the engine's (the process's) plus clock_offset_ms --------------------

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.clock_offset_ms

    def now_ns(self) -> int:
        return time.time_ns() + self.clock_offset_ms * 1_000_000

    def ms(self, engine_ms: int) -> int:
        """An engine timestamp (order, trade, position update) as this venue shows it."""
        return engine_ms + self.clock_offset_ms

    def engine_ms(self, venue_ms: int) -> int:
        """A time a client sent (startTime / endTime) on the engine's clock."""
        return venue_ms - self.clock_offset_ms

    def market(self, symbol: str | None) -> BybitMarket:
        market = self.markets.get(symbol or "")
        if market is None:
            raise BybitError(10001, "params error: symbol invalid")
        return market

    def link(self, order: Order) -> str:
        """The order's orderLinkId: its engine client id, unless it is one made up for an order
        sent without (those contain ':', which no orderLinkId can)."""
        cid = order.client_order_id
        return "" if ":" in cid else cid

    def anonymous_client_id(self) -> str:
        self._next_anonymous += 1
        return f"bybit:{self._next_anonymous}"

    def check_link_id(self, account: Account, link: str) -> None:
        """Bybit's rule for linear: at most 36 of [A-Za-z0-9_-], and unique among every order the
        account ever placed (not only the open ones)."""
        if len(link) > 36 or not set(link) <= _LINK_CHARS:
            raise BybitError(10001, "params error: orderLinkId invalid")
        if link in self._by_link.get(account.api_key, {}):
            raise BybitError(110072, "OrderLinkedID is duplicate")

    def remember(self, account: Account, order: Order, link: str) -> None:
        if link:
            self._by_link.setdefault(account.api_key, {})[link] = order

    def by_link(self, account: Account, link: str) -> Order | None:
        return self._by_link.get(account.api_key, {}).get(link)

    def find(self, account: Account, order_id: str | None, link: str | None) -> Order | None:
        """The order named by orderId (wins) or orderLinkId, whatever its status."""
        if order_id:
            num = parse_order_uuid(order_id)
            return account.orders.get(num) if num is not None else None
        if link:
            return self.by_link(account, link)
        return None

    def realised(self, account: Account) -> dict[str, Decimal]:
        """Cumulative realized PnL net of fees and funding per engine symbol (Bybit's cumRealisedPnl); only
        the fills since the last call are added up."""
        seen, per_symbol = self._realised.get(account.api_key, (0, {}))
        trades = account.trades
        for i in range(seen, len(trades)):
            t = trades[i]
            per_symbol[t.symbol] = per_symbol.get(t.symbol, ZERO) + t.realized_pnl - t.commission
        self._realised[account.api_key] = (len(trades), per_symbol)
        if not account.fundings:
            return per_symbol
        out = dict(per_symbol)  # Bybit's cumRealisedPnl includes funding
        for f in account.fundings:
            out[f.symbol] = out.get(f.symbol, ZERO) + f.amount
        return out
