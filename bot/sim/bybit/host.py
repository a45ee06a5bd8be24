"""The Bybit hosts of one `SimExchange`: REST and private websocket on their own ports, over the
engine and accounts the Binance hosts share."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from bot.sim.bybit.rest import BybitRestApi, build_app
from bot.sim.bybit.stream import BybitStream
from bot.sim.bybit.venue import BybitVenue
from bot.sim.faults import Faults
from bot.sim.matching import MatchingEngine


class BybitHost:
    def __init__(self, engine: MatchingEngine) -> None:
        self.engine = engine
        self.venue = BybitVenue(engine)
        self.stream = BybitStream(engine, self.venue)
        self.faults = Faults()  # the Bybit hosts' own REST faults (admin: "venue": "bybit")
        self._runner: web.AppRunner | None = None
        self._api: BybitRestApi | None = None
        self.rest_url = ""
        self.ws_url = ""
        # MatchingEngine events go to every personality; each keeps only its own accounts' connections.
        publish, wants = engine.publish, engine.wants

        def publish_all(api_key: str, event: dict[str, Any]) -> None:
            if publish is not None:
                publish(api_key, event)
            self.stream.publish(api_key, event)

        engine.publish = publish_all
        engine.wants = lambda api_key: wants(api_key) or self.stream.wants(api_key)

    async def start(self, host: str, rest_port: int, ws_port: int, admin: list[web.RouteDef]) -> None:
        self._api = BybitRestApi(self.engine, self.venue, self.faults)
        app = build_app(self._api, admin)
        self._runner = web.AppRunner(
            app, handle_signals=False, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await self._runner.setup()
        await web.TCPSite(self._runner, host, rest_port).start()
        self.rest_url = f"http://{host}:{self._runner.addresses[0][1]}"
        self.ws_url = await self.stream.start(host, ws_port)

    async def stop(self) -> None:
        if self._api is not None:
            self._api.landing.close()
        await self.stream.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
