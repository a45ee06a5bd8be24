"""Shard heartbeats (docs/cluster.md, "Assignment"): each shard stamps itself in one sorted set,
scored by Redis's own clock (TIME inside the script), so hosts' clocks never matter; a shard is live
while its last stamp is younger than the heartbeat ttl. Stamps far older than that are purged."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bot.cluster.keys import Keys

if TYPE_CHECKING:
    from redis.asyncio import Redis

# KEYS[1] shards zset; ARGV[1] shard id, ARGV[2] ttl ms. Returns Redis's time in ms.
HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 100 * tonumber(ARGV[2]))
return now
"""

# KEYS[1] shards zset; ARGV[1] ttl ms. The shards stamped within the ttl.
LIVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - tonumber(ARGV[1])), '+inf')
"""

# KEYS[1] shards zset; ARGV[1] shard id. A clean stop leaves at once.
LEAVE = "return redis.call('ZREM', KEYS[1], ARGV[1])"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def live_shards(client: Redis, keys: Keys, *, ttl_s: float) -> list[str]:
    """The shards stamped within `ttl_s` (Redis's clock), sorted."""
    live = client.register_script(LIVE)
    return sorted(_text(s) for s in await live(keys=[keys.shards()], args=[max(1, int(ttl_s * 1000))]))


class ShardRegistry:
    def __init__(self, client: Redis, keys: Keys, shard: str, *, ttl_s: float) -> None:
        self.client = client
        self.key = keys.shards()
        self.shard = shard
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self._heartbeat = client.register_script(HEARTBEAT)
        self._live = client.register_script(LIVE)
        self._leave = client.register_script(LEAVE)

    async def heartbeat(self) -> int:
        return int(await self._heartbeat(keys=[self.key], args=[self.shard, self.ttl_ms]))

    async def live(self) -> list[str]:
        return sorted(_text(s) for s in await self._live(keys=[self.key], args=[self.ttl_ms]))

    async def leave(self) -> None:
        await self._leave(keys=[self.key], args=[self.shard])
