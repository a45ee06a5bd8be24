"""The cluster view reads what operators need from Redis: lease holder and epoch, stream length,
each partition's backlog and pending entries per consumer, the live shards."""

from __future__ import annotations

import json

from redis.asyncio import Redis

from bot.cluster.codec import StreamFill
from bot.cluster.consume import GroupConsumer
from bot.cluster.fills import FillPublisher
from bot.cluster.keys import Keys
from bot.cluster.lead_doc import LeadDoc
from bot.cluster.lease import FeedLease
from bot.cluster.registry import ShardRegistry
from bot.cluster.view import cluster_view
from tests.cluster.helpers import KEYS_PREFIX, lead_fill

KEYS = Keys(KEYS_PREFIX)


async def test_the_view_shows_lease_stream_backlog_and_shards(redis_client: Redis) -> None:
    empty = await cluster_view(redis_client, KEYS, ["alpha"], heartbeat_ttl_s=5)
    assert empty == {
        "shards": [],
        "leads": [
            {
                "lead": "alpha",
                "lease": None,
                "stream": {"length": 0, "last_entry": None},
                "groups": [],
                "state": None,
            }
        ],
    }
    feed = FeedLease(redis_client, KEYS, "alpha", "feed-a", ttl_s=30)
    assert await feed.try_acquire()
    pub = FillPublisher(redis_client, KEYS, "alpha", maxlen=1000)
    await pub.publish_snapshot(LeadDoc().encode(), token=feed.token)
    for i in range(4):
        await pub.publish(lead_fill(str(i)), token=feed.token, state=LeadDoc().encode() if i < 3 else "")

    async def never_settles(item: StreamFill) -> bool:
        return False

    shard = GroupConsumer(redis_client, KEYS, ["alpha"], group="p007", consumer="shard-a",
                          handler=never_settles, claim_idle_ms=60_000, count=2)  # fmt: skip
    await shard.start()
    await shard.poll(block_ms=100)  # reads 2 of the 5, settles neither
    await ShardRegistry(redis_client, KEYS, "shard-a", ttl_s=5).heartbeat()

    view = await cluster_view(redis_client, KEYS, ["alpha"], heartbeat_ttl_s=5)
    json.dumps(view)  # JSON-able as it is
    assert view["shards"] == ["shard-a"]
    (lead,) = view["leads"]
    assert lead["lease"]["holder"] == "feed-a"
    assert lead["lease"]["epoch"] == 1
    assert 0 < lead["lease"]["ttl_ms"] <= 30_000
    assert lead["stream"]["length"] == 5
    assert lead["state"] == {"seq": 5, "doc_seq": 4}  # the last fill was published without its state
    (group,) = lead["groups"]
    assert (group["group"], group["lag"], group["pending"]) == ("p007", 3, 2)
    assert [(c["name"], c["pending"]) for c in group["consumers"]] == [("shard-a", 2)]
