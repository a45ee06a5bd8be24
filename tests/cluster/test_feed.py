"""The feed role against a real redis-server: a standby takes over from a killed (-9) or
partitioned active feed, backfills from the cursor in Redis, and the lead's stream ends holding
every trade exactly once, in order."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

from redis.asyncio import Redis

from bot.cluster.codec import decode
from bot.cluster.feed import FeedRunner
from bot.cluster.fills import FillPublisher
from bot.cluster.keys import Keys
from bot.cluster.lease import FeedLease
from tests.cluster.helpers import KEYS_PREFIX, eventually
from tests.cluster.redis_server import RedisServer
from tests.cluster.scripted_lead import ScriptedFeed, trader

KEYS = Keys(KEYS_PREFIX)
ROOT = Path(__file__).resolve().parents[2]
TRADES = 60


def runner(client: Redis, holder: str, *, ttl_s: float) -> FeedRunner:
    lease = FeedLease(client, KEYS, "alpha", holder, ttl_s=ttl_s)
    return FeedRunner(lease, FillPublisher(client, KEYS, "alpha", maxlen=10_000),
                      lambda cursors, on_fill: ScriptedFeed(client, cursors, on_fill))  # fmt: skip


async def published(client: Redis) -> list[str]:
    return [decode(i, f).fill.trade_id for i, f in await client.xrange(KEYS.stream("alpha"))]


async def all_published(client: Redis) -> bool:
    return len(await published(client)) >= TRADES


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_a_standby_takes_over_from_a_killed_feed_nothing_lost_or_doubled(
    redis_server: RedisServer, redis_client: Redis
) -> None:
    ttl_s = 1.0
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.cluster.feed_proc", redis_server.url, KEYS_PREFIX, "active", str(ttl_s),
        stdout=asyncio.subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    standby = runner(redis_client, "standby", ttl_s=ttl_s)
    standing_by: asyncio.Task[None] | None = None
    trading: asyncio.Task[None] | None = None
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"held\n"
        standing_by = asyncio.create_task(standby.run())
        trading = asyncio.create_task(trader(redis_client, TRADES, every_s=0.02))

        async def some_published() -> bool:
            return len(await published(redis_client)) >= 15

        await eventually(some_published)
        proc.send_signal(signal.SIGKILL)  # no release: the standby must wait for the lapse
        await asyncio.wait_for(proc.wait(), 30)
        killed = time.monotonic()
        await asyncio.wait_for(standby.lease.held_event.wait(), 30)
        takeover_s = time.monotonic() - killed
        await asyncio.wait_for(trading, 60)
        await eventually(lambda: all_published(redis_client), timeout_s=30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        for task in (standing_by, trading):
            if task is not None:
                await stop(task)
    assert await published(redis_client) == [str(i) for i in range(TRADES)]
    assert standby.lease.epoch == 2
    assert takeover_s < ttl_s + 2  # lapse within ttl, the standby's next attempt within ttl / 3
    assert standby.stats.duplicates >= 1  # its backfill started at the cursor, inclusive


async def test_a_partitioned_feed_is_fenced_and_the_standby_fills_the_gap(redis_client: Redis) -> None:
    ttl_s = 0.6
    active = runner(redis_client, "active", ttl_s=ttl_s)
    standby = runner(redis_client, "standby", ttl_s=ttl_s)
    tasks = [asyncio.create_task(active.run())]
    try:
        await asyncio.wait_for(active.lease.held_event.wait(), 10)
        tasks.append(asyncio.create_task(standby.run()))
        tasks.append(asyncio.create_task(trader(redis_client, TRADES, every_s=0.02)))

        async def some_published() -> bool:
            return len(await published(redis_client)) >= 15

        await eventually(some_published)
        partitioned = asyncio.Event()

        async def renewal_hangs() -> bool:  # the renewal's connection is dead; the feed runs on
            partitioned.set()
            await asyncio.Event().wait()
            return True

        active.lease.renew = renewal_hangs  # type: ignore[method-assign]
        # the active feed also believes its lease is good far longer than it is (a bad clock)
        active.lease._valid_until = float("inf")
        await asyncio.wait_for(standby.lease.held_event.wait(), 30)
        await asyncio.wait_for(tasks[2], 60)
        await eventually(lambda: all_published(redis_client), timeout_s=30)
    finally:
        for task in tasks:
            await stop(task)
    assert partitioned.is_set()
    assert await published(redis_client) == [str(i) for i in range(TRADES)]
    assert active.stats.fenced >= 1  # it tried, and Redis refused every one
    assert standby.lease.epoch == 2
