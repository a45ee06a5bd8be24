"""The Bybit V5 REST host: one catch-all aiohttp handler that applies injected faults, authenticates,
meters the per-UID per-endpoint request limits, and dispatches to `endpoints.ROUTES`. Every answer
is HTTP 200 with Bybit's envelope `{"retCode","retMsg","result","retExtInfo","time"}`.

Lean like the Binance host: no per-request logging, orjson, one dict lookup per route.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from typing import Any

from aiohttp import web

from bot.sim.bybit.auth import verify_rest
from bot.sim.bybit.call import Call
from bot.sim.bybit.endpoints import DEFAULT_LIMITS, ROUTES
from bot.sim.bybit.venue import BybitError, BybitVenue
from bot.sim.faults import Faults
from bot.sim.jsonfast import dumps
from bot.sim.landing import LateLanding
from bot.sim.matching import MatchingEngine

_JSON = "application/json"
_ORDER_PATH = "/v5/order/create"


def _envelope(code: int, msg: str, result: Any, now_ms: int) -> bytes:
    return dumps({"retCode": code, "retMsg": msg, "result": result, "retExtInfo": {}, "time": now_ms})


def _error(exc: BybitError, headers: dict[str, str] | None, now_ms: int) -> web.Response:
    body = _envelope(exc.code, exc.msg, {}, now_ms)
    return web.Response(body=body, content_type=_JSON, headers=headers)


def _params(query: dict[str, str], body: str) -> dict[str, str]:
    """GET parameters from the query; POST ones from the JSON body, as strings."""
    params = dict(query)
    if body:
        try:
            data = json.loads(body)
        except ValueError:
            raise BybitError(10001, "Request parameter error: the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise BybitError(10001, "Request parameter error: the body must be a JSON object")
        for key, value in data.items():
            if isinstance(value, bool):
                params[key] = "true" if value else "false"
            elif value is not None:
                params[key] = str(value)
    return params


class BybitRestApi:
    def __init__(self, engine: MatchingEngine, venue: BybitVenue, faults: Faults) -> None:
        self.engine = engine
        self.venue = venue
        self.faults = faults
        settings = engine.config.bybit
        self._limits = {**DEFAULT_LIMITS, **settings.rate_limits}
        self._default_limit = settings.default_rate_limit
        self._recv_window = settings.recv_window_default_ms
        self._used: dict[tuple[str, str], deque[int]] = {}  # (api_key, path) -> answered at (ms)
        self.landing = LateLanding()

    def _meter(self, api_key: str, path: str, now_ms: int) -> dict[str, str]:
        """Per UID and endpoint over a rolling one-second window, as Bybit counts; the X-Bapi-Limit*
        headers go on every private answer. A refused request does not count."""
        limit = self._limits.get(path, self._default_limit)
        recent = self._used.get((api_key, path))
        if recent is None:
            recent = self._used[(api_key, path)] = deque()
        while recent and recent[0] <= now_ms - 1000:
            recent.popleft()
        if len(recent) >= limit:
            raise BybitError(
                10006,
                "Too many visits!",
                {
                    "X-Bapi-Limit": str(limit),
                    "X-Bapi-Limit-Status": "0",
                    "X-Bapi-Limit-Reset-Timestamp": str(recent[0] + 1000),
                },
            )
        recent.append(now_ms)
        return {
            "X-Bapi-Limit": str(limit),
            "X-Bapi-Limit-Status": str(limit - len(recent)),
            "X-Bapi-Limit-Reset-Timestamp": str(now_ms),
        }

    async def handle(self, request: web.Request) -> web.StreamResponse:
        recv_ns = time.time_ns()
        method, path = request.method, request.path
        route = ROUTES.get((method, path))
        if route is None:
            return web.Response(status=404, text="Not Found")
        api_key = request.headers.get("X-BAPI-API-KEY")
        hold = False
        late = 0.0
        if self.faults.active:
            fault = self.faults.take_http(api_key, path, method)
            if fault is not None:
                retry = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
                if fault.code is None:
                    return web.Response(status=fault.http_status, text="Service Unavailable", headers=retry)
                canned = _envelope(fault.code, fault.msg, {}, self.venue.now_ms())
                return web.Response(body=canned, status=fault.http_status, content_type=_JSON, headers=retry)
            delay = self.faults.take_delay(api_key, path, method)
            if delay:
                await asyncio.sleep(delay)
            if method == "POST" and path == _ORDER_PATH:
                hold = self.faults.take_hold(api_key)
                late = self.faults.take_late(api_key)
        private, handler = route
        headers: dict[str, str] | None = None
        try:
            body = await request.text() if request.can_read_body else ""
            params = _params(dict(request.query), body if method == "POST" else "")
            account = None
            if private:
                now_ms = self.venue.now_ms()
                payload = body if method == "POST" else request.rel_url.raw_query_string
                account = verify_rest(
                    self.engine.accounts, request.headers, payload, now_ms, self._recv_window
                )
                headers = self._meter(account.api_key, path, now_ms)
            call = Call(self.venue, self.engine, account, params, recv_ns)
            # Late landing: past the gateway (signature, timestamp, request limit), held inside the
            # venue before the engine; a resend meanwhile meets Bybit's orderLinkId rule (110072).
            result: Any = await self.landing.land(lambda: handler(call), late) if late else handler(call)
        except BybitError as exc:
            return _error(exc, exc.headers or headers, self.venue.now_ms())
        if hold:
            await self._hold(request)
        payload_out = _envelope(0, "OK", result, self.venue.now_ms())
        if call.order is not None:
            call.order.ack_time_ns = time.time_ns()
        return web.Response(body=payload_out, content_type=_JSON, headers=headers)

    async def _hold(self, request: web.Request) -> None:
        """accept_then_timeout: the order is executed but its answer never comes."""
        await asyncio.sleep(self.engine.config.hold_timeout_s)
        if request.transport is not None:
            request.transport.abort()
        raise asyncio.CancelledError


def build_app(api: BybitRestApi, admin_routes: list[web.RouteDef]) -> web.Application:
    app = web.Application(client_max_size=1 << 20)
    app.add_routes(admin_routes)
    app.router.add_route("*", "/{tail:.*}", api.handle)
    return app
