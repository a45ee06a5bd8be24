"""Redis killed (-9) and restarted with its append-only file while the lead trades and a shard
consumes: once it is back, the stream holds every trade exactly once and the shard has settled
every one. The lead's account lives in a second redis-server standing in for the venue."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from redis.asyncio import Redis

from bot.cluster.codec import StreamFill, decode
from bot.cluster.consume import GroupConsumer
from bot.cluster.feed import FeedRunner
from bot.cluster.fills import FillPublisher
from bot.cluster.keys import Keys
from bot.cluster.lease import FeedLease
from bot.cluster.redis_client import connect
from tests.cluster.helpers import KEYS_PREFIX, eventually
from tests.cluster.redis_server import RedisServer
from tests.cluster.scripted_lead import ScriptedFeed, trader

KEYS = Keys(KEYS_PREFIX)
TRADES = 80


async def test_a_redis_restart_with_aof_loses_and_doubles_nothing(
    tmp_path: Path, redis_client: Redis
) -> None:
    venue = redis_client  # the lead's account
    server = RedisServer(tmp_path / "cluster", appendonly=True)
    server.start()
    cluster = connect(server.url)
    settled: list[str] = []

    async def settle(item: StreamFill) -> bool:
        settled.append(item.fill.trade_id)
        return True

    lease = FeedLease(cluster, KEYS, "alpha", "feed", ttl_s=1.0)
    feed = FeedRunner(lease, FillPublisher(cluster, KEYS, "alpha", maxlen=10_000),
                      lambda cursors, on_fill: ScriptedFeed(venue, cursors, on_fill))  # fmt: skip
    shard = GroupConsumer(cluster, KEYS, ["alpha"], group="p000", consumer="shard-a", handler=settle,
                          claim_idle_ms=1_000)  # fmt: skip
    tasks = [
        asyncio.create_task(feed.run()),
        asyncio.create_task(shard.run(block_ms=200, retry_s=0.2)),
        asyncio.create_task(trader(venue, TRADES, every_s=0.02)),
    ]
    try:

        async def some_settled() -> bool:
            return len(set(settled)) >= 20

        await eventually(some_settled)
        server.kill()
        await asyncio.sleep(0.5)
        server.start()
        await asyncio.wait_for(tasks[2], 60)

        async def all_settled() -> bool:
            return set(settled) == {str(i) for i in range(TRADES)}

        await eventually(all_settled, timeout_s=30)
        check = Redis.from_url(server.url)
        try:
            entries = await check.xrange(KEYS.stream("alpha"))
            assert [decode(i, f).fill.trade_id for i, f in entries] == [str(i) for i in range(TRADES)]
            await eventually(lambda: _nothing_pending(check), timeout_s=30)
        finally:
            await check.aclose()
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await cluster.aclose()
        server.kill()


async def _nothing_pending(client: Redis) -> bool:
    return int((await client.xpending(KEYS.stream("alpha"), "p000"))["pending"]) == 0
