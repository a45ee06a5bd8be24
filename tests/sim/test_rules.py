"""Binance's venue rules as the local exchange keeps them, seen by the real ccxt client and by
Binance's own Python connector: client-id reuse, late landing at the matching engine, request weight
per source address, 429s and IP bans, order counts per account, websocket connection attempts."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import ccxt.async_support as ccxt
import pytest
import websockets
from websockets.asyncio.client import connect

from bot.sim.server import SimExchange
from bot.venues import VenueMode, make_rest
from tests.sim.conftest import KEY, SECRET, frozen_config
from tests.sim.test_faults import inject

BTC = "BTC/USDT:USDT"
OTHER_ADDRESS = "127.0.0.2"
DAY = 86_400  # a day-long weight window keeps a test from straddling a window's end


@contextlib.asynccontextmanager
async def venue(**overrides: Any) -> AsyncIterator[tuple[SimExchange, Callable[..., Any]]]:
    """A local exchange with `overrides` over the frozen default config, alice's account, and a
    factory of ccxt clients (`client(api_key=..., secret=..., **make_rest kwargs)`) closed at the end."""
    sim = SimExchange(frozen_config(**overrides))
    await sim.start()
    sim.create_account(KEY, SECRET, Decimal(100_000), name="alice")
    made: list[Any] = []

    def client(api_key: str = KEY, secret: str = SECRET, **kw: Any) -> Any:
        made.append(
            make_rest(
                "binanceusdm",
                VenueMode.SIM,
                api_key=api_key,
                secret=secret,
                rest_url=sim.rest_url,
                ws_url=sim.ws_url,
                **kw,
            )
        )
        return made[-1]

    try:
        yield sim, client
    finally:
        for c in made:
            await c.close()
        await sim.stop()


def header(client: Any, name: str) -> str | None:
    """A header of the client's last response, whatever its case."""
    for key, value in (client.last_response_headers or {}).items():
        if key.lower() == name.lower():
            return str(value)
    return None


async def admin(sim: SimExchange, method: str, path: str) -> Any:
    async with aiohttp.ClientSession() as http, http.request(method, sim.rest_url + path) as r:
        assert r.status == 200, await r.text()
        return await r.json()


async def early_in_window(seconds: int, margin: float) -> None:
    """Wait until the wall-clock window of `seconds` has at least `margin` seconds left (order-count
    windows are aligned to the clock, as Binance's are)."""
    while seconds - time.time() % seconds < margin:
        await asyncio.sleep(0.05)


# -- client order ids ----------------------------------------------------------------------------


async def test_client_id_of_a_filled_order_is_reusable_under_open() -> None:
    async with venue() as (sim, client):  # client_id_rule: open is the default
        rest = client()
        await rest.load_markets()
        first = await rest.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "cid-1"})
        assert first["status"] == "closed"
        second = await rest.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "cid-1"})
        assert second["id"] != first["id"]
        # a lookup by the id answers the most recent order that carries it
        assert (await rest.fetch_order(None, BTC, params={"clientOrderId": "cid-1"}))["id"] == second["id"]
        state = await admin(sim, "GET", f"/_sim/accounts/{KEY}")
        assert [o["clientOrderId"] for o in state["orders"]] == ["cid-1", "cid-1"]


async def test_client_id_of_a_filled_order_is_refused_under_ever() -> None:
    async with venue(client_id_rule="ever") as (sim, client):
        rest = client()
        await rest.load_markets()
        await rest.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "cid-1"})
        with pytest.raises(ccxt.InvalidOrder, match="-4116"):
            await rest.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "cid-1"})
        assert len(sim.engine.accounts[KEY].orders) == 1


@pytest.mark.parametrize("rule", ["open", "ever"])
async def test_client_id_of_a_resting_order_is_refused_under_both_rules(rule: str) -> None:
    async with venue(client_id_rule=rule) as (sim, client):
        rest = client()
        await rest.load_markets()
        resting = await rest.create_order(BTC, "limit", "buy", 0.01, 50000, params={"clientOrderId": "gtc"})
        assert resting["status"] == "open"
        with pytest.raises(ccxt.InvalidOrder, match="-4116"):
            await rest.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "gtc"})
        await rest.cancel_order(None, BTC, params={"clientOrderId": "gtc"})
        if rule == "open":
            await rest.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "gtc"})
        else:
            with pytest.raises(ccxt.InvalidOrder, match="-4116"):
                await rest.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "gtc"})


# -- late landing ---------------------------------------------------------------------------------


