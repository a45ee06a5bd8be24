"""The request budget of the daemon's source address: 429 and 418 at start-up are waited out (the
daemon starts, it does not exit), and a 429 on a background read pauses background reads for the
venue's Retry-After while orders go on. Real ccxt against the local exchange; the errors are the
exchange's own answers (injected: one rule each, with Retry-After)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

from tests.integration.harness import BTC, Harness, follower


async def used_weight(h: Harness) -> int:
    assert h.http is not None
    async with h.http.get(f"{h.sim.rest_url}/_sim/limits") as resp:
        data: dict[str, Any] = await resp.json()
    return sum(int(a["usedWeight"]) for a in data["addresses"].values())


async def test_start_up_waits_out_429_and_418(harness: Harness) -> None:
    h = harness
    h.build_config([follower(f"f{i}", {"mode": "multiplier", "multiplier": "0.1"}) for i in range(3)])
    await h.fault(path="/fapi/v1/time", method="GET", http_status=418, code=-1003, retry_after=2, count=1)
    await h.fault(path="/fapi/v3/positionRisk", method="GET", http_status=429, code=-1003,
                  retry_after=1, count=2)  # fmt: skip
    started = time.monotonic()
    engine = await h.start_daemon(timeout=40)
    assert time.monotonic() - started >= 2  # the ban's Retry-After was honoured
    budget = next(iter(engine.venues.values())).budget
    assert budget.banned == 1
    assert budget.rate_limited >= 1
    for f in engine.followers.values():
        assert not f.needs_resync
    await h.trade(BTC, "buy", "0.05")
    await h.settle(fills=1)
    for i in range(3):
        assert (await h.positions(f"f{i}"))["BTCUSDT"] == Decimal("0.005")


async def test_429_pauses_background_reads_while_orders_go_on(harness: Harness) -> None:
    h = harness
    n = 4
    # Background reads every half second: the lead's balance, and every follower's positions and
    # balance at each reconcile pass.
    h.build_config([follower(f"f{i}", {"mode": "multiplier", "multiplier": "0.1"}) for i in range(n)],
                   executor={"balance_refresh_s": 0.5}, reconcile={"interval_s": 0.5})  # fmt: skip
    engine = await h.start_daemon()
    budget = next(iter(engine.venues.values())).budget
    await h.fault(path="/fapi/v3/account", method="GET", http_status=429, code=-1003, retry_after=4, count=1)
    deadline = time.monotonic() + 10
    while budget.rate_limited == 0:
        assert time.monotonic() < deadline, "no balance read met the 429"
        await asyncio.sleep(0.05)
    assert budget.pause_left_s() > 2
    before = await used_weight(h)
    await h.trade(BTC, "buy", "0.05")  # orders are not paced: they go out during the pause
    await h.settle(fills=1)
    assert budget.pause_left_s() > 0, "the copy should not have waited for the pause"
    for i in range(n):
        assert (await h.positions(f"f{i}"))["BTCUSDT"] == Decimal("0.005")
    await asyncio.sleep(1.0)
    # No reconcile pass during the pause: at 0.5 s a pass, n followers would add 10 x n weight a pass.
    assert await used_weight(h) - before < 10 * n, "background reads went on during the pause"
    while budget.pause_left_s() > 0:
        await asyncio.sleep(0.1)
    resumed = budget.charged
    await asyncio.sleep(1.5)
    assert budget.charged > resumed, "background reads must resume after Retry-After"


async def test_background_reads_stay_within_their_share_of_the_minute(harness: Harness) -> None:
    """A budget of 200 a minute with half for background reads, a reconcile pass every 0.2 s: the
    reads stop at the share and wait for the next minute; the exchange never counts more than the
    share plus what is not paced (start-up, the lead's backfill, a listenKey)."""
    h = harness
    n = 6
    h.build_config(
        [follower(f"f{i}", {"mode": "multiplier", "multiplier": "0.1"}) for i in range(n)],
        executor={"balance_refresh_s": 0.2},
        reconcile={"interval_s": 0.2},
        venues={"local": {**h.build_config([])["venues"]["local"],
                          "request_budget": {"weight_limit_1m": 200, "background_share": 0.5}}},
    )  # fmt: skip
    engine = await h.start_daemon()
    budget = next(iter(engine.venues.values())).budget
    seen = 0
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        seen = max(seen, await used_weight(h))
        await asyncio.sleep(0.2)
    assert budget.waits >= 1, "start-up alone spent the share (reconcile: 300 a second): reads must wait"
    assert budget.rate_limited == 0
    assert seen <= 200 * 0.9 + 20, seen  # start-up's share plus the unpaced reads, never the venue's 2,400
    # /status shows the address's budget as the daemon counts it.
    assert h.http is not None
    assert h.daemon is not None
    async with h.http.get(f"http://127.0.0.1:{h.daemon.bound_api_port}/status") as resp:
        shown = (await resp.json())["venues"]["local"]["request_budget"]
    assert shown["limit_1m"] == 200
    assert shown["background_share"] == 0.5
    assert shown["waits"] >= 1
    assert shown["rate_limited"] == 0
    assert shown["banned"] == 0
    assert 0 < shown["peak_1m"] <= 200
    await h.trade(BTC, "buy", "0.05")  # orders are not held back by the spent share
    await h.settle(fills=1)
    assert (await h.positions("f0"))["BTCUSDT"] == Decimal("0.005")
