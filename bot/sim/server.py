"""`SimExchange`: the local exchange in one object, REST and user-stream hosts on loopback.

async with SimExchange() as sim:
    sim.create_account("key", "secret", Decimal(10_000))
    client = make_rest("binanceusdm", VenueMode.SIM, api_key="key", secret="secret",
                       rest_url=sim.rest_url, ws_url=sim.ws_url)
"""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from types import TracebackType

from aiohttp import web

from bot.sim.accounts import Account
from bot.sim.admin import admin_routes
from bot.sim.config import SimConfig, load_config
from bot.sim.faults import Faults
from bot.sim.limits import Limits
from bot.sim.matching import Engine
from bot.sim.rest import RestApi, build_app
from bot.sim.userstream import UserStream


class SimExchange:
    def __init__(self, config: SimConfig | None = None) -> None:
        self.config = config or load_config()
        self.engine = Engine(self.config)
        self.limits = Limits(self.config)
        self.stream = UserStream(self.engine, self.limits)
        self.faults = Faults()
        self._api: RestApi | None = None
        self._runner: web.AppRunner | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.rest_url = ""
        self.ws_url = ""

    def create_account(
        self, api_key: str, secret: str, balance: Decimal, name: str = "", withdrawals_enabled: bool = False
    ) -> Account:
        return self.engine.create_account(api_key, secret, balance, name, withdrawals_enabled)

    async def start(self, host: str = "127.0.0.1", rest_port: int = 0, ws_port: int = 0) -> None:
        if self._runner is not None:
            raise RuntimeError("SimExchange already started")
        self._api = RestApi(self.engine, self.stream, self.faults, self.limits)
        app = build_app(self._api, admin_routes(self.engine, self.stream, self.faults, self.limits))
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
        if self.config.tick_interval_s > 0:
            self._ticker = asyncio.create_task(self._tick_loop(self.config.tick_interval_s))

    async def _tick_loop(self, interval: float) -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            self.engine.tick(now - last)
            last = now

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        await self.stream.stop()
        if self._api is not None:
            await self._api.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> SimExchange:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
