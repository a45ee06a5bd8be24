"""Start-up with many followers says how far it got while it lasts (bot/live/startup.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog

from bot.live import startup


async def test_preparing_followers_logs_progress_until_done(monkeypatch: pytest.MonkeyPatch) -> None:
    async def slow_prepare(engine: Any, follower: Any, sem: asyncio.Semaphore) -> None:
        async with sem:
            await asyncio.sleep(0.03)

    monkeypatch.setattr(startup, "prepare_follower", slow_prepare)
    followers: list[Any] = [object() for _ in range(20)]
    with structlog.testing.capture_logs() as logs:
        await startup.prepare_followers(None, followers, asyncio.Semaphore(2), every_s=0.05)  # type: ignore[arg-type]
        progress = [e for e in logs if e["event"] == "startup_progress"]
        await asyncio.sleep(0.12)  # the reporter stopped with the work: nothing more comes
        after = [e for e in logs if e["event"] == "startup_progress"]
    assert progress, "no progress while 20 followers took about 0.3 s"
    assert all(e["followers"] == 20 for e in progress)
    prepared = [e["prepared"] for e in progress]
    assert prepared == sorted(prepared)
    assert prepared[-1] < 20  # reported while it lasted
    assert after == progress
