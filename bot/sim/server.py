"""`SimExchange`: the local exchange in one object, REST and user-stream hosts on loopback.

async with SimExchange() as sim:
    sim.create_account("key", "secret", Decimal(10_000))
    client = make_rest("binanceusdm", VenueMode.SIM, api_key="key", secret="secret",
                       rest_url=sim.rest_url, ws_url=sim.ws_url)

`SimExchange(config, venues=("binance", "bybit"))` also serves Bybit V5 (`bot/sim/bybit`) on its own
REST and websocket ports over the same engine and accounts; `sim.urls` names every host.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from decimal import Decimal
from types import TracebackType

from aiohttp import web

from bot.sim.accounts import Account
from bot.sim.admin import admin_routes
from bot.sim.bybit.host import BybitHost
from bot.sim.config import SimConfig, load_sim_config
from bot.sim.faults import Faults
from bot.sim.limits import Limits
from bot.sim.marketstream import MarkClock
from bot.sim.matching import MatchingEngine
from bot.sim.rest import RestApi, build_app
from bot.sim.userstream import UserStream

VENUES = ("binance", "bybit")


class SimExchange:
    def __init__(self, config: SimConfig | None = None, venues: Sequence[str] = ("binance",)) -> None:
        unknown = set(venues) - set(VENUES)
        if unknown or not venues:
            raise ValueError(f"venues must be some of {VENUES}, got {tuple(venues)}")
        self.config = config or load_sim_config()
        self.venues = tuple(v for v in VENUES if v in venues)
        self.engine = MatchingEngine(self.config)
        self.limits = Limits(self.config)
        self.stream = UserStream(self.engine, self.limits)
        self.faults = Faults()
        self._api: RestApi | None = None
        self.bybit = BybitHost(self.engine) if "bybit" in self.venues else None
        # One ticking source for the public mark-price streams of every venue served.
        publics = [self.stream.public] + ([self.bybit.stream.public] if self.bybit else [])
        self.mark_clock = MarkClock(publics)
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._funding: asyncio.Task[None] | None = None
        self.rest_url = ""
        self.ws_url = ""
        self.urls: dict[str, dict[str, str]] = {}
        self._started = False

    def create_account(
        self,
        api_key: str,
        secret: str,
        balance: Decimal,
        name: str = "",
        withdrawals_enabled: bool = False,
        venue: str = "binance",
    ) -> Account:
        return self.engine.create_account(api_key, secret, balance, name, withdrawals_enabled, venue=venue)

    async def start(
        self,
        host: str = "127.0.0.1",
        rest_port: int = 0,
        ws_port: int = 0,
        bybit_rest_port: int = 0,
        bybit_ws_port: int = 0,
    ) -> None:
        if self._started:
            raise RuntimeError("SimExchange already started")
        self._started = True
        admin = admin_routes(
            self.engine,
            self.stream,
            self.faults,
            self.limits,
            {"bybit": self.bybit} if self.bybit is not None else None,
        )
        if self.bybit is not None:
            await self.bybit.start(host, bybit_rest_port, bybit_ws_port, admin)
            self.urls["bybit"] = {"rest": self.bybit.rest_url, "ws": self.bybit.ws_url}
        if "binance" in self.venues:
            await self._start_binance(host, rest_port, ws_port, admin)
            self.urls["binance"] = {"rest": self.rest_url, "ws": self.ws_url}
        self.mark_clock.start()
        if self.config.tick_interval_s > 0:
            self._ticker = asyncio.create_task(self._tick_loop(self.config.tick_interval_s))
        self._funding = asyncio.create_task(self._funding_loop())

    async def _start_binance(
        self, host: str, rest_port: int, ws_port: int, admin: list[web.RouteDef]
    ) -> None:
        self._api = RestApi(self.engine, self.stream, self.faults, self.limits)
        app = build_app(self._api, admin)
        # handler_cancellation: a client that hangs up cancels its handler (accept_then_timeout).
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, rest_port)
        await site.start()
        port = self._runner.addresses[0][1]
        self.rest_url = f"http://{host}:{port}"
        self.ws_url = await self.stream.start(host, ws_port)

    async def _tick_loop(self, interval: float) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            self.engine.tick(now - last)
            last = now

    async def _funding_loop(self) -> None:
        """Settle funding at each funding time, on the process clock (frozen prices or not)."""
        settled_ms = 0
        while True:
            # A sleep may end a little early: never settle one funding time twice.
            due_ms = max(self.engine.next_funding_ms(), settled_ms + self.engine.funding_interval_ms)
            await asyncio.sleep(max(0.0, due_ms / 1000 - time.time()))
            self.engine.settle_funding(due_ms)
            settled_ms = due_ms

    async def stop(self) -> None:
        for task in (self._ticker, self._funding):
            if task is not None:
                task.cancel()
        self._ticker = self._funding = None
        await self.mark_clock.stop()
        await self.stream.stop()
        if self._api is not None:
            await self._api.close()
        if self.bybit is not None:
            await self.bybit.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._started = False

    async def __aenter__(self) -> SimExchange:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
