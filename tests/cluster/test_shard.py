"""The shard partition loop against a real redis-server: live shards split the partitions with no
overlap; a shard that crashes mid fan-out has its partitions and its pending fills taken over by
the other, each fill settled once per partition; when it returns it gets its partitions back."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable

from redis.asyncio import Redis

from bot.cluster.assignment import all_partitions, assign
from bot.cluster.codec import StreamFill
from bot.cluster.consume import FillHandler
from bot.cluster.fills import FillPublisher
from bot.cluster.keys import Keys
from bot.cluster.lease import FeedLease
from bot.cluster.shard import PartitionLoop
from tests.cluster.helpers import KEYS_PREFIX, eventually, lead_fill

KEYS = Keys(KEYS_PREFIX)
PARTITIONS = all_partitions(8)


class Book:
    """Every (partition, trade id) settled, by which shard."""

    def __init__(self) -> None:
        self.settled: list[tuple[str, str, str]] = []
        self.hang: set[str] = set()  # shards whose fan-outs never finish (crashing mid fan-out)

    def handler(self, shard: str) -> Callable[[str], FillHandler]:
        def for_partition(partition: str) -> FillHandler:
            async def handle(item: StreamFill) -> bool:
                if shard in self.hang:
                    await asyncio.Event().wait()
                self.settled.append((shard, partition, item.fill.trade_id))
                return True

            return handle

        return for_partition

    def pairs(self) -> Counter[tuple[str, str]]:
        return Counter((p, t) for _, p, t in self.settled)


def loop(client: Redis, shard: str, book: Book) -> PartitionLoop:
    return PartitionLoop(client, KEYS, shard, ["alpha"], PARTITIONS, book.handler(shard),
                         heartbeat_s=0.1, heartbeat_ttl_s=0.5, grace_s=0.25, claim_idle_ms=500,
                         block_ms=100)  # fmt: skip


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_shards_split_partitions_take_over_a_crashed_one_and_hand_back(redis_client: Redis) -> None:
    feed = FeedLease(redis_client, KEYS, "alpha", "feed", ttl_s=60)
    assert await feed.try_acquire()
    pub = FillPublisher(redis_client, KEYS, "alpha", maxlen=10_000)
    book = Book()
    a, b = loop(redis_client, "shard-a", book), loop(redis_client, "shard-b", book)
    expected = assign(PARTITIONS, ["shard-a", "shard-b"])
    tasks = {"a": asyncio.create_task(a.run()), "b": asyncio.create_task(b.run())}
    try:

        async def split() -> bool:
            return {p: "shard-a" for p in a.owned()} | {p: "shard-b" for p in b.owned()} == expected

        await eventually(split)
        assert not set(a.owned()) & set(b.owned())

        async def settled(upto: int) -> bool:
            return set(book.pairs()) >= {(p, str(t)) for p in PARTITIONS for t in range(upto)}

        for t in range(10):
            await pub.publish(lead_fill(str(t)), token=feed.token)
        await eventually(lambda: settled(10))

        # b crashes in the middle of fan-outs: no leave, its fills stay pending
        book.hang.add("shard-b")
        for t in range(10, 15):
            await pub.publish(lead_fill(str(t)), token=feed.token)

        async def b_stuck() -> bool:
            pending = await redis_client.xpending(KEYS.stream("alpha"), b.owned()[0])
            return int(pending["pending"]) > 0

        await eventually(b_stuck)

        async def no_leave() -> None:
            return None

        b.registry.leave = no_leave  # type: ignore[method-assign]
        await stop(tasks.pop("b"))

        async def a_owns_all() -> bool:
            return a.owned() == PARTITIONS

        took = await eventually(a_owns_all)
        assert took < 5
        await eventually(lambda: settled(15))
        assert {s for s, p, t in book.settled if int(t) >= 10} == {"shard-a"}

        # b returns and gets its partitions back
        book.hang.clear()
        b2 = loop(redis_client, "shard-b", book)
        tasks["b"] = asyncio.create_task(b2.run())

        async def handed_back() -> bool:
            return {p: "shard-a" for p in a.owned()} | {p: "shard-b" for p in b2.owned()} == expected

        await eventually(handed_back)
        for t in range(15, 20):
            await pub.publish(lead_fill(str(t)), token=feed.token)
        await eventually(lambda: settled(20))
    finally:
        for task in tasks.values():
            await stop(task)
    # each fill settled exactly once per partition, by the partition's owner of the moment
    assert set(book.pairs().values()) == {1}
    assert len(book.pairs()) == len(PARTITIONS) * 20
    late = {(p, s) for s, p, t in book.settled if int(t) >= 15}
    assert late == {(p, s) for p, s in expected.items()}
