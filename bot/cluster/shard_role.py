"""The shard role on the engine (docs/cluster.md, "Running a shard"): the engine holds the leads
(their snapshots, as in one process) and only the followers of the partitions this shard owns now;
lead fills come from the lead streams through one consumer group per partition and go into
`Engine.on_lead_fill`, the single process's own fan-out, risk gate and executor path.

- **Gaining a partition** (start, or a shard that died or left): wait until the previous owner,
  if it is alive, has retired the partition's followers (it drains their in-flight orders first;
  the `partition_holder` key says who has them, then "released"); if it died instead, or its drain
  timed out, also until no order it may have signed can still land (the venue's recvWindow, as at
  a restart); prepare the
  partition's followers exactly as at start (key check, positions and balance from the venue,
  leverage), register them in the fan-out and queue what converges them on the leads' current
  positions (the reconciler's start comparison). Only then is the partition's group read, so a
  fill it replays finds its followers in place.
- **A fill** is handed to the engine, which drops a trade id it has seen (another partition's
  group delivered it first, or this is a redelivery); the entry is acknowledged once none of the
  partition's followers owes it a disposition (bot/live/settlement.py), else it stays pending and
  comes back after `claim_idle_s`.
- **Losing a partition** (its owner came back): its followers leave the fan-out, their in-flight
  orders finish (bounded by the drain timeout), their workers stop and clients close.

Every beat the shard writes its status (partitions, followers, copy lag) to Redis for the cluster
view (bot/cluster/view.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import structlog

from bot.cluster.assignment import all_partitions, partition_of
from bot.cluster.codec import StreamEntry, StreamSnapshot
from bot.cluster.consume import FillHandler
from bot.cluster.keys import Keys
from bot.cluster.lead_tracker import LeadTracker
from bot.cluster.shard import PartitionLoop
from bot.core.stats import percentile
from bot.core.types import TradingState
from bot.live import follower_worker
from bot.live.engine import Engine
from bot.live.executor import ExecSettings, OrderPlacer
from bot.live.follower import FollowerRuntime
from bot.live.membership import close_client, idle
from bot.live.reconciler import Reconciler
from bot.live.settlement import Settlements
from bot.live.startup import prepare_follower, start_gate

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger("copybot.shard")

# A partition's holder key: the shard id while its engine has the followers, then "released:<id>"
# once it retired them with nothing in flight, or "undrained:<id>" when the drain timed out (an
# order may still land); ids hold no ':'. KEYS[1] the key; ARGV[1] this shard, ARGV[2] the new
# value: set only if the key is still ours.
UNHOLD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('SET', KEYS[1], ARGV[2]) end
return 0
"""
RELEASED = "released:"
UNDRAINED = "undrained:"
BUILD_BATCH = 10  # followers built between yields to the event loop when a partition is gained


