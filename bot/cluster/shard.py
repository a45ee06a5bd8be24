"""The shard role's partition loop (docs/cluster.md, "Assignment"): beat, read the live shards,
and consume exactly the partitions this shard owns, one `GroupConsumer` each.

A shard whose heartbeats have failed for the heartbeat ttl (Redis unreachable) stops every
partition: the others count it dead by then and take them over.

Handover: a shard stops a partition as soon as its view says the partition is no longer its own;
a shard that gains a partition waits `grace_s` (at least a heartbeat period, so the previous owner's
view has caught up and it has stopped) before consuming it. Entries the previous owner left pending
are taken over by XAUTOCLAIM after `claim_idle_ms`, as for a dead shard.

`on_gain(partition)` runs before a gained partition is consumed (the shard role prepares the
partition's followers there) and `on_release(partition)` after it stopped, lost or on shutdown (it
retires them); `on_failure` hears of a partition's task that failed (the engine's supervisor shows
it on /readyz) before it is started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import structlog

from bot.cluster.assignment import owned_by
from bot.cluster.consume import FillHandler, GroupConsumer
from bot.cluster.keys import Keys
from bot.cluster.redis_client import raise_if_cancelled
from bot.cluster.registry import ShardRegistry

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger(__name__)


class PartitionLoop:
    def __init__(
        self,
        client: Redis,
        keys: Keys,
        shard: str,
        leads: Sequence[str],
        partitions: Sequence[str],
        handler_for: Callable[[str], FillHandler],  # partition -> the handler of its followers
        *,
        heartbeat_s: float,
        heartbeat_ttl_s: float,
        claim_idle_ms: int,
        grace_s: float | None = None,
        block_ms: int = 500,
        on_gain: Callable[[str], Awaitable[None]] | None = None,
        on_release: Callable[[str], Awaitable[None]] | None = None,
        on_failure: Callable[[str, BaseException], None] | None = None,
        on_beat: Callable[[list[str]], Awaitable[None]] | None = None,
    ) -> None:
        self.client = client
        self.keys = keys
        self.shard = shard
        self.leads = list(leads)
        self.partitions = list(partitions)
        self.handler_for = handler_for
        self.heartbeat_s = heartbeat_s
        self.registry = ShardRegistry(client, keys, shard, ttl_s=heartbeat_ttl_s)
        self.heartbeat_ttl_s = heartbeat_ttl_s
        # Local bound: past this monotonic time the others see this shard as dead (its last
        # successful beat was sent before it, so this view never outlives Redis's).
        self._beat_valid_until = 0.0
        self.claim_idle_ms = claim_idle_ms
        self.grace_s = heartbeat_s * 2 if grace_s is None else grace_s
        self.block_ms = block_ms
        self.on_gain = on_gain
        self.on_release = on_release
        self.on_failure = on_failure
        self.on_beat = on_beat  # after each beat, with the live shards (the role's status line)
        self.running: dict[str, asyncio.Task[None]] = {}
        self.consumers: dict[str, GroupConsumer] = {}
        self._gained_at: dict[str, float] = {}
        self.live: list[str] = []

    def owned(self) -> list[str]:
        return sorted(self.running)

    def fence_reason(self) -> str | None:
        """Why this shard may not send an order now, or None. Past its last good beat plus the ttl
        the others count it dead and serve its followers; a shard frozen that long (SIGSTOP, a VM
        pause) and then resumed must not send what it had queued (docs/cluster.md, "Guarantees")."""
        late_s = time.monotonic() - self._beat_valid_until
        if late_s > 0:
            return f"shard {self.shard} is {late_s:.1f} s past its heartbeat bound: others may serve it"
        return None

    async def run(self) -> None:
        """Forever (cancel to stop: every partition stops and the shard leaves the live list)."""
        from redis.exceptions import RedisError

        try:
            while True:
                raise_if_cancelled()
                sent = time.monotonic()
                try:
                    await self.registry.heartbeat()
                    self._beat_valid_until = sent + self.heartbeat_ttl_s
                    live = self.live = await self.registry.live()
                    self._apply(owned_by(self.shard, self.partitions, live) if self.shard in live else [])
                    if self.on_beat is not None:
                        await self.on_beat(live)
                except (RedisError, OSError) as exc:
                    raise_if_cancelled()
                    log.warning("shard_redis_error", shard=self.shard, error=str(exc))
                    if self.running and time.monotonic() > self._beat_valid_until:
                        # the others count this shard dead by now and take its partitions over:
                        # stop serving them too (as a feed stops past its lease's local bound)
                        log.error("shard_cut_off", shard=self.shard, partitions=self.owned())
                        self.live = []
                        self._apply([])
                await asyncio.sleep(self.heartbeat_s)
        finally:
            await self._stop_all()
            with contextlib.suppress(Exception):
                await self.registry.leave()

    def _apply(self, mine: list[str]) -> None:
        now = time.monotonic()
        for partition in list(self.running):
            if partition not in mine:
                self.running.pop(partition).cancel()
                self.consumers.pop(partition, None)
                log.info("partition_released", shard=self.shard, partition=partition)
        for partition in list(self._gained_at):
            if partition not in mine:
                del self._gained_at[partition]
        for partition in mine:
            task = self.running.get(partition)
            if task is not None and not task.done():
                continue
            if task is not None:  # its consumer failed: log it and start it again at once
                del self.running[partition]
                error = None if task.cancelled() else task.exception()
                log.error(
                    "partition_consumer_failed", shard=self.shard, partition=partition, error=repr(error)
                )
                if self.on_failure is not None and error is not None:
                    self.on_failure(partition, error)
                self._gained_at[partition] = now - self.grace_s
            gained = self._gained_at.setdefault(partition, now)
            if now - gained >= self.grace_s:
                del self._gained_at[partition]
                consumer = GroupConsumer(
                    self.client,
                    self.keys,
                    self.leads,
                    group=partition,
                    consumer=self.shard,
                    handler=self.handler_for(partition),
                    claim_idle_ms=self.claim_idle_ms,
                )
                self.consumers[partition] = consumer
                self.running[partition] = asyncio.create_task(
                    self._serve(partition, consumer), name=f"partition:{partition}"
                )
                log.info("partition_taken", shard=self.shard, partition=partition)

    async def _serve(self, partition: str, consumer: GroupConsumer) -> None:
        try:
            if self.on_gain is not None:
                await self.on_gain(partition)
            await consumer.run(block_ms=self.block_ms)
        finally:
            if self.on_release is not None:
                await self.on_release(partition)

    async def _stop_all(self) -> None:
        tasks = list(self.running.values())
        self.running.clear()
        self.consumers.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
