"""`venues.<name>.source_address`: every connection a daemon opens to the venue (markets, account
reads, orders, the listenKey, the lead's user data stream, the public mark stream) leaves from the
configured address, so two daemons bound to two addresses have two request budgets at the venue,
and two daemons without it share the host's one. The local exchange listens on 127.0.0.1 and counts
weight and websocket connection attempts per peer address (bot/sim/limits.py), as Binance does;
Linux routes all of 127.0.0.0/8 to the loopback interface, so 127.0.0.x needs no setup. Real ccxt
against the local exchange, two daemons in one event loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.config.models import parse_config
from bot.live.engine import Engine
from bot.service.app import Daemon
from bot.sim.config import load_sim_config
from bot.venues import VenueMode, make_rest
from bot.venues.source_address import session as bound_session
from tests.integration.harness import BTC, Harness, follower, run_until_ready

pytestmark = pytest.mark.slow

HARNESS_ADDRESS = "127.0.0.9"  # the test's own lead client, apart from both daemons


async def limits(h: Harness) -> dict[str, Any]:
    assert h.http is not None
    async with h.http.get(f"{h.sim.rest_url}/_sim/limits") as resp:
        data: dict[str, Any] = await resp.json()
    return data


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


@asynccontextmanager
async def bound_lead(h: Harness) -> AsyncIterator[None]:
    """The test's lead client, bound to an address of its own, so the exchange's per-address
    counts hold the daemons' requests only."""
    key, secret = h.keys["lead"]
    urls = h.sim.urls["binance"]
    async with bound_session(HARNESS_ADDRESS) as http:
        client = make_rest("binanceusdm", VenueMode.SIM, api_key=key, secret=secret,
                           rest_url=urls["rest"], ws_url=urls["ws"], session=http)  # fmt: skip
        await client.load_markets()
        h.lead_clients["lead"] = client
        try:
            yield
        finally:
            await client.close()
            h.lead_clients.pop("lead", None)


@asynccontextmanager
async def daemon(h: Harness, name: str, address: str | None, weight_limit: int) -> AsyncIterator[Daemon]:
    """A daemon with one follower of its own (`f-<name>`), following the harness's lead."""
    venue = {**h.build_config([])["venues"]["local"], "request_budget": {"weight_limit_1m": weight_limit}}
    if address is not None:
        venue["source_address"] = address
    row = follower(f"f-{name}", {"mode": "multiplier", "multiplier": "0.1"})
    data = h.build_config([row], venues={"local": venue}, journal={"path": str(h.tmp / f"{name}.sqlite")})
    running = Daemon(parse_config(data, source=name, env=h.env), api_port=0)
    task, _ = await run_until_ready(running, timeout=30)
    try:
        yield running
    finally:
        running.request_stop("test")
        await task


Pair = tuple[str | None, str | None]


async def run_pair(tmp: Path, addresses: Pair) -> tuple[dict[str, Any], list[Engine]]:
    """Two daemons side by side (one address each, or None), the lead trades once, both copy it;
    the exchange's per-address view afterwards, and the engines (stopped)."""
    # A window longer than the test, so no minute boundary resets the counts half way.
    sim_config = load_sim_config(tick_interval_s=0, weight_window_s=3600)
    async with Harness(tmp, sim_config) as h, AsyncExitStack() as stack:
        h.build_config([])  # the lead's account
        await stack.enter_async_context(bound_lead(h))
        daemons = [
            await stack.enter_async_context(daemon(h, name, address, weight_limit=2400))
            for name, address in zip(("a", "b"), addresses, strict=True)
        ]
        await h.trade(BTC, "buy", "0.05")
        deadline = asyncio.get_running_loop().time() + 15
        for name in ("a", "b"):
            while (await h.positions(f"f-{name}")).get("BTCUSDT") != Decimal("0.005"):
                assert asyncio.get_running_loop().time() < deadline, f"f-{name} not on target"
                await asyncio.sleep(0.05)
        assert h.http is not None
        engines = []
        for running, address in zip(daemons, addresses, strict=True):
            api = f"http://127.0.0.1:{running.bound_api_port}"
            async with h.http.get(f"{api}/status") as resp:
                shown = (await resp.json())["venues"]["local"]
            assert shown["source_address"] == address
            async with h.http.get(f"{api}/metrics") as resp:
                exported = samples(await resp.text())
            # /metrics: the address's budget, labelled with the address ("" when unset).
            labels = (("source_address", address or ""), ("venue", "local"))
            assert exported[("copybot_request_weight_limit", labels)] == 2400
            assert exported[("copybot_request_weight_peak", labels)] >= shown["request_budget"]["peak_1m"] > 0
            assert exported[("copybot_request_rate_limited_total", labels)] == 0
            assert exported[("copybot_request_banned_total", labels)] == 0
            assert running.engine is not None
            engines.append(running.engine)
        return await limits(h), engines


async def test_two_daemons_bound_to_two_addresses_have_two_budgets(tmp_path: Path) -> None:
    seen, engines = await run_pair(tmp_path, ("127.0.0.2", "127.0.0.3"))
    weight = {a: v["usedWeight"] for a, v in seen["addresses"].items()}
    # Every request of each daemon came from its own address; none from the host's default.
    assert set(weight) == {"127.0.0.2", "127.0.0.3", HARNESS_ADDRESS}, weight
    assert weight["127.0.0.2"] > 0
    assert weight["127.0.0.3"] > 0
    # The lead's user data stream and the public mark stream of each daemon too.
    assert set(seen["wsAttempts"]) == {"127.0.0.2", "127.0.0.3"}, seen["wsAttempts"]
    assert all(n >= 2 for n in seen["wsAttempts"].values()), seen["wsAttempts"]
    # Each daemon's budget, fed by the exchange's used-weight header, counted its own address's
    # weight only, never the other daemon's.
    for engine, address in zip(engines, ("127.0.0.2", "127.0.0.3"), strict=True):
        assert 0 < engine.venues["local"].budget.peak_1m <= weight[address]


async def test_two_daemons_without_the_key_share_the_hosts_address(tmp_path: Path) -> None:
    seen, engines = await run_pair(tmp_path, (None, None))
    weight = {a: v["usedWeight"] for a, v in seen["addresses"].items()}
    assert set(weight) == {"127.0.0.1", HARNESS_ADDRESS}, weight
    assert set(seen["wsAttempts"]) == {"127.0.0.1"}, seen["wsAttempts"]
    assert seen["wsAttempts"]["127.0.0.1"] >= 4  # both daemons' lead and mark streams
    # The two daemons send the same requests; the later one's budget, fed by the exchange's
    # used-weight header, counted more than half the address's weight: the other daemon's too.
    peaks = [engine.venues["local"].budget.peak_1m for engine in engines]
    assert weight["127.0.0.1"] / 2 < max(peaks) <= weight["127.0.0.1"], (peaks, weight)
