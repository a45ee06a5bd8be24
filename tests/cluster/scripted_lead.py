"""A lead account kept in Redis for the feed-role tests: its trade history is a Redis list, so feed
processes on either side of a kill -9 see the same account, like two hosts see one venue account.
`ScriptedFeed` stands in for `LeadFeed`: a backfill from the cursor (inclusive, as a venue's
since-timestamp query is, so the first fill again is a duplicate), then polls for new trades."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from redis.asyncio import Redis

from bot.cluster.feed import Cursors
from bot.cluster.redis_client import raise_if_cancelled
from bot.core.types import LeadFill
from tests.cluster.helpers import lead_fill

HISTORY = "t:venue:alpha:trades"


async def trade(client: Redis, i: int) -> None:
    await client.rpush(HISTORY, json.dumps({"trade_id": str(i), "ts_ms": 1_000 + i}))


async def trader(client: Redis, count: int, *, every_s: float) -> None:
    for i in range(count):
        raise_if_cancelled()  # redis-py may swallow a cancel that lands mid-command
        await trade(client, i)
        await asyncio.sleep(every_s)


class ScriptedFeed:
    def __init__(
        self, client: Redis, cursors: Callable[[], Cursors], on_fill: Callable[[LeadFill], None]
    ) -> None:
        self.client = client
        self.cursors = cursors
        self.on_fill = on_fill

    async def run(self) -> None:
        cursor = self.cursors().get("BTC/USDT:USDT")
        since = cursor[0] if cursor else 0
        seen = 0
        while True:
            # redis-py may swallow a cancel that lands mid-command: without this the feed's term
            # could never end (bot/cluster/redis_client.py, raise_if_cancelled)
            raise_if_cancelled()
            rows = await self.client.lrange(HISTORY, seen, -1)
            for row in rows:
                t = json.loads(row)
                if t["ts_ms"] >= since:
                    self.on_fill(lead_fill(t["trade_id"], ts_ms=t["ts_ms"]))
            seen += len(rows)
            await asyncio.sleep(0.01)
