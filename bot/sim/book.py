"""The synthetic order book of one market: a seeded random-walk fair price and a liquidity ladder
around it.

Each side has `levels` levels, `level_spacing_ticks` apart, each offering `depth_per_level`. What a
taker consumes is gone until it refills (`refill_per_s` of a level per second, computed lazily from
the monotonic clock), so a larger order walks deeper and gets a worse average price, and orders from
different accounts in quick succession move each other's price. The ladder is anchored to the fair
price, so depletion travels with it when the price moves.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from bot.sim.config import MarketConfig

ZERO = Decimal(0)

Level = tuple[Decimal, Decimal]  # (price, quantity)


class Book:
    def __init__(self, cfg: MarketConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self._clock = clock
        self._rng = random.Random(cfg.seed)
        self._spacing = cfg.tick * cfg.level_spacing_ticks
        self.fair = cfg.price.quantize(cfg.tick)
        # remaining quantity per level index; index 0 is the best level
        self._asks = [cfg.depth_per_level] * cfg.levels
        self._bids = [cfg.depth_per_level] * cfg.levels
        self._refilled_at = clock()
        self.update_id = 1
        self.last_price = self.fair
        self.open_price = self.fair
        self.high = self.fair
        self.low = self.fair
        self.volume = ZERO
        self.quote_volume = ZERO
        self.trade_count = 0

    # -- prices ---------------------------------------------------------------------------------

    def _ask_price(self, i: int) -> Decimal:
        base = (self.fair / self.cfg.tick).to_integral_value(rounding=ROUND_FLOOR) * self.cfg.tick
        return base + self._spacing * (i + 1)

    def _bid_price(self, i: int) -> Decimal:
        base = (self.fair / self.cfg.tick).to_integral_value(rounding=ROUND_CEILING) * self.cfg.tick
        return base - self._spacing * (i + 1)

    def set_fair(self, price: Decimal) -> None:
        if price <= 0:
            raise ValueError(f"{self.cfg.symbol}: price must be positive, got {price}")
        self.fair = max(price.quantize(self.cfg.tick), self.cfg.tick)
        self.update_id += 1

    def random_step(self, dt_s: float) -> Decimal:
        """Advance the fair price by one seeded random-walk step of dt_s seconds."""
        if self.cfg.volatility > 0 and dt_s > 0:
            # The random draw is a float by nature; it is turned into an exact Decimal return once.
            ret = float(self.cfg.volatility) * math.sqrt(dt_s) * self._rng.gauss(0.0, 1.0)
            self.set_fair(self.fair * (1 + Decimal(repr(round(ret, 10)))))
        return self.fair

    # -- liquidity ------------------------------------------------------------------------------

    def refill(self) -> None:
        now = self._clock()
        dt = now - self._refilled_at
        self._refilled_at = now
        if dt <= 0 or self.cfg.refill_per_s <= 0:
            return
        depth = self.cfg.depth_per_level
        add = depth * self.cfg.refill_per_s * Decimal(repr(round(dt, 6)))
        for ladder in (self._asks, self._bids):
            for i, left in enumerate(ladder):
                if left < depth:
                    ladder[i] = min(depth, left + add)

    def refill_all(self) -> None:
        """Restore every level to full depth, so that a test starts again from a fresh book."""
        self._asks = [self.cfg.depth_per_level] * self.cfg.levels
        self._bids = [self.cfg.depth_per_level] * self.cfg.levels
        self.update_id += 1

    def levels(self, bids: bool, limit: int | None = None) -> list[Level]:
        """The visible side, best first; exhausted levels and non-positive prices are left out."""
        self.refill()
        ladder = self._bids if bids else self._asks
        price_of = self._bid_price if bids else self._ask_price
        step = self.cfg.step
        out: list[Level] = []
        for i, left in enumerate(ladder):
            qty = (left / step).to_integral_value(rounding=ROUND_FLOOR) * step
            price = price_of(i)
            if qty > 0 and price > 0:
                out.append((price, qty))
                if limit is not None and len(out) >= limit:
                    break
        return out

    def best(self, bids: bool) -> Decimal | None:
        top = self.levels(bids, limit=1)
        return top[0][0] if top else None

    def take(self, buy: bool, qty: Decimal, limit: Decimal | None = None) -> list[Level]:
        """Consume up to qty from the opposite side, best level first, not past `limit`.
        Returns the (price, quantity) pieces taken; their sum may be less than qty."""
        self.refill()
        ladder = self._asks if buy else self._bids
        price_of = self._ask_price if buy else self._bid_price
        step = self.cfg.step
        fills: list[Level] = []
        want = qty
        for i, left in enumerate(ladder):
            if want <= 0:
                break
            price = price_of(i)
            if price <= 0 or (limit is not None and (price > limit if buy else price < limit)):
                break
            avail = (left / step).to_integral_value(rounding=ROUND_FLOOR) * step
            if avail <= 0:
                continue
            piece = min(avail, want)
            ladder[i] = left - piece
            want -= piece
            fills.append((price, piece))
        if fills:
            self.update_id += 1
        return fills

    def available(self, buy: bool, limit: Decimal) -> Decimal:
        """Quantity a buy (or sell) could take at prices no worse than limit."""
        total = ZERO
        for price, qty in self.levels(bids=not buy):
            if price > limit if buy else price < limit:
                break
            total += qty
        return total

    def record_trade(self, price: Decimal, qty: Decimal) -> None:
        self.last_price = price
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.volume += qty
        self.quote_volume += price * qty
        self.trade_count += 1
