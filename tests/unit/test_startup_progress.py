"""Start-up with many followers says how far it got while it lasts (bot/live/startup.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
import structlog

from bot.live import startup


async def test_preparing_followers_logs_progress_until_done(monkeypatch: pytest.MonkeyPatch) -> None:
    logs: list[dict[str, Any]] = []

    async def slow_prepare(engine: Any, follower: Any, sem: asyncio.Semaphore) -> None:
        async with sem:
            await asyncio.sleep(0.03)
        # The last one lasts until progress was logged (5 s at most), so that a loaded machine, whose
        # stalled loop may let every sleep above end before the reporter's first turn, still has the
        # start-up running when it reports.
        deadline = time.monotonic() + 5
        while follower is followers[-1] and time.monotonic() < deadline:
            if any(e["event"] == "startup_progress" for e in logs):
                break
            await asyncio.sleep(0.01)

    monkeypatch.setattr(startup, "prepare_follower", slow_prepare)
    followers: list[Any] = [object() for _ in range(20)]
    with structlog.testing.capture_logs() as captured:
        logs = captured
        await startup.prepare_followers(None, followers, asyncio.Semaphore(2), every_s=0.05)  # type: ignore[arg-type]
        progress = [e for e in logs if e["event"] == "startup_progress"]
        await asyncio.sleep(0.12)  # the reporter stopped with the work: nothing more comes
        after = [e for e in logs if e["event"] == "startup_progress"]
    assert progress, "no progress while 20 followers took about 0.3 s"
    assert all(e["followers"] == 20 for e in progress)
    prepared = [e["prepared"] for e in progress]
    assert prepared == sorted(prepared)
    assert prepared[0] < 20  # reported while it lasted
    assert after == progress
