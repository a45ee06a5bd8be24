"""Shard consumption through a consumer group against a real redis-server: an entry is acknowledged
only once settled, a shard killed (-9) before acknowledging has its entry taken over by another
after the idle bound, acknowledged entries never come back, entries trimmed while pending are
reported, garbage is dropped."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.cluster.codec import StreamFill, encode
from bot.cluster.consume import GroupConsumer
from bot.cluster.fills import FillPublisher, Published
from bot.cluster.keys import Keys
from bot.cluster.lease import FeedLease
from bot.core.types import LeadFill
from tests.cluster.helpers import KEYS_PREFIX, lead_fill
from tests.cluster.redis_server import RedisServer

KEYS = Keys(KEYS_PREFIX)
ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    """A handler that records what it saw and settles according to `settle` (True by default)."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.settle: dict[str, bool] = {}

    async def __call__(self, item: StreamFill) -> bool:
        self.seen.append(item.fill.trade_id)
        return self.settle.get(item.fill.trade_id, True)


def consumer(client: Redis, name: str, handler: Recorder, *, claim_idle_ms: int = 60_000) -> GroupConsumer:
    return GroupConsumer(client, KEYS, ["alpha"], group="p0", consumer=name, handler=handler,
                         claim_idle_ms=claim_idle_ms)  # fmt: skip


class Feed:
    """The lead's feed holding its lease: publishes each fill and checks it went in."""

    def __init__(self, client: Redis) -> None:
        self.lease = FeedLease(client, KEYS, "alpha", "feed", ttl_s=60)
        self.publisher = FillPublisher(client, KEYS, "alpha", maxlen=1000)

    async def publish(self, fill: LeadFill) -> str:
        if self.lease.token is None:
            assert await self.lease.try_acquire()
        result = await self.publisher.publish(fill, token=self.lease.token)
        assert result.status is Published.PUBLISHED
        assert result.entry_id is not None
        return result.entry_id


@pytest.fixture
def publish(redis_client: Redis) -> Feed:
    return Feed(redis_client)


async def test_settled_entries_are_acked_and_never_redelivered(redis_client: Redis, publish: Feed) -> None:
    rec = Recorder()
    a = consumer(redis_client, "a", rec, claim_idle_ms=0)
    await a.start()
    for i in range(3):
        await publish.publish(lead_fill(str(i)))
    assert await a.poll(block_ms=100) == 3
    assert rec.seen == ["0", "1", "2"]
    assert await a.pending() == 0
    # nothing comes back: not to a, not to another consumer claiming with no idle bound at all,
    # not on a restart of a
    other = Recorder()
    b = consumer(redis_client, "b", other, claim_idle_ms=0)
    assert await b.start() == 0
    assert await b.poll(block_ms=100) == 0
    assert await a.poll(block_ms=100) == 0
    assert await consumer(redis_client, "a", rec).start() == 0
    assert rec.seen == ["0", "1", "2"]
    assert other.seen == []


async def test_an_unsettled_entry_stays_pending_and_is_retried_after_the_idle_bound(
    redis_client: Redis, publish: Feed
) -> None:
    rec = Recorder()
    rec.settle["1"] = False
    a = consumer(redis_client, "a", rec, claim_idle_ms=300)
    await a.start()
    await publish.publish(lead_fill("1"))
    await publish.publish(lead_fill("2"))
    await a.poll(block_ms=100)
    assert rec.seen == ["1", "2"]
    assert await a.pending() == 1
    # a restart of the same consumer sees its own pending entry at once
    again = Recorder()
    again.settle["1"] = False
    assert await consumer(redis_client, "a", again).start() == 1
    assert again.seen == ["1"]
    rec.settle["1"] = True
    deadline = time.monotonic() + 10
    while await a.pending() and time.monotonic() < deadline:
        await a.poll(block_ms=100)
    assert await a.pending() == 0
    assert rec.seen == ["1", "2", "1"]
    assert a.stats.claimed == 1


