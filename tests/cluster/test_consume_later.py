"""A handler may hand a fill on and settle it later (the shard role: the followers settle it in their
own time): the consumer reads on meanwhile, acknowledges each entry when its settlement resolves
True, keeps it pending when it resolves False, and a claim of an entry still settling does not
hand it on twice."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from redis.asyncio import Redis

from bot.cluster.codec import StreamFill
from bot.cluster.consume import GroupConsumer
from tests.cluster.helpers import lead_fill
from tests.cluster.test_consume import KEYS, Feed


class Later:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.outcomes: dict[str, asyncio.Future[bool]] = {}

    async def __call__(self, item: StreamFill) -> Awaitable[bool]:
        self.seen.append(item.fill.trade_id)
        future = self.outcomes.setdefault(item.fill.trade_id, asyncio.get_running_loop().create_future())
        return future


async def test_entries_are_acknowledged_as_their_settlement_resolves(redis_client: Redis) -> None:
    feed = Feed(redis_client)
    for i in range(3):
        await feed.publish(lead_fill(f"t{i}", ts_ms=1000 + i))
    handler = Later()
    group = GroupConsumer(redis_client, KEYS, ["alpha"], group="p0", consumer="s1", handler=handler,
                          claim_idle_ms=0)  # fmt: skip
    await group.start()
    await group.poll(block_ms=None)
    assert handler.seen == ["t0", "t1", "t2"]  # read on while none is settled
    assert group.settling == 3
    assert await group.pending() == 3

    handler.outcomes["t1"].set_result(True)
    handler.outcomes["t0"].set_result(False)
    await asyncio.sleep(0.05)
    assert await group.pending() == 2  # t1 acknowledged out of order, t0 kept
    assert group.stats.acked == 1
    assert group.stats.unsettled == 1

    # claim_idle_ms=0: every pending entry is claimed at once; t2 is still settling here, so it is
    # not handed on again, t0 (not settled) is
    await group.claim_idle()
    assert handler.seen.count("t2") == 1
    assert handler.seen.count("t0") == 2
    handler.outcomes["t2"].set_result(True)
    await asyncio.sleep(0.05)
    assert await group.pending() == 1
    assert group.stats.acked == 2
