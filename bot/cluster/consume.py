"""A shard's consumption of lead fills through a Redis consumer group (docs/cluster.md, "Shards").

Every lead has one stream; every follower partition has one consumer group on each lead stream,
named after the partition, so each partition sees every fill of the leads it follows and keeps its
own read position. The shard that owns a partition reads its group as consumer `consumer` (the
shard's `cluster.id`). An entry is acknowledged (XACK) only once the handler says the fill is
settled for every follower the partition owns; until then it stays in the group's pending-entry
list. An entry left pending longer than `claim_idle_ms` (its shard died, or is stuck) is taken over
with XAUTOCLAIM by whichever shard now reads the group, its own retries included. Redelivery is
harmless because follower client ids are deterministic and the executor never resends an order that
could still land (docs/guarantees.md).

Entries are handled one at a time, in stream order per lead: the engine applies a lead's fills in
order (its position is built from them).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from bot.cluster.codec import BadEntry, StreamEntry, decode_entry
from bot.cluster.keys import Keys
from bot.cluster.redis_client import is_busy_group, raise_if_cancelled

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger(__name__)

# True: the fill is settled for every owned follower (acknowledge it); False: not yet (keep it
# pending; it comes back after claim_idle_ms). An exception counts as False and is logged.
# The handler may instead return an awaitable of that answer: the entry is then acknowledged when
# (and if) it resolves to True, while the next entries are read and handled (the shard role hands
# a fill to the engine and goes on; its followers settle it in their own time).
FillHandler = Callable[[StreamEntry], Awaitable["bool | Awaitable[bool]"]]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(slots=True)
class ConsumerStats:
    handled: int = 0
    acked: int = 0
    unsettled: int = 0  # handler said not settled, or raised
    claimed: int = 0  # taken over with XAUTOCLAIM
    bad: int = 0  # undecodable entries, acknowledged and dropped
    lost: list[str] = field(default_factory=list)  # pending entries trimmed from the stream unsettled


class GroupConsumer:
    """One consumer (this shard) of one group (a follower partition) on the streams of `leads`."""

    def __init__(
        self,
        client: Redis,
        keys: Keys,
        leads: Sequence[str],
        *,
        group: str,
        consumer: str,
        handler: FillHandler,
        claim_idle_ms: int,
        count: int = 100,
    ) -> None:
        self.client = client
        self.keys = keys
        self.streams = {keys.stream(lead): lead for lead in leads}
        self.group = group
        self.consumer = consumer
        self.handler = handler
        self.claim_idle_ms = claim_idle_ms
        self.count = count
        self.stats = ConsumerStats()
        self._acking: dict[tuple[str, str], asyncio.Task[None]] = {}  # (stream, entry) awaiting settlement
        # settlements that resolve together must not take a pooled connection each
        self._ack_slots = asyncio.Semaphore(2)

    async def ensure_groups(self) -> None:
        """Create the group on every lead stream (and the stream itself) if missing. A new group
        starts at the beginning of what the stream retains, so fills published before any shard
        came up are not skipped."""
        for stream in self.streams:
            try:
                await self.client.xgroup_create(stream, self.group, id="0", mkstream=True)
            except Exception as exc:
                if not is_busy_group(exc):
                    raise

    async def start(self) -> int:
        """Groups first, then this consumer's own pending entries (delivered to it before a
        restart and never acknowledged). Returns how many entries were handled."""
        await self.ensure_groups()
        handled = 0
        for stream in self.streams:
            after = "0"  # page through by id: entries left unsettled stay pending, so never re-read
            while True:
                reply: Any = await self.client.xreadgroup(
                    self.group, self.consumer, {stream: after}, count=self.count
                )
                entries = reply[0][1] if reply else []
                if not entries:
                    break
                handled += await self._handle(stream, entries)
                after = _text(entries[-1][0])
        return handled

    async def poll(self, *, block_ms: int | None = 1000) -> int:
        """One round: take over entries idle past the bound, then read new ones (waiting up to
        `block_ms` for some). Returns how many entries were handled."""
        return await self.claim_idle() + await self._read_new(block_ms=block_ms)

    async def run(self, *, block_ms: int = 1000, retry_s: float = 0.5) -> None:
        """`start`, then `poll` forever (cancel to stop; unacknowledged entries stay pending). A Redis
        error (restart, failover, cut connection) is logged and, after `retry_s`, consumption starts
        over with `start`: the groups are created again if Redis lost them, and this consumer's own
        pending entries, an entry whose XACK failed among them, are handled again."""
        from redis.exceptions import RedisError

        started = False
        try:
            while True:
                raise_if_cancelled()
                try:
                    if not started:
                        await self.start()
                        started = True
                    await self.poll(block_ms=block_ms)
                except (RedisError, OSError) as exc:
                    raise_if_cancelled()
                    log.warning("consume_redis_error", group=self.group, consumer=self.consumer,
                                error=str(exc))  # fmt: skip
                    started = False
                    await asyncio.sleep(retry_s)
        finally:
            # what is still settling stays pending in Redis: whoever reads the group next has it
            waiting = list(self._acking.values())
            for task in waiting:
                task.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)

    async def claim_idle(self) -> int:
        handled = 0
        for stream in self.streams:
            start = "0-0"
            while True:
                reply = await self.client.xautoclaim(
                    stream, self.group, self.consumer, self.claim_idle_ms, start_id=start, count=self.count
                )
                start, entries = _text(reply[0]), reply[1]
                deleted = [_text(i) for i in reply[2]] if len(reply) > 2 else []
                if deleted:
                    # trimmed from the stream while pending: XAUTOCLAIM drops them from the list
                    self.stats.lost.extend(deleted)
                    log.error("pending_fills_trimmed_unsettled", stream=stream, group=self.group,
                              entries=deleted)  # fmt: skip
                if entries:
                    self.stats.claimed += len(entries)
                    log.warning("fills_claimed", stream=stream, group=self.group, consumer=self.consumer,
                                entries=[_text(e[0]) for e in entries])  # fmt: skip
                handled += await self._handle(stream, entries)
                if start == "0-0":
                    break
        return handled

    async def _read_new(self, *, block_ms: int | None) -> int:
        reply: Any = await self.client.xreadgroup(
            self.group,
            self.consumer,
            dict.fromkeys(self.streams, ">"),
            count=self.count,
            block=block_ms,
        )
        handled = 0
        for stream, entries in reply or ():
            handled += await self._handle(_text(stream), entries)
        return handled

    async def _handle(self, stream: str, entries: Sequence[Any]) -> int:
        handled = 0
        for entry_id, raw in entries:
            if raw is None:  # a pending entry trimmed from the stream (XREADGROUP with id 0)
                self.stats.lost.append(_text(entry_id))
                log.error("pending_fills_trimmed_unsettled", stream=stream, group=self.group,
                          entries=[_text(entry_id)])  # fmt: skip
                await self.client.xack(stream, self.group, entry_id)
                continue
            handled += 1
            self.stats.handled += 1
            if (stream, _text(entry_id)) in self._acking:
                continue  # claimed back while its settlement is still awaited here
            try:
                item = decode_entry(entry_id, raw)
            except BadEntry as exc:
                self.stats.bad += 1
                log.error("bad_fill_entry_dropped", stream=stream, group=self.group, error=str(exc))
                await self.client.xack(stream, self.group, entry_id)
                continue
            try:
                settled = await self.handler(item)
            except Exception as exc:
                log.exception("fill_handler_failed", stream=stream, group=self.group, entry=item.entry_id,
                              ref=item.ref, error=str(exc))  # fmt: skip
                settled = False
            if not isinstance(settled, bool):
                key = (stream, item.entry_id)
                self._acking[key] = asyncio.create_task(self._ack_when(stream, item, settled))
                continue
            if settled:
                await self.client.xack(stream, self.group, entry_id)
                self.stats.acked += 1
            else:
                self.stats.unsettled += 1
        return handled

    async def _ack_when(self, stream: str, item: StreamEntry, settling: Awaitable[bool]) -> None:
        from redis.exceptions import RedisError

        try:
            try:
                settled = await settling
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.exception("fill_settlement_failed", stream=stream, group=self.group,
                              entry=item.entry_id, ref=item.ref, error=str(exc))  # fmt: skip
                settled = False
            if not settled:
                self.stats.unsettled += 1
                log.warning("fill_not_settled", stream=stream, group=self.group, entry=item.entry_id,
                            ref=item.ref)  # fmt: skip
                return
            try:
                async with self._ack_slots:
                    await self.client.xack(stream, self.group, item.entry_id)
                self.stats.acked += 1
            except (RedisError, OSError) as exc:  # stays pending: handled again after a restart or claim
                log.warning("ack_failed", stream=stream, group=self.group, entry=item.entry_id,
                            error=str(exc))  # fmt: skip
        finally:
            self._acking.pop((stream, item.entry_id), None)

    @property
    def settling(self) -> int:
        """Entries handed on and awaiting their settlement before they are acknowledged."""
        return len(self._acking)

    async def pending(self) -> int:
        """Entries delivered and not yet acknowledged, over all of this group's lead streams."""
        total = 0
        for stream in self.streams:
            summary = await self.client.xpending(stream, self.group)
            total += int(summary["pending"])
        return total