async def test_a_handler_that_raises_leaves_the_entry_pending(redis_client: Redis, publish: Feed) -> None:
    async def boom(item: StreamFill) -> bool:
        raise RuntimeError("venue down")

    a = GroupConsumer(
        redis_client, KEYS, ["alpha"], group="p0", consumer="a", handler=boom, claim_idle_ms=60_000
    )
    await a.start()
    await publish.publish(lead_fill("1"))
    assert await a.poll(block_ms=100) == 1
    assert await a.pending() == 1
    assert a.stats.unsettled == 1


async def test_a_shard_killed_before_ack_has_its_entry_claimed_by_another(
    redis_server: RedisServer, redis_client: Redis, publish: Feed
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.cluster.consumer_proc",
        redis_server.url, KEYS_PREFIX, "alpha", "p0", "dead",
        stdout=asyncio.subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"ready\n"
        await publish.publish(lead_fill("9"))
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"got 9\n"
        proc.send_signal(signal.SIGKILL)
        await asyncio.wait_for(proc.wait(), 30)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    killed = time.monotonic()
    assert await redis_client.xpending(KEYS.stream("alpha"), "p0") == {
        "pending": 1,
        "min": (await redis_client.xrange(KEYS.stream("alpha")))[0][0],
        "max": (await redis_client.xrange(KEYS.stream("alpha")))[0][0],
        "consumers": [{"name": b"dead", "pending": 1}],
    }
    rec = Recorder()
    b = consumer(redis_client, "b", rec, claim_idle_ms=500)
    await b.start()
    assert await b.poll(block_ms=100) == 0  # not idle long enough yet: the dead shard's entry is its own
    while not rec.seen and time.monotonic() - killed < 10:
        await b.poll(block_ms=100)
    taken_after = time.monotonic() - killed
    assert rec.seen == ["9"]
    assert await b.pending() == 0
    assert b.stats.claimed == 1
    assert taken_after < 10
    # once acknowledged, never again
    assert await b.poll(block_ms=100) == 0
    assert rec.seen == ["9"]


async def test_pending_entries_trimmed_from_the_stream_are_reported(
    redis_client: Redis, publish: Feed
) -> None:
    rec = Recorder()
    rec.settle["1"] = False
    a = consumer(redis_client, "a", rec, claim_idle_ms=0)
    await a.start()
    entry = await publish.publish(lead_fill("1"))
    await a.poll(block_ms=100)
    await redis_client.xdel(KEYS.stream("alpha"), entry)  # retention passed it by while unsettled
    b = consumer(redis_client, "b", Recorder(), claim_idle_ms=0)
    await b.start()
    await b.claim_idle()
    assert b.stats.lost == [entry]
    assert await b.pending() == 0


async def test_an_undecodable_entry_is_acked_and_dropped(redis_client: Redis, publish: Feed) -> None:
    rec = Recorder()
    a = consumer(redis_client, "a", rec)
    await a.start()
    bad = {**encode(lead_fill("1"), epoch=1), "qty": "lots"}
    await redis_client.xadd(KEYS.stream("alpha"), bad)
    await publish.publish(lead_fill("2"))
    await a.poll(block_ms=100)
    assert rec.seen == ["2"]
    assert a.stats.bad == 1
    assert await a.pending() == 0


async def test_a_cancelled_consumer_always_stops(redis_client: Redis, publish: Feed) -> None:
    for i in range(30):
        await publish.publish(lead_fill(str(i)))
        running = asyncio.create_task(
            consumer(redis_client, "a", Recorder(), claim_idle_ms=0).run(block_ms=50)
        )
        await asyncio.sleep((i % 10) * 0.002)
        running.cancel()
        done, _ = await asyncio.wait({running}, timeout=10)
        assert done == {running}, f"run() ignored its cancellation (round {i})"
        assert running.cancelled()
