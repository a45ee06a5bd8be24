"""A shard's side of a config reload (docs/cluster.md, "Changing followers"): which followers of the
file it runs now, its partitions held still while a reload applies, its serving table kept in step
with joins and leaves, and what the cluster's AUM cap needs from Redis: the other shards' status
lines and a per-lead admission lock.

What joins, leaves and changes, and how (`on_join`, `on_leave`, the AUM cap, all or nothing), is the
single process's logic (bot/service/membership.py), run by bot/service/shard_membership.py on the
partitions this shard serves.

- **Which followers.** Those of the partitions whose followers this shard has registered
  (`ShardRole.serving`: set once a gain has prepared them, dropped when a release starts), not the
  partitions its last heartbeat says it owns: a partition gained but not yet prepared gets the new
  member list and prepares it itself; one being released is not touched, so its followers are
  handed over, never sent through `on_leave`.
- **Held still.** A reload takes every partition's lock (the lock a gain or a release holds), in
  one order, so no gain or release runs while it decides and applies.
- **The admission lock.** Two shards checking joiners of one lead against its cap at once would
  both count the same room. The shard admitting takes `admission_lock(lead)` (SET NX PX; released
  by compare-and-delete), reads the other shards' capital, admits, registers, writes its own status
  line and only then lets go, so the next shard's check counts what it admitted. The lock expires
  after `ADMISSION_LOCK_TTL_S` should its holder die; an admission slower than that (a venue that
  hangs on every retry) could overlap another: the bound stated in docs/cluster.md.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import structlog

from bot.cluster.assignment import all_partitions, partition_of
from bot.cluster.shard_role import ShardRole

log = structlog.get_logger("copybot.shard")

# A joiner's admission (key check, positions, balance, leverage: a few requests) takes seconds; a
# lock left by a shard that died lapses after this.
ADMISSION_LOCK_TTL_S = 30.0
# How long a reload waits for another shard's admission of the same lead before it is refused.
ADMISSION_LOCK_WAIT_S = 35.0
ADMISSION_LOCK_POLL_S = 0.05

# KEYS[1] the lock; ARGV[1] the holder's token: delete only if still ours.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class AdmissionBusy(Exception):
    """Another shard held a lead's admission lock for longer than the wait."""


class ShardMembers:
    def __init__(self, role: ShardRole) -> None:
        self.role = role
        self._release = role.client.register_script(RELEASE)

    # -- which followers, and holding the partitions still ------------------------------------

    def partition(self, follower_id: str) -> str:
        return partition_of(follower_id, self.role.partition_count)

    def serves(self, follower_id: str) -> bool:
        """Whether `follower_id` is of a partition whose followers this shard has registered."""
        return self.partition(follower_id) in self.role.serving

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        """Every partition's lock, in partition order (a gain or a release takes one)."""
        async with AsyncExitStack() as stack:
            for partition in all_partitions(self.role.partition_count):
                await stack.enter_async_context(self.role.partition_lock(partition))
            yield

    def lock_of(self, follower_id: str) -> asyncio.Lock:
        return self.role.partition_lock(self.partition(follower_id))

    def set_members(self, follower_ids: Iterable[str]) -> None:
        """The cluster's followers per partition, as the file now says: what a later gain prepares."""
        members: dict[str, list[str]] = {}
        for fid in follower_ids:
            members.setdefault(self.partition(fid), []).append(fid)
        self.role.members = members

    def joined(self, follower_id: str) -> None:
        """A joiner registered in the engine: its partition's fills wait for its dispositions."""
        served = self.role.serving.setdefault(self.partition(follower_id), [])
        if follower_id not in served:
            served.append(follower_id)

    def left(self, follower_id: str) -> None:
        """A leaver retired: it owes no fill anything any more."""
        served = self.role.serving.get(self.partition(follower_id), [])
        if follower_id in served:
            served.remove(follower_id)
        self.role.settlements.forget(follower_id)

    # -- the cluster's AUM cap ----------------------------------------------------------------

    async def other_statuses(self) -> dict[str, dict[str, Any] | None]:
        """The status line of every other live shard (the live list read now from Redis)."""
        role = self.role
        out: dict[str, dict[str, Any] | None] = {}
        for shard in await role.loop.registry.live():
            if shard != role.shard:
                raw = await role.client.get(role.keys.shard_status(shard))
                out[shard] = json.loads(raw) if raw else None
        return out

    async def publish(self) -> None:
        """Write this shard's status line now (joiners included), not at the next heartbeat."""
        from redis.exceptions import RedisError

        try:
            await self.role.publish_status(self.role.loop.live)
        except (RedisError, OSError) as exc:  # the next heartbeat writes it
            log.warning("shard_status_not_written", shard=self.role.shard, error=str(exc))

    @asynccontextmanager
    async def admission_lock(
        self,
        leads: Iterable[str],
        *,
        ttl_s: float = ADMISSION_LOCK_TTL_S,
        wait_s: float = ADMISSION_LOCK_WAIT_S,
    ) -> AsyncIterator[None]:
        """Hold every lead's admission lock (taken in lead order, so two shards never wait on each
        other). Raises AdmissionBusy when one stays taken for `wait_s`."""
        role = self.role
        token = f"{role.shard}:{secrets.token_hex(8)}"
        loop = asyncio.get_running_loop()
        taken: list[str] = []
        try:
            for lead in sorted(set(leads)):
                key = role.keys.admission_lock(lead)
                deadline = loop.time() + wait_s
                while not await role.client.set(key, token, nx=True, px=max(1, int(ttl_s * 1000))):
                    if loop.time() > deadline:
                        holder = await role.client.get(key)
                        who = "" if holder is None else _text(holder).partition(":")[0]
                        raise AdmissionBusy(
                            f"lead {lead}: shard {who or '?'} is admitting followers of it and held "
                            f"the lock for over {wait_s:.0f} s; reload again"
                        )
                    await asyncio.sleep(ADMISSION_LOCK_POLL_S)
                taken.append(key)
                log.info("admission_lock_taken", shard=role.shard, lead=lead)
            yield
        finally:
            await self._let_go(taken, token)

    async def _let_go(self, keys: list[str], token: str) -> None:
        from redis.exceptions import RedisError

        for key in keys:
            try:
                await self._release(keys=[key], args=[token])
            except (RedisError, OSError) as exc:  # it lapses after its ttl
                log.warning("admission_lock_not_released", shard=self.role.shard, key=key, error=str(exc))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
