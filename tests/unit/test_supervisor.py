"""The supervisor: a task that raises or ends is logged with its traceback, counted, alerted and
restarted; one that may not restart is reported dead; a worker's failure shows until it succeeds."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.live.metrics import Metrics
from bot.live.supervisor import Supervisor


class Alerts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any], str]] = []

    def __call__(self, kind: str, subject: str, detail: dict[str, Any], severity: str) -> None:
        self.sent.append((kind, subject, detail, severity))


def make(**kwargs: Any) -> tuple[Supervisor, Metrics, Alerts]:
    metrics, alerts = Metrics(), Alerts()
    return (
        Supervisor(metrics, alerts, restart_backoff_s=0.01, restart_backoff_max_s=0.05, **kwargs),
        metrics,
        alerts,
    )


async def test_a_raising_task_is_reported_and_restarted() -> None:
    sup, metrics, alerts = make()
    runs = 0
    steady = asyncio.Event()

    async def work() -> None:
        nonlocal runs
        runs += 1
        if runs <= 2:
            raise ValueError(f"bug number {runs}")
        steady.set()
        await asyncio.sleep(3600)

    with capture_logs() as logs:
        sup.spawn("upkeep", work)
        await asyncio.wait_for(steady.wait(), 5)
    failed = [e for e in logs if e["event"] == "worker_failed"]
    assert [e["error"] for e in failed] == ["ValueError: bug number 1", "ValueError: bug number 2"]
    assert all(isinstance(e["exc_info"], ValueError) for e in failed)  # rendered as a traceback
    assert metrics.registry.get_sample_value("copybot_worker_failures_total", {"worker": "upkeep"}) == 2
    assert metrics.registry.get_sample_value("copybot_worker_restarts_total", {"worker": "upkeep"}) == 2
    assert [(a[0], a[1], a[3]) for a in alerts.sent] == [("worker_failed", "upkeep", "critical")] * 2
    report = sup.report()["upkeep"]
    assert report["running"]
    assert report["restarts"] == 2
    assert report["failing"]
    assert sup.dead() == []
    assert sup.failing() == ["upkeep"]
    await sup.stop()
    assert sup.dead() == []  # stopped on purpose is not dead


async def test_a_task_that_returns_is_a_failure_too() -> None:
    sup, metrics, _ = make()
    done = asyncio.Event()
    runs = 0

    async def returns() -> None:
        nonlocal runs
        runs += 1
        if runs == 2:
            done.set()
            await asyncio.sleep(3600)

    sup.spawn("reconciler", returns)
    await asyncio.wait_for(done.wait(), 5)
    assert "must not end" in (sup.report()["reconciler"]["last_error"] or "")
    await sup.stop()


async def test_without_restart_a_failed_task_is_dead() -> None:
    sup, _, alerts = make()

    async def boom() -> None:
        raise RuntimeError("gone")

    task = sup.spawn("loop-monitor", boom, restart=False)
    await task
    assert sup.dead() == ["loop-monitor"]
    assert alerts.sent[0][0] == "worker_failed"


async def test_failing_until_success_or_the_window_passes() -> None:
    sup, _, _ = make(failing_window_s=0.2)
    sup.failed("follower:f1", OSError("disk full"), follower="f1")
    assert sup.failing() == ["follower:f1"]
    sup.succeeded("follower:f1")
    assert sup.failing() == []
    sup.failed("follower:f1", OSError("disk full"))
    await asyncio.sleep(0.25)
    assert sup.failing() == []  # quiet for the window: no longer failing
    assert sup.report()["follower:f1"]["failures"] == 2


async def test_a_task_stopped_on_purpose_is_not_dead() -> None:
    sup, _, _ = make()
    sup.spawn("feed:a", lambda: asyncio.sleep(3600))
    sup.spawn("feed:b", lambda: asyncio.sleep(3600))
    await sup.stop(["feed:a"])  # the engine stops the feeds first when it drains
    assert sup.dead() == []
    assert not sup.stopping
    await sup.stop()


async def test_names_are_unique_while_running() -> None:
    sup, _, _ = make()
    sup.spawn("feed:a", lambda: asyncio.sleep(3600))
    with pytest.raises(ValueError, match="already running"):
        sup.spawn("feed:a", lambda: asyncio.sleep(3600))
    await sup.stop()
