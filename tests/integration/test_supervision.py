"""Supervised workers (invariants 1 and 8): one follower whose processing raises does not delay
the others; it is retried from the venue's truth and ends on target; the failure shows on /status,
/metrics, /readyz and in an alert; repeated failures disable that follower alone, with its reason.

The fault is injected where a real one would come from: the follower's journal writes raise (a
full disk, a locked file). ccxt and the exchange are real."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web

from bot.core.types import Intent, TradingState
from bot.journal.store import JournalError
from bot.live.ports import JournalPort
from tests.integration.harness import BTC, Harness, follower


class FlakyJournal:
    """The real journal, except that record_intent raises while `failing` is set."""

    def __init__(self, real: JournalPort) -> None:
        self._real = real
        self.failing = True
        self.raised = 0

    def record_intent(self, intent: Intent) -> None:
        if self.failing:
            self.raised += 1
            raise JournalError("disk I/O error (injected)")
        self._real.record_intent(intent)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@dataclass
class Hook:
    alerts: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.alerts.append(json.loads(await request.read()))
        return web.json_response({"ok": True})


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    h = Hook()
    app = web.Application()
    app.router.add_post("/alerts", h.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    h.url = f"http://127.0.0.1:{runner.addresses[0][1]}/alerts"
    yield h
    await runner.cleanup()


async def start(h: Harness, hook: Hook, **supervision: object) -> None:
    h.env["HOOK_URL"] = hook.url
    h.build_config(
        [follower(f"f{i}", {"mode": "multiplier", "multiplier": "0.1"}) for i in range(3)],
        supervision=supervision,
        alerts={"webhook": {"env": "HOOK_URL"}},
    )
    await h.start_daemon()


async def get(h: Harness, path: str) -> tuple[int, str]:
    assert h.http is not None
    assert h.daemon is not None
    async with h.http.get(f"http://127.0.0.1:{h.daemon.bound_api_port}{path}") as resp:
        return resp.status, await resp.text()


async def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_failing_follower_recovers_while_others_copy_on_time(harness: Harness, hook: Hook) -> None:
    h = harness
    await start(h, hook, max_failures=1000, retry_backoff_s=0.1, retry_backoff_max_s=0.4)
    flaky = FlakyJournal(h.engine.followers["f1"].journal)
    h.engine.followers["f1"].journal = flaky

    sent = time.monotonic()
    await h.trade(BTC, "buy", "0.05")

    async def others_on_target() -> bool:
        held = [(await h.positions(f)).get("BTCUSDT") for f in ("f0", "f2")]
        return held == [Decimal("0.005")] * 2

    await wait_until(others_on_target, 5, "f0 and f2 to copy")
    others_lag_s = time.monotonic() - sent

    async def retried() -> bool:
        return flaky.raised >= 3

    await wait_until(retried, 10, "f1 to fail and be retried")
    assert "BTCUSDT" not in await h.positions("f1")
    # Copying for f0 and f2 was not held up by f1's retries (a generous bound: 2 cores, busy CI).
    assert others_lag_s < 3, others_lag_s

    status, body = await get(h, "/status")
    worker = json.loads(body)["workers"]["follower:f1"]
    assert worker["failing"]
    assert worker["failures"] >= 3
    assert "disk I/O error" in worker["last_error"]
    assert json.loads(body)["followers"]["f1"]["state"] == "ACTIVE"
    status, body = await get(h, "/readyz")
    assert status == 503
    assert json.loads(body)["failing_workers"] == ["follower:f1"]
    _, metrics = await get(h, "/metrics")
    line = next(
        x for x in metrics.splitlines() if x.startswith('copybot_worker_failures_total{worker="follower:f1"}')
    )
    assert float(line.split()[-1]) >= 3

    async def alerted() -> bool:
        return any(a["kind"] == "worker_failed" and a["subject"] == "follower:f1" for a in hook.alerts)

    await wait_until(alerted, 10, "a worker_failed alert")

    flaky.failing = False  # the disk is back

    async def f1_on_target() -> bool:
        return (await h.positions("f1")).get("BTCUSDT") == Decimal("0.005")

    await wait_until(f1_on_target, 10, "f1 to recover")
    await h.settle(fills=1)
    status, body = await get(h, "/readyz")
    assert status == 200, body
    assert h.engine.followers["f1"].state is TradingState.ACTIVE
    for fid in ("f0", "f1", "f2"):  # one order each: the retries placed nothing twice
        assert len((await h.admin(fid))["orders"]) == 1, fid
    h.engine.journal.flush()  # type: ignore[attr-defined]
    trade_id = str((await h.admin("lead"))["trades"][0]["id"])
    with sqlite3.connect(h.config["journal"]["path"]) as db:
        disposed = db.execute(
            "select reason from decisions where follower = 'f1' and trigger = ? and verdict = 'deferred'",
            (trade_id,),
        ).fetchall()
    # The failed batch's lead fill is disposed of by the retry that converged (invariant 1).
    assert disposed, "no disposition recorded for f1"
    assert disposed[-1][0].startswith("planned: "), disposed


async def test_repeated_failures_disable_only_that_follower(harness: Harness, hook: Hook) -> None:
    h = harness
    await start(h, hook, max_failures=3, window_s=60, retry_backoff_s=0.05, retry_backoff_max_s=0.1)
    flaky = FlakyJournal(h.engine.followers["f1"].journal)
    h.engine.followers["f1"].journal = flaky
    await h.trade(BTC, "buy", "0.05")

    async def disabled() -> bool:
        return h.engine.followers["f1"].state is TradingState.HALTED

    await wait_until(disabled, 10, "f1 to be disabled")
    f1 = h.engine.followers["f1"]
    assert f1.standing.code.value == "worker_failures"
    assert "worker failed 3 times" in f1.state_reason
    raised_when_disabled = flaky.raised
    await h.trade(BTC, "buy", "0.05")  # the others go on copying
    await h.settle(fills=2)
    for fid in ("f0", "f2"):
        assert (await h.positions(fid))["BTCUSDT"] == Decimal("0.010")
        assert h.engine.followers[fid].state is TradingState.ACTIVE
    assert "BTCUSDT" not in await h.positions("f1")
    # A disabled follower is not retried: the only further failure is the new fill's own batch.
    await asyncio.sleep(0.5)
    assert flaky.raised == raised_when_disabled + 1

    _, body = await get(h, "/status")
    assert json.loads(body)["followers"]["f1"]["state_code"] == "worker_failures"
    with sqlite3.connect(h.config["journal"]["path"]) as db:
        row = db.execute("select state, code from follower_state where follower = 'f1'").fetchone()
    assert row == ("HALTED", "worker_failures")

    async def alerted() -> bool:
        return any(a["kind"] == "follower_disabled" and a["subject"] == "f1" for a in hook.alerts)

    await wait_until(alerted, 10, "a follower_disabled alert")


async def test_a_crashed_task_is_restarted_and_reported(harness: Harness, hook: Hook) -> None:
    """A bug that ends a long-lived task (here: the lead feed's run raising) is logged, counted,
    alerted and the task restarted; copying resumes."""
    h = harness
    await start(h, hook)
    feed = h.engine.feeds["lead"]
    original = feed.run
    calls = 0

    async def crashing_once() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("feed bug (injected)")
        await original()

    await h.engine.supervisor.stop(["feed:lead"])
    h.engine.supervisor.spawn("feed:lead", crashing_once)

    async def restarted() -> bool:
        return calls >= 2 and feed.live

    await wait_until(restarted, 10, "the feed to be restarted")
    health = h.engine.supervisor.report()["feed:lead"]
    assert health["restarts"] == 1
    assert "feed bug" in health["last_error"]
    await h.trade(BTC, "buy", "0.05")
    await h.settle(fills=1)
    assert (await h.positions("f0"))["BTCUSDT"] == Decimal("0.005")
    _, metrics = await get(h, "/metrics")
    assert 'copybot_worker_restarts_total{worker="feed:lead"} 1.0' in metrics
