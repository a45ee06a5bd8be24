"""The per-lead admission lock of the shards (bot/cluster/shard_members.py) on a real redis-server:
a second shard waits for the first, a lock left by a dead shard lapses, and a holder whose lock
lapsed never deletes the next holder's."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from redis.asyncio import Redis

from bot.cluster.keys import Keys
from bot.cluster.shard_members import AdmissionBusy, ShardMembers

KEYS = Keys("t")


def members(client: Redis, shard: str) -> ShardMembers:
    role = SimpleNamespace(client=client, keys=KEYS, shard=shard)  # what the lock reads of a ShardRole
    return ShardMembers(role)  # type: ignore[arg-type]


async def test_a_second_shard_waits_for_the_first_and_is_refused_past_its_wait(redis_client: Redis) -> None:
    a, b = members(redis_client, "shard-a"), members(redis_client, "shard-b")
    async with a.admission_lock(["alpha"]):
        with pytest.raises(AdmissionBusy, match="lead alpha: shard shard-a is admitting followers of it"):
            async with b.admission_lock(["alpha"], wait_s=0.2):
                pass
        async with b.admission_lock(["beta"], wait_s=0.2):  # another lead is free
            pass
        waiting = asyncio.create_task(_hold(b, ["beta", "alpha"]))
        await asyncio.sleep(0.2)
        assert not waiting.done()
    await asyncio.wait_for(waiting, 2)  # let go at once on the way out
    assert await redis_client.get(KEYS.admission_lock("alpha")) is None
    assert await redis_client.get(KEYS.admission_lock("beta")) is None


async def test_a_dead_holders_lock_lapses_and_its_late_release_keeps_the_next_holders(
    redis_client: Redis,
) -> None:
    a, b = members(redis_client, "shard-a"), members(redis_client, "shard-b")
    held_by_a = a.admission_lock(["alpha"], ttl_s=0.3)
    await held_by_a.__aenter__()
    await asyncio.sleep(0.4)  # a paused past its ttl: b takes the lock
    async with b.admission_lock(["alpha"], wait_s=1):
        await held_by_a.__aexit__(None, None, None)  # a resumes and lets go: of nothing of b's
        holder = await redis_client.get(KEYS.admission_lock("alpha"))
        assert isinstance(holder, bytes)
        assert holder.decode().startswith("shard-b:")
    assert await redis_client.get(KEYS.admission_lock("alpha")) is None  # b let go of its own
    await redis_client.set(KEYS.admission_lock("alpha"), "shard-c:dead", px=300)  # a shard that died
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with b.admission_lock(["alpha"], wait_s=2):
        assert 0.1 < loop.time() - began < 1.0


async def _hold(m: ShardMembers, leads: list[str]) -> None:
    async with m.admission_lock(leads, wait_s=5):
        pass
