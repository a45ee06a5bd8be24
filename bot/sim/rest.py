"""The REST host: one catch-all aiohttp handler that charges the request weight of the source
address, applies injected faults, authenticates, counts new orders per account, and dispatches to
`endpoints.ROUTES`.

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
from bot.sim.call import Call
from bot.sim.endpoints import ROUTES, WEIGHTS
from bot.sim.faults import Faults
from bot.sim.jsonfast import dumps
from bot.sim.landing import LateLanding
from bot.sim.limits import ORDERS_1M_HEADER, ORDERS_10S_HEADER, WEIGHT_HEADER, Limits
from bot.sim.marketdata import exchange_info
from bot.sim.matching import MatchingEngine
from bot.sim.userstream import UserStream

_JSON = "application/json"
_ORDER_PATHS = frozenset({"/fapi/v1/order", "/fapi/v1/algoOrder"})  # both count as new orders
_EXCHANGE_INFO = "/fapi/v1/exchangeInfo"


def _error(exc: SimError, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=dumps({"code": exc.code, "msg": exc.msg}),
        status=exc.http_status,
        content_type=_JSON,
        headers=headers,
    )


class RestApi:
    def __init__(self, engine: MatchingEngine, stream: UserStream, faults: Faults, limits: Limits) -> None:
        self.engine = engine
        self.stream = stream
        self.faults = faults
        self.limits = limits
        self._exchange_info = dumps(exchange_info(engine))
        self.landing = LateLanding()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        recv_ns = time.time_ns()
        method, path = request.method, request.path
        weight = WEIGHTS.get((method, path))
        if weight is None:  # as Binance: no JSON body; weighs nothing
            used_now = str(self.limits.used(request.remote or ""))
            return web.Response(status=404, text="Not Found", headers={WEIGHT_HEADER: used_now})
        if not isinstance(weight, int):
            weight = weight(request.query)
        try:
            used = self.limits.charge(request.remote or "", weight)
        except SimError as exc:
            return _error(exc, exc.headers)
        headers = {WEIGHT_HEADER: str(used)}
        if path == _EXCHANGE_INFO:
            return web.Response(body=self._exchange_info, content_type=_JSON, headers=headers)
        security, handler = ROUTES[(method, path)]
        api_key = request.headers.get("X-MBX-APIKEY")
        hold = False
        late = 0.0
        is_order = method == "POST" and path in _ORDER_PATHS
        if self.faults.active:
            fault = self.faults.take_http(api_key, path, method)
            if fault is not None:
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
                canned = fault.body()
                if canned is None:
                    return web.Response(status=fault.http_status, text="Service Unavailable", headers=headers)
                return web.Response(
                    body=dumps(canned), status=fault.http_status, content_type=_JSON, headers=headers
                )
            delay = self.faults.take_delay(api_key, path, method)
            if delay:
                await asyncio.sleep(delay)
            if is_order:
                hold = self.faults.take_hold(api_key)
                late = self.faults.take_late(api_key)
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
            if is_order and account is not None:
                count_10s, count_1m = self.limits.count_order(account.api_key)
                headers[ORDERS_10S_HEADER] = str(count_10s)
                headers[ORDERS_1M_HEADER] = str(count_1m)
            call = Call(self.engine, self.stream, account, params, recv_ns)
            result: Any = await self.landing.land(lambda: handler(call), late) if late else handler(call)
        except SimError as exc:
            return _error(exc, headers | exc.headers if exc.headers else headers)
        if hold:
            await self._hold(request)
        payload = dumps(result)
        if call.order is not None:
            call.order.ack_time_ns = time.time_ns()
        return web.Response(body=payload, content_type=_JSON, headers=headers)

    async def close(self) -> None:
        self.landing.close()

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
