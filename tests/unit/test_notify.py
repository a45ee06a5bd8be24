"""Notifications through apprise, against a real aiohttp receiver on 127.0.0.1 (apprise's json://
and form:// targets): a burst is one message, no secret reaches a message or a log line, and each
destination only gets the severities it asked for."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from bot.config.secrets import register_url_parts
from bot.core.redaction import register_secret
from bot.service.alerts import AlertSink
from bot.service.logs import configure_logging, reset_logging
from bot.service.notify import Notifications

TOKEN = "n0tify-t0ken-5e1f9a7c"
API_KEY = "lead-api-key-3b8c1d2e9f"


@dataclass
class Receiver:
    messages: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    async def handle(self, request: web.Request) -> web.Response:
        if request.content_type == "application/json":
            body = json.loads(await request.read())
        else:
            body = dict(await request.post())
        self.messages.append({"path": request.path, **body})
        return web.json_response({"ok": True})

    def url(self, scheme: str, path: str) -> str:
        return f"{scheme}://127.0.0.1:{self.port}/{path}/{TOKEN}"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    app = web.Application()
    app.router.add_post("/{tail:.*}", r.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    r.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield r
    await runner.cleanup()


async def delivered(receiver: Receiver, count: int, within_s: float = 10.0) -> None:
    """Until `count` messages arrived: delivery runs off the event loop, slower on a busy machine."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while len(receiver.messages) < count and loop.time() < deadline:
        await asyncio.sleep(0.02)


def sink_for(targets: list[tuple[str, str]], **kwargs: Any) -> AlertSink:
    for url, _ in targets:
        register_url_parts(url)  # as config does when it resolves the URL
    notifications = Notifications(targets, gather_s=0.3, tick_s=0.05, **kwargs)
    return AlertSink(None, notifications=notifications, host="test-host")


async def test_a_burst_of_a_hundred_is_one_message(receiver: Receiver) -> None:
    sink = sink_for([(receiver.url("json", "chat"), "warning")])
    sink.start()
    for i in range(100):
        sink.send("worker_failed", f"follower:f{i}", {"error": "OrderDenied: max_total_exposure"}, "critical")
    await delivered(receiver, 1)  # after the gather window (0.3 s), the burst goes out as one
    await asyncio.sleep(0.3)  # anything split off it would follow within another window
    await sink.stop()
    (message,) = receiver.messages
    assert message["title"] == "copybot CRITICAL: A copybot task failed (100x)"
    assert message["type"] == "failure"
    body = message["message"]
    assert "task follower:f0: OrderDenied: max_total_exposure" in body
    assert "... and 90 more of the same kind" in body
    assert "What copybot did:" in body
    assert "What to do:" in body
    assert sink.notifications is not None
    assert sink.notifications.report() == [
        {"destination": "json://", "min_severity": "warning", "delivered": 1, "failed": 0}
    ]


async def test_later_alerts_of_a_kind_wait_for_the_window_and_go_out_together(receiver: Receiver) -> None:
    sink = sink_for([(receiver.url("json", "chat"), "info")], group_window_s=1.0)
    sink.start()
    sink.send("stream_stale", "alpha", {"lead": "alpha", "error": "StreamStale: silent 30 s"})
    await delivered(receiver, 1)
    assert len(receiver.messages) == 1
    for _ in range(5):
        sink.send("stream_stale", "alpha", {"lead": "alpha", "error": "StreamStale: silent 30 s"})
    await asyncio.sleep(0.2)
    assert len(receiver.messages) == 1  # inside the window: held
    await asyncio.sleep(1.0)
    await sink.stop()
    assert [m["title"] for m in receiver.messages] == [
        "copybot WARNING: Lead stream stale",
        "copybot WARNING: Lead stream stale (5x)",
    ]


async def test_hourly_limit_holds_messages_and_stop_sends_them_merged(receiver: Receiver) -> None:
    sink = sink_for([(receiver.url("json", "chat"), "info")], max_per_hour=1)
    sink.start()
    sink.send("kill_switch", "*", {"from": "active", "to": "halted", "reason": "kill switch file /run/KILL"},
              "critical")  # fmt: skip
    await asyncio.sleep(0.6)
    sink.send("reconcile_drift", "f1", {"follower": "f1", "drifts": [
        {"symbol": "BTC/USDT:USDT", "position": "0.010", "target": "0.012", "size": "0.002"}]})  # fmt: skip
    await asyncio.sleep(0.6)
    assert len(receiver.messages) == 1  # the limit holds the second one
    await sink.stop()
    assert len(receiver.messages) == 2
    drift = receiver.messages[1]["message"]
    assert "follower f1: BTC/USDT:USDT off by 0.002 (position 0.010, target 0.012)" in drift


async def test_each_destination_gets_only_its_severities(receiver: Receiver) -> None:
    sink = sink_for(
        [(receiver.url("json", "everything"), "info"), (receiver.url("form", "pager"), "critical")]
    )
    sink.start()
    sink.send("kill_switch_released", "*", {"from": "halted", "to": "active", "reason": "removed"}, "info")
    sink.send("state_changed", "f1", {"from": "active", "to": "reduce_only", "reason": "operator"}, "warning")
    sink.send("follower_disabled", "f2", {"from": "active", "to": "halted", "reason": "key refused"},
              "critical")  # fmt: skip
    await asyncio.sleep(0.8)
    await sink.stop()
    by_path: dict[str, list[str]] = {}
    for m in receiver.messages:
        by_path.setdefault(m["path"].split("/")[1], []).append(m["title"])
    assert sorted(by_path["everything"]) == [
        "copybot CRITICAL: Follower disabled",
        "copybot INFO: Kill switch released",
        "copybot WARNING: Trading state changed",
    ]
    assert by_path["pager"] == ["copybot CRITICAL: Follower disabled"]  # form:// target, critical only


async def test_no_secret_in_any_message_or_log_line(receiver: Receiver) -> None:
    register_secret(API_KEY)
    stream = io.StringIO()
    configure_logging("debug", json=True, stream=stream)  # the daemon's chain, redactor included
    try:
        sink = sink_for([(receiver.url("json", "chat"), "info")])
        sink.start()
        # A venue error text that carries a key (ccxt puts signed URLs in its messages).
        sink.send("worker_failed", "follower:f1", {"error": f"AuthenticationError: key {API_KEY} refused"},
                  "critical")  # fmt: skip
        await asyncio.sleep(0.6)
        await sink.stop()
    finally:
        reset_logging()
    assert len(receiver.messages) == 1
    # What the person reads (the request path is the destination's own URL, token and all).
    raw = json.dumps([{k: v for k, v in m.items() if k != "path"} for m in receiver.messages])
    assert TOKEN not in raw
    assert API_KEY not in raw
    assert "***" in receiver.messages[0]["message"]  # the key was scrubbed, the rest of the line kept
    logged = stream.getvalue()
    assert TOKEN not in logged
    assert API_KEY not in logged
    events = [json.loads(line) for line in logged.splitlines()]
    assert any(e["event"] == "notifications_enabled" and e["destinations"] == ["json://"] for e in events)
    assert any(e["event"] == "alert" and "***" in e["detail"]["error"] for e in events)