class ShardRole:
    def __init__(
        self,
        engine: Engine,
        client: Redis,
        keys: Keys,
        shard: str,
        *,
        partitions: int,
        heartbeat_s: float,
        heartbeat_ttl_s: float,
        claim_idle_s: float,
        tracker: LeadTracker | None = None,
    ) -> None:
        self.engine = engine
        # The leads' positions from the streams (engine.start took their stored state from it)
        self.tracker = tracker or LeadTracker(engine, client, keys)
        self.client = client
        self.keys = keys
        self.shard = shard
        self.partition_count = partitions
        self.claim_idle_s = claim_idle_s
        self.settlements = engine.settlements = Settlements()
        self.members: dict[str, list[str]] = {}  # partition -> follower ids, of the enabled followers
        for f in engine.cfg.followers:
            if f.enabled:
                self.members.setdefault(partition_of(f.id, partitions), []).append(f.id)
        self.serving: dict[str, list[str]] = {}  # partition -> follower ids registered here
        self._locks: dict[str, asyncio.Lock] = {}
        self.status_ttl_ms = int(heartbeat_ttl_s * 10_000)
        self._unhold = client.register_script(UNHOLD)
        self.loop = PartitionLoop(
            client,
            keys,
            shard,
            [lead.id for lead in engine.cfg.leads],
            all_partitions(partitions),
            self.handler_for,
            heartbeat_s=heartbeat_s,
            heartbeat_ttl_s=heartbeat_ttl_s,
            claim_idle_ms=int(claim_idle_s * 1000),
            on_gain=self.gain,
            on_release=self.release,
            on_failure=lambda p, exc: engine.supervisor.failed(f"partition:{p}", exc),
            on_beat=self.publish_status,
        )
        engine.send_fence = self.loop.fence_reason
        # The follower capital per lead this shard serves (set by the service, which owns the AUM
        # service; bot/service/cluster_role.py)
        self.aum_of: Callable[[], dict[str, dict[str, Any]]] = dict

    async def run(self) -> None:
        """The supervised `shard` task: beats, owns partitions, consumes them (cancel to stop: the
        partitions' followers retire and the shard leaves the live list at once)."""
        # Whether this shard's own earlier run may have orders on the wire is read from its journal
        # now, before a consumer journals any fill (bot.live.startup.start_gate).
        for name in sorted({f.venue for f in self.engine.cfg.followers if f.enabled}):
            start_gate(self.engine, self.engine.venues[name], self._exec_settings())
        await self.loop.run()

    def _exec_settings(self) -> ExecSettings:
        ex = self.engine.cfg.executor
        return ExecSettings(lookup_attempts=ex.lookup_attempts, recv_window_ms=ex.recv_window_ms,
                            landing_margin_ms=ex.landing_margin_ms)  # fmt: skip

    # -- partitions ---------------------------------------------------------------------------

    def owned(self) -> list[str]:
        return self.loop.owned()

    def partition_lock(self, partition: str) -> asyncio.Lock:
        """Held by a gain or a release of the partition, and by a reload over all of them
        (bot/cluster/shard_members.py): none of them sees the others' half-done work."""
        return self._locks.setdefault(partition, asyncio.Lock())

    async def gain(self, partition: str) -> None:
        async with self.partition_lock(partition):
            engine = self.engine
            ids = [fid for fid in self.members.get(partition, []) if fid not in engine.followers]
            if not ids:
                self.serving.setdefault(partition, [])
                return
            if await self._take_holder(partition):
                await self._earlier_orders_unlandable(ids)
            followers = []
            for i, fid in enumerate(ids, 1):
                followers.append(
                    engine.build_follower(engine.cfg.follower(fid), engine.follower_settings[fid])
                )
                if i % BUILD_BATCH == 0:
                    # A client costs ~5 ms of CPU: taking over a thousand followers in one go would
                    # hold the event loop past heartbeat_ttl_s, the others would count this shard
                    # dead and it would drop what it is gaining (docs/benchmark.md, "Shards").
                    await asyncio.sleep(0)
            engine.states.restore({f.id: f.standing for f in followers})
            sem = asyncio.Semaphore(16)
            await asyncio.gather(*(prepare_follower(engine, f, sem) for f in followers))
            # The lead's latest position for the converge below, whatever the partition's group
            # delivers next (bot/cluster/lead_tracker.py)
            await self.tracker.catch_up()
            for follower in followers:  # no await from here on: no fill reaches one half-registered
                engine.followers[follower.id] = follower
                for lead in follower.settings.sizings:
                    engine.followers_of.setdefault(lead, []).append(follower)
                engine.supervisor.spawn(f"follower:{follower.id}", partial(follower_worker.run, follower))
            self.serving[partition] = [f.id for f in followers]
            report = await Reconciler(engine).converge(followers, "takeover")
            log.info("partition_followers_ready", shard=self.shard, partition=partition,
                     followers=len(followers), drifts=len(report.drifts))  # fmt: skip

    async def _take_holder(self, partition: str) -> bool:
        """Wait (bounded) until no other live shard holds the partition's followers, then mark it
        ours. Returns whether an order of the previous holder could still land: it died, its drain
        timed out, or who held it is unknown while another shard has read the partition."""
        key = self.keys.partition_holder(partition)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(self.engine.cfg.executor.drain_timeout_s) + 5.0
        while True:
            raw = await self.client.get(key)
            value = None if raw is None else _text(raw)
            if value is None:
                wait = await self._served_elsewhere(partition)
                break
            if value.startswith(RELEASED) or value == self.shard:  # drained; or this shard's earlier run,
                wait = False  # whose orders its journal's start gate waits out
                break
            if value.startswith(UNDRAINED) or value not in self.loop.live:  # undrained, or died
                wait = True
                break
            if loop.time() > deadline:
                log.warning("partition_holder_did_not_release", shard=self.shard, partition=partition,
                            holder=value)  # fmt: skip
                wait = True
                break
            await asyncio.sleep(0.05)
        await self.client.set(key, self.shard)
        return wait

    async def _served_elsewhere(self, partition: str) -> bool:
        """Whether another shard has read this partition's groups (it may have orders on the wire
        for its followers). This shard's own earlier run is covered by its journal, as in one
        process (bot.live.startup.previous_orders_unlandable)."""
        from redis.exceptions import ResponseError

        for lead in self.engine.leads:
            try:
                consumers = await self.client.xinfo_consumers(self.keys.stream(lead), partition)
            except ResponseError:  # no stream or no group yet: nobody read it
                continue
            if any(_text(c["name"]) != self.shard for c in consumers):
                return True
        return False

    async def _earlier_orders_unlandable(self, follower_ids: list[str]) -> None:
        """Another shard may have served these followers until a moment ago, with orders on the
        wire: wait until every order it could have signed before now can no longer land (one wait
        per venue) before their positions are read, as a restarted process does."""
        engine = self.engine
        venues = sorted({engine.cfg.follower(fid).venue for fid in follower_ids})
        waits = []
        for name in venues:
            venue = engine.venues[name]
            waiter = OrderPlacer(venue.loader, "*", venue.adapter, self._exec_settings(), clock=venue.clock)
            waits.append(waiter.wait_until_unlandable(venue.clock.now_ms()))
        await asyncio.gather(*waits)

    async def release(self, partition: str) -> None:
        async with self.partition_lock(partition):
            engine = self.engine
            ids = self.serving.pop(partition, [])
            followers = [engine.followers[fid] for fid in ids if fid in engine.followers]
            for follower in followers:  # out of the fan-out at once: the new owner serves them
                for table in (engine.followers_of, engine.departing_of):  # a leaver's too
                    for members in table.values():
                        if follower in members:
                            members.remove(follower)
            timeout = float(engine.cfg.executor.drain_timeout_s)
            drained = all(await asyncio.gather(*(self._retire(f, timeout) for f in followers)))
            from redis.exceptions import RedisError

            mark = (RELEASED if drained else UNDRAINED) + self.shard
            try:  # only ours: a shard that took it over meanwhile keeps its mark
                await self._unhold(keys=[self.keys.partition_holder(partition)], args=[self.shard, mark])
            except (RedisError, OSError) as exc:  # the next owner waits for a live holder, bounded
                log.warning("partition_unhold_failed", shard=self.shard, partition=partition, error=str(exc))
            if followers:
                log.info("partition_followers_released", shard=self.shard, partition=partition,
                         followers=len(followers))  # fmt: skip

    async def _retire(self, follower: FollowerRuntime, timeout_s: float) -> bool:
        """Stop serving `follower` once nothing of it is in flight (bounded); whether it drained."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not idle(follower) and loop.time() < deadline:
            await asyncio.sleep(0.01)
        drained = idle(follower)
        await self.engine.supervisor.retire(f"follower:{follower.id}")
        await close_client(follower)
        self.engine.followers.pop(follower.id, None)
        self.settlements.forget(follower.id)
        return drained

    # -- fills --------------------------------------------------------------------------------

    def handler_for(self, partition: str) -> FillHandler:
        engine = self.engine

        def members() -> list[str]:
            return self.serving.get(partition, [])

        def excused(fid: str) -> bool:
            # HALTED with nothing queued: a failed batch of a disabled follower is never retried
            follower = engine.followers.get(fid)
            return follower is None or (follower.state is TradingState.HALTED and idle(follower))

        async def handle(item: StreamEntry) -> Awaitable[bool]:
            if item.lead not in engine.leads:
                log.error("entry_of_unknown_lead", lead=item.lead, entry=item.entry_id)
                return _done(True)
            # applied once, in stream order, whichever group delivers it first (engine.on_lead_fill
            # also drops a trade id seen before)
            await self.tracker.handle(item)
            if isinstance(item, StreamSnapshot):
                return _done(True)
            return self.settlements.wait(item.fill.trade_id, members, timeout_s=self.claim_idle_s,
                                         excused=excused)  # fmt: skip

        return handle

    # -- status -------------------------------------------------------------------------------

    async def publish_status(self, live: list[str]) -> None:
        """This shard's line of the cluster view: its partitions and followers, copy lag, backlog
        awaiting settlement. Expires on its own when the shard stops beating."""
        lags = list(self.engine.internal_lag_ms)
        venue_lags = self.engine.lags.pair_summary()
        status = {
            "shard": self.shard,
            "partitions": self.owned(),
            "followers": sum(len(ids) for ids in self.serving.values()),
            "settling": self.settling(),
            "internal_lag_ms": {"p50": percentile(lags, 0.5), "p99": percentile(lags, 0.99)},
            "copy_lag_ms_by_venue": venue_lags,
            "live": live,
            # per lead, the number of the newest stream entry applied (docs/cluster.md, "Lead positions")
            "lead_seq": {lead: seq for lead, (seq, _) in self.tracker.applied.items()},
            # per lead: {"aum": decimal text, "followers": n}, summed over the shards by the view
            "aum": self.aum_of(),
        }
        key = self.keys.shard_status(self.shard)
        await self.client.set(key, json.dumps(status, default=str), px=self.status_ttl_ms)

    def settling(self) -> int:
        return sum(consumer.settling for consumer in self.loop.consumers.values())


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _done(value: bool) -> Awaitable[bool]:
    future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    future.set_result(value)
    return future