async def test_late_order_lands_after_the_client_gave_up() -> None:
    async with venue() as (sim, client):
        rest = client(timeout_ms=300)
        await rest.load_markets()
        await inject(sim, {"late_landing_ms": 1000, "count": 1, "api_key": KEY})
        started = time.time_ns()
        with pytest.raises(ccxt.RequestTimeout):
            await rest.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "late-1"})
        assert sim.engine.accounts[KEY].orders == {}  # not yet at the engine
        with pytest.raises(ccxt.OrderNotFound):
            await rest.fetch_order(None, BTC, params={"clientOrderId": "late-1"})
        await asyncio.sleep(0.4)
        assert sim.engine.accounts[KEY].orders == {}  # 0.7 s after it was sent: still on its way
        for _ in range(100):
            if sim.engine.accounts[KEY].orders:
                break
            await asyncio.sleep(0.02)
        order = await rest.fetch_order(None, BTC, params={"clientOrderId": "late-1"})
        assert order["status"] == "closed"
        (row,) = (await admin(sim, "GET", f"/_sim/accounts/{KEY}"))["orders"]
        assert row["engineTimeNs"] - row["recvTimeNs"] >= 950_000_000
        assert row["engineTimeNs"] - started >= 950_000_000
        # the fault held one order only
        await rest.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "late-2"})


async def test_late_order_past_its_recv_window_is_rejected_at_the_engine() -> None:
    async with venue() as (sim, client):  # recv_window_at_engine: true is the default
        waiting, hasty = client(timeout_ms=5000), client(timeout_ms=300)
        for c in (waiting, hasty):
            await c.load_markets()
            c.options["recvWindow"] = 500
        await inject(sim, {"late_landing_ms": 800, "count": 2})
        with pytest.raises(ccxt.ExchangeError, match="-5028"):  # a client that waits sees the reject
            await waiting.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "stale-1"})
        with pytest.raises(ccxt.RequestTimeout):  # one that hangs up never learns of it
            await hasty.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "stale-2"})
        await asyncio.sleep(1.0)
        assert sim.engine.accounts[KEY].orders == {}
        for cid in ("stale-1", "stale-2"):
            with pytest.raises(ccxt.OrderNotFound):
                await waiting.fetch_order(None, BTC, params={"clientOrderId": cid})


async def test_without_the_engine_check_a_late_order_past_its_recv_window_lands() -> None:
    async with venue(recv_window_at_engine=False) as (sim, client):
        rest = client(timeout_ms=5000)
        await rest.load_markets()
        rest.options["recvWindow"] = 500
        await inject(sim, {"late_landing_ms": 800, "count": 1})
        order = await rest.create_order(BTC, "market", "buy", 0.01, params={"clientOrderId": "stale-ok"})
        assert order["status"] == "closed"


# -- request weight per source address ------------------------------------------------------------


async def test_every_response_carries_the_used_weight_of_its_address() -> None:
    async with venue(weight_window_s=DAY) as (sim, client):
        rest = client()
        used = 0

        def charged(weight: int) -> None:
            nonlocal used
            now = int(header(rest, "X-MBX-USED-WEIGHT-1M") or "-1")
            assert now in (used + weight, weight)  # (or a new window began)
            used = now

        await rest.load_markets()  # exchangeInfo
        charged(1)
        await rest.fetch_time()
        charged(1)
        await rest.fetch_balance()  # v3/account
        charged(5)
        await rest.fetch_positions()  # leverageBracket (1), then v3/positionRisk (5)
        charged(6)
        await rest.fetch_order_book(BTC, limit=5)
        charged(2)
        await rest.fetch_order_book(BTC, limit=100)
        charged(5)
        await rest.fetch_order_book(BTC, limit=1000)
        charged(20)
        await rest.fetch_ticker(BTC)
        charged(1)
        await rest.fetch_open_orders(BTC)
        charged(1)
        await rest.fetch_open_orders()
        charged(40)
        await rest.fetch_my_trades(BTC)
        charged(5)
        await rest.fapiPrivateGetAllOrders({"symbol": "BTCUSDT"})
        charged(5)
        await rest.set_leverage(5, BTC)
        charged(1)
        await rest.fapiPrivatePostListenKey()
        charged(1)
        order = await rest.create_order(BTC, "limit", "buy", 0.01, 50000, params={"clientOrderId": "w-1"})
        charged(0)  # new orders count against the account's order limits instead
        assert header(rest, "X-MBX-ORDER-COUNT-10S") == "1"
        assert header(rest, "X-MBX-ORDER-COUNT-1M") == "1"
        await rest.fetch_order(order["id"], BTC)
        charged(1)
        assert header(rest, "X-MBX-ORDER-COUNT-1M") is None  # only order responses carry them
        await rest.cancel_order(order["id"], BTC)
        charged(1)
        with pytest.raises(ccxt.InvalidOrder):  # errors carry the weight too
            await rest.create_order(BTC, "market", "buy", 0.001)
        charged(0)
        assert header(rest, "X-MBX-ORDER-COUNT-1M") in ("2", "1")  # ("1": a new minute began)
        async with aiohttp.ClientSession() as http, http.get(sim.rest_url + "/fapi/v1/nothing") as r:
            assert (r.status, r.headers["X-MBX-USED-WEIGHT-1M"]) == (404, str(used))  # weighs nothing
        limits = await admin(sim, "GET", "/_sim/limits")
        assert limits["addresses"]["127.0.0.1"]["usedWeight"] == used  # admin calls weigh nothing


