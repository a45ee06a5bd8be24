"""Injected REST faults, as the real ccxt client sees them."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest

from bot.sim.server import SimExchange
from tests.sim.conftest import KEY, SECRET, ClientFactory, frozen_config

BTC = "BTC/USDT:USDT"


async def inject(sim: SimExchange, spec: dict[str, Any], method: str = "POST") -> dict[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, sim.rest_url + "/_sim/faults", json=spec) as r,
    ):
        assert r.status == 200, await r.text()
        result: dict[str, Any] = await r.json()
        return result


async def test_http_503_is_exchange_not_available_then_recovers(
    rest: ccxt.Exchange, sim: SimExchange
) -> None:
    await inject(sim, {"http_status": 503, "count": 2})
    for _ in range(2):
        with pytest.raises(ccxt.ExchangeNotAvailable):
            await rest.fetch_balance()
    assert (await rest.fetch_balance())["USDT"]["total"] == 100_000


async def test_injected_429_is_rate_limiting(rest: ccxt.Exchange, sim: SimExchange) -> None:
    await inject(sim, {"code": -1003, "http_status": 429, "retry_after": 1, "count": 1})
    with pytest.raises(ccxt.DDoSProtection, match="429"):
        await rest.fetch_balance()
    await rest.fetch_balance()


async def test_fault_filters_by_path_method_and_key(rest: ccxt.Exchange, sim: SimExchange) -> None:
    sim.create_account("bob", "bob-secret", Decimal(1000))
    await inject(
        sim, {"http_status": 503, "count": 5, "path": "/fapi/v1/order", "method": "POST", "api_key": "bob"}
    )
    await rest.create_order(BTC, "market", "buy", 0.01)  # alice: untouched
    await rest.fetch_balance()
    await inject(sim, {}, method="DELETE")
    await rest.create_order(BTC, "market", "buy", 0.01)
    assert sim.faults.http == []


async def test_legacy_request_budget_still_loads_as_the_weight_limit(clients: ClientFactory) -> None:
    # a config file from before request weights (the benchmark writes one) keeps working
    async with SimExchange(frozen_config(request_budget=3)) as sim:
        sim.create_account("k", "s", Decimal(1000))
        async with aiohttp.ClientSession() as http:
            statuses = []
            for _ in range(4):
                async with http.post(sim.rest_url + "/fapi/v1/listenKey", headers={"X-MBX-APIKEY": "k"}) as r:
                    statuses.append(r.status)
                    body, retry = await r.json(), r.headers.get("Retry-After")
        assert statuses == [200, 200, 200, 429]
        assert body["code"] == -1003
        assert retry is not None
        assert int(retry) >= 1


async def test_delay_holds_the_answer(rest: ccxt.Exchange, sim: SimExchange) -> None:
    await inject(sim, {"delay_ms": 300, "count": 1})
    started = time.monotonic()
    await rest.fetch_balance()
    assert time.monotonic() - started >= 0.3
    rest.timeout = 100
    await inject(sim, {"delay_ms": 2000, "count": 1})
    with pytest.raises(ccxt.RequestTimeout):
        await rest.fetch_balance()


async def test_accept_then_timeout_executes_the_order(sim: SimExchange, clients: ClientFactory) -> None:
    client = clients(timeout_ms=500)
    await client.load_markets()
    await inject(sim, {"accept_then_timeout": 1})
    with pytest.raises(ccxt.RequestTimeout):
        await client.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "lost-ack"})
    order = await client.fetch_order(None, BTC, params={"clientOrderId": "lost-ack"})
    assert order["status"] == "closed"
    assert order["filled"] == 0.01
    # The order is closed, so its id is free again (Binance: unique among open orders): a blind
    # retry with the same id is a second order. Only the lookup before any retry guards against it.
    retry = await client.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "lost-ack"})
    assert retry["id"] != order["id"]
    assert sim.engine.accounts[KEY].position("BTCUSDT").amt == Decimal("0.02")


async def test_timestamp_outside_recv_window_is_invalid_nonce(clients: ClientFactory) -> None:
    client = clients()
    await client.load_markets()
    client.options["recvWindow"] = 1000
    client.nonce = lambda: client.milliseconds() - 5000
    with pytest.raises(ccxt.InvalidNonce):
        await client.fetch_balance()
    assert SECRET not in str(client.last_http_response or "")
