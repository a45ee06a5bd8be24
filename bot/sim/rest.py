"""The REST host: one catch-all aiohttp handler that applies injected faults, authenticates,
meters the per-account request budget, and dispatches to `endpoints.ROUTES`.

The request path stays lean (no per-request logging, precomputed exchangeInfo, orjson) because the
benchmark measures it; `recvTimeNs` is taken on entry and `ackTimeNs` just before the answer is
handed to the transport.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from bot.sim.accounts import SimError
from bot.sim.auth import key_account, parse_params, verify_signed
from bot.sim.endpoints import ROUTES, Call
from bot.sim.faults import Faults
from bot.sim.jsonfast import dumps
from bot.sim.marketdata import exchange_info
from bot.sim.matching import Engine
from bot.sim.userstream import UserStream

_JSON = "application/json"
_ORDER_PATH = "/fapi/v1/order"


def _error(exc: SimError, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=dumps({"code": exc.code, "msg": exc.msg}),
        status=exc.http_status,
        content_type=_JSON,
        headers=headers,
    )


class RestApi:
    def __init__(self, engine: Engine, stream: UserStream, faults: Faults) -> None:
        self.engine = engine
        self.stream = stream
        self.faults = faults
        self._exchange_info = dumps(exchange_info(engine))
        self._budget: dict[str, tuple[int, int]] = {}  # api_key -> (window index, requests)

    def _meter(self, api_key: str) -> None:
        cfg = self.engine.config
        window = int(time.monotonic() / cfg.request_window_s)
        seen_window, used = self._budget.get(api_key, (window, 0))
        used = used + 1 if seen_window == window else 1
        self._budget[api_key] = (window, used)
        if used > cfg.request_budget:
            retry = max(1, int((window + 1) * cfg.request_window_s - time.monotonic()) + 1)
            raise SimError(
                -1003,
                f"Too many requests; current limit of account is {cfg.request_budget} requests per "
                f"{cfg.request_window_s:g} s. Please use WebSocket Streams for live updates.",
                429,
                headers={"Retry-After": str(retry)},
            )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        recv_ns = time.time_ns()
        method, path = request.method, request.path
        if path == "/fapi/v1/exchangeInfo" and method == "GET":
            return web.Response(body=self._exchange_info, content_type=_JSON)
        route = ROUTES.get((method, path))
        if route is None:
            return web.Response(status=404, text="Not Found")  # as Binance: no JSON body
        api_key = request.headers.get("X-MBX-APIKEY")
        hold = False
        if self.faults.active:
            fault = self.faults.take_http(api_key, path, method)
            if fault is not None:
                canned = fault.body()
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
                if canned is None:
                    return web.Response(status=fault.http_status, text="Service Unavailable", headers=headers)
                return web.Response(
                    body=dumps(canned), status=fault.http_status, content_type=_JSON, headers=headers
                )
            delay = self.faults.take_delay(api_key, path, method)
            if delay:
                await asyncio.sleep(delay)
            hold = method == "POST" and path == _ORDER_PATH and self.faults.take_hold(api_key)
        security, handler = route
        try:
            query = request.query_string
            body = await request.text() if request.can_read_body else ""
            params = parse_params(query, body)
            account = None
            if security == "signed":
                raw_query = request.rel_url.raw_query_string
                account = verify_signed(
                    self.engine.accounts,
                    api_key,
                    raw_query,
                    body,
                    params,
                    time.time_ns() // 1_000_000,
                    self.engine.config.recv_window_max_ms,
                )
            elif security == "key":
                account = key_account(self.engine.accounts, api_key)
            if account is not None:
                self._meter(account.api_key)
            call = Call(self.engine, self.stream, account, params, recv_ns)
            result: Any = handler(call)
        except SimError as exc:
            return _error(exc, exc.headers)
        if hold:
            await self._hold(request)
        payload = dumps(result)
        if call.order is not None:
            call.order.ack_time_ns = time.time_ns()
        return web.Response(body=payload, content_type=_JSON)

    async def _hold(self, request: web.Request) -> None:
        """The order is executed but its answer never comes: wait until the client gives up
        (aiohttp cancels this handler when it hangs up), or cut the connection after the hold."""
        await asyncio.sleep(self.engine.config.hold_timeout_s)
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError  # nothing may be written on the cut connection


def build_app(api: RestApi, admin_routes: list[web.RouteDef]) -> web.Application:
    app = web.Application(client_max_size=1 << 20)
    app.add_routes(admin_routes)
    app.router.add_route("*", "/{tail:.*}", api.handle)
    return app