async def test_past_the_weight_limit_an_address_gets_429_and_another_address_does_not() -> None:
    async with venue(weight_limit_1m=20, weight_window_s=DAY) as (sim, client):
        first = client()
        await first.load_markets()  # 1
        for _ in range(3):
            await first.fetch_balance()  # 5 each: 16
        with pytest.raises(ccxt.DDoSProtection, match="-1003"):
            await first.fetch_balance()  # 21 > 20
        retry = header(first, "Retry-After")
        assert retry is not None
        assert 1 <= int(retry) <= DAY
        assert header(first, "X-MBX-USED-WEIGHT-1M") == "21"
        # the same account from another source address has its own budget
        connector = aiohttp.TCPConnector(local_addr=(OTHER_ADDRESS, 0))
        async with aiohttp.ClientSession(connector=connector) as session:
            second = client(session=session)
            await second.load_markets()
            assert (await second.fetch_balance())["USDT"]["total"] == 100_000
            assert header(second, "X-MBX-USED-WEIGHT-1M") == "6"
            await second.close()
        limits = await admin(sim, "GET", "/_sim/limits")
        assert limits["addresses"]["127.0.0.1"]["usedWeight"] == 21
        assert limits["addresses"][OTHER_ADDRESS]["usedWeight"] == 6
        await admin(sim, "DELETE", "/_sim/limits?address=127.0.0.1")
        await first.fetch_balance()
        assert header(first, "X-MBX-USED-WEIGHT-1M") == "5"


async def test_ignoring_429s_gets_the_address_banned_for_longer_each_time() -> None:
    rules = {
        "weight_limit_1m": 3,
        "weight_window_s": DAY,
        "ban_after_429s": 2,
        "ban_base_s": 1,
        "ban_growth": 3,
    }
    async with venue(**rules) as (sim, _), aiohttp.ClientSession() as http:

        async def get_time() -> tuple[int, dict[str, Any], str | None]:
            async with http.get(sim.rest_url + "/fapi/v1/time") as r:
                return r.status, await r.json(), r.headers.get("Retry-After")

        assert [(await get_time())[0] for _ in range(3)] == [200, 200, 200]
        assert [(await get_time())[0] for _ in range(2)] == [429, 429]
        status, body, retry = await get_time()  # a third request after 429s: banned
        assert (status, body["code"], retry) == (418, -1003, "1")
        first_ban = re.search(r"IP\(127\.0\.0\.1\) banned until (\d+)", body["msg"])
        assert first_ban is not None
        first_until = int(first_ban.group(1))
        assert 0 < first_until - time.time() * 1000 <= 1000
        assert (await get_time())[0] == 418  # still banned
        limits = await admin(sim, "GET", "/_sim/limits")  # admin calls are never refused
        assert limits["addresses"]["127.0.0.1"]["bans"] == 1
        await asyncio.sleep(max(0.0, first_until / 1000 - time.time()) + 0.05)
        # the ban is over but the window is still spent: 429s again, then a longer ban
        assert [(await get_time())[0] for _ in range(2)] == [429, 429]
        status, body, retry = await get_time()
        assert (status, retry) == (418, "3")
        second_ban = re.search(r"banned until (\d+)", body["msg"])
        assert second_ban is not None
        assert 2000 < int(second_ban.group(1)) - time.time() * 1000 <= 3000
        await admin(sim, "DELETE", "/_sim/limits")
        assert (await get_time())[0] == 200


