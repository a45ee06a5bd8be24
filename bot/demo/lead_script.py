"""A scripted lead trader for the demo and the tests: opens, adds, partial closes, flips and closes
on several symbols with market orders, plus GTC limit orders that fill in pieces as the local
exchange's price is walked through them."""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal
from typing import Any

import aiohttp
import structlog

from bot.core.rounding import dec, round_to_step
from bot.core.types import MarketSpec
from bot.venues import adapter_for

log = structlog.get_logger("copybot.demo.lead")


class ScriptedLead:
    def __init__(
        self,
        client: Any,
        admin_url: str,
        markets: dict[str, MarketSpec],
        *,
        symbols: list[str],
        notional: dict[str, Decimal] | None = None,
        seed: int = 7,
        pause_s: tuple[float, float] = (0.2, 0.6),
        pieces_symbol: str | None = None,
    ) -> None:
        self.pieces_symbol = pieces_symbol or symbols[-1]
        self.client = client
        self.admin_url = admin_url.rstrip("/")
        self.markets = markets
        self.symbols = symbols
        # Quote amount per entry; a thin book gets small orders so the lead does not empty it.
        self.notional = notional or {}
        self.rng = random.Random(seed)
        self.pause_s = pause_s
        self.position: dict[str, Decimal] = dict.fromkeys(symbols, Decimal(0))
        self.orders = 0
        self.actions: list[str] = []

    async def _price(self, symbol: str) -> Decimal:
        ticker = await self.client.fetch_ticker(symbol)
        return dec(ticker["info"].get("lastPrice") or ticker["last"])

    async def _qty(self, symbol: str, fraction: float = 1.0) -> Decimal:
        price = await self._price(symbol)
        market = self.markets[symbol]
        raw = (
            self.notional.get(symbol, Decimal(3000))
            * Decimal(str(round(fraction * self.rng.uniform(0.6, 1.4), 3)))
            / price
        )
        return max(round_to_step(raw, market.step), market.min_qty)

    async def _market(self, symbol: str, signed: Decimal, reduce_only: bool = False) -> None:
        if signed == 0:
            return
        side = "buy" if signed > 0 else "sell"
        params = {"reduceOnly": True} if reduce_only else {}
        await self.client.create_order(symbol, "market", side, str(abs(signed)), None, params)
        self.position[symbol] += signed
        self.orders += 1

    async def _move_price(self, session: aiohttp.ClientSession, symbol: str, price: Decimal) -> None:
        market_id = self.markets[symbol].venue_symbol
        async with session.post(
            f"{self.admin_url}/_sim/price", json={"symbol": market_id, "price": str(price)}
        ) as r:
            r.raise_for_status()

    async def _limit_in_pieces(self, session: aiohttp.ClientSession, symbol: str) -> None:
        """A resting buy just under the best ask, larger than that level, filled in pieces as the
        price walks down through the book; what is left is cancelled."""
        market = self.markets[symbol]
        book = await self.client.fetch_order_book(symbol, 5)
        best_ask, level_qty = dec(book["asks"][0][0]), dec(book["asks"][0][1])
        limit = best_ask - market.tick
        qty = round_to_step(level_qty * Decimal("1.5"), market.step)
        order = await self.client.create_order(symbol, "limit", "buy", str(qty), str(limit), {})
        self.orders += 1
        price = await self._price(symbol)
        for i in range(1, 7):
            walked = round_to_step(price * (1 - Decimal("0.0006") * i), market.tick)
            await self._move_price(session, symbol, walked)
            await asyncio.sleep(0.1)
        # Still open? (asked through the open orders: Bybit looks single orders up in its recent 500 only)
        if any(o["id"] == order["id"] for o in await self.client.fetch_open_orders(symbol)):
            await self.client.cancel_order(order["id"], symbol)
        await self._move_price(session, symbol, price)

    async def _sync_positions(self) -> None:
        """The exchange's view of the lead's positions (a partly filled, cancelled limit order
        leaves a size the script cannot know in advance)."""
        # All positions, then filtered: Bybit's fetch_positions takes at most one symbol.
        held = adapter_for(self.client.id).positions(await self.client.fetch_positions())
        self.position = {s: held[s].qty if s in held else Decimal(0) for s in self.symbols}

    async def step(self, session: aiohttp.ClientSession) -> str:
        await self._sync_positions()
        symbol = self.rng.choice(self.symbols)
        pos = self.position[symbol]
        step = self.markets[symbol].step
        roll = self.rng.random()
        if pos == 0:
            action = "limit_in_pieces" if roll < 0.3 and symbol == self.pieces_symbol else "open"
            if action == "open":
                await self._market(symbol, await self._qty(symbol) * self.rng.choice((1, -1)))
            else:
                await self._limit_in_pieces(session, symbol)
        elif roll < 0.3:
            action = "add"
            await self._market(symbol, (await self._qty(symbol, 0.5)) * (1 if pos > 0 else -1))
        elif roll < 0.6:
            action = "partial_close"
            part = round_to_step(abs(pos) * Decimal("0.4"), step)
            await self._market(symbol, part * (-1 if pos > 0 else 1), reduce_only=True)
        elif roll < 0.8:
            action = "flip"
            await self._market(symbol, -pos - (await self._qty(symbol)) * (1 if pos > 0 else -1))
        else:
            action = "close"
            await self._market(symbol, -pos, reduce_only=True)
        self.actions.append(f"{action} {symbol}")
        return action

    async def run(self, seconds: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        async with aiohttp.ClientSession() as session:
            while loop.time() < deadline:
                try:
                    action = await self.step(session)
                    log.debug("lead_action", action=action)
                except Exception as exc:  # a rejected scripted order must not end the demo
                    log.warning("lead_action_failed", error=str(exc)[:200])
                await asyncio.sleep(self.rng.uniform(*self.pause_s))
