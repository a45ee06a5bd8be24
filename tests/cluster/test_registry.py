"""Shard heartbeats against a real redis-server: a shard is live while it beats, gone after the
ttl or at once when it leaves; Redis's clock decides, not the shards'."""

from __future__ import annotations

from redis.asyncio import Redis

from bot.cluster.keys import Keys
from bot.cluster.registry import ShardRegistry
from tests.cluster.helpers import KEYS_PREFIX, eventually

KEYS = Keys(KEYS_PREFIX)


async def test_shards_are_live_while_they_beat_and_gone_after_the_ttl_or_a_leave(redis_client: Redis) -> None:
    a = ShardRegistry(redis_client, KEYS, "shard-a", ttl_s=0.4)
    b = ShardRegistry(redis_client, KEYS, "shard-b", ttl_s=0.4)
    c = ShardRegistry(redis_client, KEYS, "shard-c", ttl_s=0.4)
    for shard in (a, b, c):
        await shard.heartbeat()
    assert await a.live() == ["shard-a", "shard-b", "shard-c"]
    await c.leave()
    assert await a.live() == ["shard-a", "shard-b"]

    async def only_a_left() -> bool:
        await a.heartbeat()  # a keeps beating, b has died
        return await a.live() == ["shard-a"]

    took = await eventually(only_a_left)
    assert took < 5
    await b.heartbeat()  # b returns
    assert await a.live() == ["shard-a", "shard-b"]