# -- order counts per account ---------------------------------------------------------------------


async def test_new_orders_past_the_10s_limit_get_1015() -> None:
    async with venue(order_limit_10s=3) as (sim, client):
        sim.create_account("bob", "bob-secret", Decimal(100_000))
        alice, bob = client(), client("bob", "bob-secret")
        await alice.load_markets()
        await bob.load_markets()
        await early_in_window(10, 5)
        for _ in range(3):
            await alice.create_order(BTC, "market", "buy", 0.002)
        assert header(alice, "X-MBX-ORDER-COUNT-10S") == "3"
        with pytest.raises(ccxt.DDoSProtection, match="-1015"):
            await alice.create_order(BTC, "market", "buy", 0.002)
        assert "Retry-After" in {k.title() for k in alice.last_response_headers}
        await bob.create_order(BTC, "market", "buy", 0.002)  # another account on the same address
        assert header(bob, "X-MBX-ORDER-COUNT-10S") == "1"
        assert len(sim.engine.accounts[KEY].orders) == 3


async def test_new_orders_past_the_minute_limit_get_1015() -> None:
    async with venue(order_limit_1m=2) as (sim, client):
        rest = client()
        await rest.load_markets()
        await early_in_window(60, 10)
        await rest.create_order(BTC, "market", "buy", 0.002)
        await rest.create_order(BTC, "market", "buy", 0.002)
        with pytest.raises(ccxt.DDoSProtection, match="-1015.*1 MINUTE"):
            await rest.create_order(BTC, "market", "buy", 0.002)
        limits = await admin(sim, "GET", "/_sim/limits")
        assert limits["orders"][KEY]["orders1m"] == 3


# -- websocket connection attempts ----------------------------------------------------------------


async def test_websocket_connection_attempts_are_limited_per_address() -> None:
    async with venue(ws_connect_limit=3) as (sim, client):
        rest = client()
        key = (await rest.fapiPrivatePostListenKey())["listenKey"]
        for _ in range(2):
            async with connect(f"{sim.ws_url}/ws/{key}"):
                pass
        with pytest.raises(websockets.InvalidStatus):  # a dead key is an attempt too
            await connect(f"{sim.ws_url}/ws/not-a-key")
        with pytest.raises(websockets.InvalidStatus) as refused:
            await connect(f"{sim.ws_url}/ws/{key}")
        assert refused.value.response.status_code == 429
        async with connect(f"{sim.ws_url}/ws/{key}", local_addr=(OTHER_ADDRESS, 0)):
            pass  # another source address has its own attempts
        assert (await admin(sim, "GET", "/_sim/limits"))["wsAttempts"]["127.0.0.1"] == 4
        await admin(sim, "DELETE", "/_sim/limits")
        async with connect(f"{sim.ws_url}/ws/{key}"):
            pass


# -- Binance's own Python connector ---------------------------------------------------------------


async def test_binance_connector_sees_the_weight_header_and_its_errors() -> None:
    from binance.error import ClientError
    from binance.um_futures import UMFutures

    async with venue(weight_limit_1m=12, weight_window_s=DAY, ban_after_429s=1, ban_base_s=1) as (sim, _):
        um = UMFutures(KEY, SECRET, base_url=sim.rest_url, show_limit_usage=True)
        answer = await asyncio.to_thread(um.time)
        assert answer["limit_usage"] == {"x-mbx-used-weight-1m": "1"}
        answer = await asyncio.to_thread(um.account)
        assert answer["limit_usage"]["x-mbx-used-weight-1m"] == "6"
        assert answer["data"]["availableBalance"] == "100000"
        answer = await asyncio.to_thread(
            um.new_order, symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.002"
        )
        assert answer["limit_usage"] == {
            "x-mbx-used-weight-1m": "6",
            "x-mbx-order-count-10s": "1",
            "x-mbx-order-count-1m": "1",
        }
        assert answer["data"]["status"] == "FILLED"
        await asyncio.to_thread(um.account)  # 11
        with pytest.raises(ClientError) as throttled:
            await asyncio.to_thread(um.account)  # 16 > 12
        assert (throttled.value.status_code, throttled.value.error_code) == (429, -1003)
        assert int(throttled.value.header["Retry-After"]) >= 1
        with pytest.raises(ClientError) as banned:
            await asyncio.to_thread(um.time)
        assert (banned.value.status_code, banned.value.error_code) == (418, -1003)
        assert "banned until" in banned.value.error_message
        assert banned.value.header["Retry-After"] == "1"
