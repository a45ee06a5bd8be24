"""AlertSink against a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
import structlog
from aiohttp import web

from bot.service.alerts import AlertSink

TOKEN = "s3cr3t-webhook-token-7f9a"


@dataclass
class Hook:
    """A webhook endpoint whose answers the test scripts."""

    statuses: list[int] = field(default_factory=list)  # answered in order, then 200
    requests: list[dict[str, Any]] = field(default_factory=list)
    gate: asyncio.Event | None = None  # when set, the handler waits for it before answering
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(json.loads(await request.read()))
        if self.gate is not None:
            await self.gate.wait()
        status = self.statuses.pop(0) if self.statuses else 200
        return web.json_response({"ok": status < 400}, status=status)


@pytest.fixture
async def hook() -> AsyncIterator[Hook]:
    h = Hook()
    app = web.Application()
    app.router.add_post("/hooks/{token}", h.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    h.url = f"http://127.0.0.1:{port}/hooks/{TOKEN}?key={TOKEN}"
    yield h
    if h.gate is not None:
        h.gate.set()
    await runner.cleanup()


def fast_sink(url: str | None, **kwargs: Any) -> AlertSink:
    return AlertSink(url, backoff_initial_s=0.001, backoff_max_s=0.01, host="test-host", **kwargs)


async def wait_for(predicate: Callable[[], bool]) -> None:
    while not predicate():
        await asyncio.sleep(0.005)


async def test_posts_the_documented_json(hook: Hook) -> None:
    sink = fast_sink(hook.url)
    sink.start()
    sink.send("stop_triggered", "f1", {"equity": Decimal("699.50"), "floor": Decimal("700")}, "critical")
    await sink.stop()
    assert sink.delivered == 1
    (body,) = hook.requests
    assert set(body) == {"ts", "kind", "subject", "severity", "detail", "host"}
    assert body["kind"] == "stop_triggered"
    assert body["subject"] == "f1"
    assert body["severity"] == "critical"
    assert body["host"] == "test-host"
    assert body["detail"] == {"equity": "699.50", "floor": "700"}  # Decimals stay exact
    assert body["ts"].endswith("Z")


async def test_transient_failures_are_retried_until_delivered(hook: Hook) -> None:
    hook.statuses = [503, 500, 429]
    sink = fast_sink(hook.url, attempts=5)
    sink.start()
    sink.send("stream_stale", "alpha", {"silent_s": 75})
    await asyncio.wait_for(wait_for(lambda: sink.delivered == 1), timeout=10)
    await sink.stop()
    assert len(hook.requests) == 4
    assert sink.retries == 3
    assert sink.failed == 0
    assert all(r == hook.requests[0] for r in hook.requests)  # the same alert, not a new one


async def test_attempts_are_bounded_and_the_worker_survives(hook: Hook) -> None:
    hook.statuses = [500, 500, 500]
    sink = fast_sink(hook.url, attempts=3)
    sink.start()
    sink.send("reconcile_drift", "f2", {"symbol": "BTC/USDT:USDT"})
    sink.send("follower_disabled", "f2", {"reason": "auth"})
    await sink.stop()
    assert [r["kind"] for r in hook.requests] == ["reconcile_drift"] * 3 + ["follower_disabled"]
    assert sink.failed == 1
    assert sink.delivered == 1


async def test_a_client_error_status_is_not_retried(hook: Hook) -> None:
    hook.statuses = [400]
    sink = fast_sink(hook.url, attempts=5)
    sink.start()
    sink.send("stream_stale", "alpha", {})
    await sink.stop()
    assert len(hook.requests) == 1
    assert sink.failed == 1
    assert sink.retries == 0


async def test_unreachable_webhook_fails_without_raising() -> None:
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    sink = fast_sink("http://127.0.0.1:1/hook", attempts=2)
    sink.start()
    sink.send("stream_stale", "alpha", {})
    await sink.stop()
    assert sink.failed == 1
    assert sink.retries == 1


async def test_send_does_not_wait_for_a_slow_webhook_and_drops_the_oldest(hook: Hook) -> None:
    hook.gate = asyncio.Event()  # the webhook holds every request until released
    sink = fast_sink(hook.url, queue_size=10, stop_timeout_s=10)
    sink.start()
    sink.send("stream_stale", "first", {})
    await asyncio.wait_for(wait_for(lambda: len(hook.requests) == 1), timeout=10)
    # send() is a plain function: 50 calls complete while the server still holds request one.
    for i in range(50):
        assert sink.send("reconcile_drift", f"n{i}", {}) is None  # type: ignore[func-returns-value]
    assert len(hook.requests) == 1
    assert sink.dropped == 40
    hook.gate.set()
    await sink.stop()
    assert [r["subject"] for r in hook.requests] == ["first"] + [f"n{i}" for i in range(40, 50)]
    assert sink.delivered == 11


async def test_the_url_never_reaches_the_logs(hook: Hook) -> None:
    hook.statuses = [503, 401]
    sink = fast_sink(hook.url, attempts=3)
    with structlog.testing.capture_logs() as logs:
        sink.start()
        sink.send("follower_disabled", "f1", {"reason": "auth"})
        await sink.stop()
    assert sink.failed == 1
    events = {entry["event"] for entry in logs}
    assert {"alerts_webhook_enabled", "alert", "alert_delivery_retry", "alert_delivery_failed"} <= events
    assert TOKEN not in repr(logs)
    assert "/hooks/" not in repr(logs)
    assert sink.target is not None
    assert TOKEN not in sink.target


async def test_without_a_url_alerts_are_only_logged() -> None:
    sink = AlertSink(None)
    with structlog.testing.capture_logs() as logs:
        sink.start()
        sink.send("stop_triggered", "f1", {"reason": "portfolio stop"}, severity="critical")
        await sink.stop()
    assert not sink.enabled
    assert sink.queued == 0
    (entry,) = logs
    assert entry["event"] == "alert"
    assert entry["alert_kind"] == "stop_triggered"
    assert entry["log_level"] == "error"


async def test_odd_input_never_raises(hook: Hook) -> None:
    sink = fast_sink(hook.url)
    sink.start()
    sink.send("stream_stale", "alpha", {"obj": object(), "n": Decimal("1.5")}, severity="nonsense")
    await sink.stop()
    sink.send("stream_stale", "after-stop", {})  # logged only: the sink is closed
    (body,) = hook.requests
    assert body["severity"] == "warning"
    assert body["detail"]["n"] == "1.5"
    assert body["detail"]["obj"].startswith("<object object")
