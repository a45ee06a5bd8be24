"""The feed role end to end: two `copybot run --role feed` processes on one lead of the local
exchange, a real redis-server. The active one is killed with SIGKILL (or paused with SIGSTOP, a
partition it does not know about) while the lead trades; the standby must publish within 2 s of the
lease lapsing, and the lead's stream must end with every lead trade exactly once."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.cluster.engine_cluster import KEYS, Cluster, sim_config, trade_steadily, until
from tests.cluster.redis_server import RedisServer
from tests.integration.harness import Harness

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


async def start_feeds(c: Cluster, client: Redis) -> tuple[str, str]:
    """Both feeds up and one holding the lease: (active, standby)."""
    await c.spawn("feed", "feed-a")
    await c.spawn("feed", "feed-b")
    for proc in c.procs.values():
        await c.ready(proc)
    await until(lambda: _held(client), 10, "a feed holding the lease")
    active = await Cluster.holder(client)
    assert active in ("feed-a", "feed-b")
    return active, "feed-b" if active == "feed-a" else "feed-a"


async def _held(client: Redis) -> bool:
    return await Cluster.holder(client) is not None


async def lapse_and_takeover(client: Redis, active: str) -> tuple[float, int]:
    """Wait for the lease to leave `active`: (monotonic time it lapsed, the active's epoch)."""
    value = await client.get(KEYS.lease("lead"))
    assert value is not None
    epoch = int(value.decode().partition(":")[0])

    async def gone() -> bool:
        return await Cluster.holder(client) != active

    await until(gone, 15, "the lease to lapse", every_s=0.01)
    return time.monotonic(), epoch


async def test_the_standby_feed_publishes_within_2_s_of_a_killed_feeds_lease_lapse(
    tmp_path: Path, redis_server: RedisServer, redis_client: Redis
) -> None:
    async with Harness(tmp_path, sim_config()) as h:
        c = Cluster(h, redis_server, tmp_path)
        try:
            active, _standby = await start_feeds(c, redis_client)
            trading = asyncio.create_task(trade_steadily(h, 30, every_s=0.1))

            async def some_published() -> bool:
                return len(await Cluster.stream(redis_client)) >= 8

            await until(some_published, 20, "the active feed publishing")
            c.kill9(active)
            lapsed, old_epoch = await lapse_and_takeover(redis_client, active)

            async def newer_epoch_published() -> bool:
                return any(epoch > old_epoch for _, _, epoch, _ in await Cluster.stream(redis_client))

            await until(newer_epoch_published, 10, "the standby publishing", every_s=0.01)
            first_new = min(p for _, _, epoch, p in await Cluster.stream(redis_client) if epoch > old_epoch)
            # published_ms is the standby's wall clock; the lapse was seen on this host's clocks
            takeover_s = first_new / 1000 - (time.time() - (time.monotonic() - lapsed))
            await trading
            expected = await c.lead_trade_ids()

            async def all_published() -> bool:
                return len(await Cluster.stream(redis_client)) >= len(expected)

            await until(all_published, 20, "every lead trade in the stream")
            published = [trade_id for _, trade_id, _, _ in await Cluster.stream(redis_client)]
        finally:
            codes = await c.stop_all()
    assert codes == {_standby: 0}, codes  # a clean stop releases the lease and exits 0
    assert len(published) == len(set(published)), "a fill was published twice"
    assert set(published) == set(expected), f"missing: {set(expected) - set(published)}"
    print(f"standby published {takeover_s:.2f} s after the lease lapsed")
    assert takeover_s < 2.0, takeover_s


async def test_a_partitioned_old_feed_publishes_nothing(
    tmp_path: Path, redis_server: RedisServer, redis_client: Redis
) -> None:
    """The active feed is frozen (SIGSTOP: it cannot renew, and does not know), the standby takes
    over, then the old feed runs on with fills in hand and its old token: Redis refuses it."""
    async with Harness(tmp_path, sim_config()) as h:
        c = Cluster(h, redis_server, tmp_path)
        try:
            active, standby = await start_feeds(c, redis_client)
            trading = asyncio.create_task(trade_steadily(h, 24, every_s=0.1))

            async def some_published() -> bool:
                return len(await Cluster.stream(redis_client)) >= 5

            await until(some_published, 20, "the active feed publishing")
            c.procs[active].proc.send_signal(signal.SIGSTOP)
            _, old_epoch = await lapse_and_takeover(redis_client, active)

            async def standby_holds() -> bool:
                return await Cluster.holder(redis_client) == standby

            await until(standby_holds, 10, "the standby holding the lease")
            await asyncio.sleep(1.0)  # the lead trades on: the frozen feed's socket buffers fills
            c.procs[active].proc.send_signal(signal.SIGCONT)
            await trading
            expected = await c.lead_trade_ids()

            async def all_published() -> bool:
                return len(await Cluster.stream(redis_client)) >= len(expected)

            await until(all_published, 20, "every lead trade in the stream")
            await asyncio.sleep(1.0)  # the old feed's last chance to publish something
            entries = await Cluster.stream(redis_client)
            code, status = await c.procs[active].status()
        finally:
            codes = await c.stop_all()
    assert codes == {"feed-a": 0, "feed-b": 0}, codes
    first_new = min(i for i, (_, _, epoch, _) in enumerate(entries) if epoch > old_epoch)
    late_old = [e for e in entries[first_new:] if e[2] == old_epoch]
    assert not late_old, f"the old feed published after the takeover: {late_old}"
    published = [trade_id for _, trade_id, _, _ in entries]
    assert len(published) == len(set(published)), "a fill was published twice"
    assert set(published) == set(expected)
    assert code == 200
    assert not status["cluster"]["feed"]["lead"]["holding"]
