"""A shard process for the kill -9 tests: it reads the group and never settles what it gets, so
its entries stay pending when it is killed. Prints "got <trade id>" for each fill it receives.

python -m tests.cluster.consumer_proc URL PREFIX LEAD GROUP CONSUMER
"""

from __future__ import annotations

import asyncio
import sys

import structlog

from bot.cluster.codec import StreamFill
from bot.cluster.consume import GroupConsumer
from bot.cluster.keys import Keys
from bot.cluster.redis_client import connect


async def main(url: str, prefix: str, lead: str, group: str, consumer: str) -> None:
    client = connect(url)

    async def hang(item: StreamFill) -> bool:
        print(f"got {item.fill.trade_id}", flush=True)
        await asyncio.Event().wait()  # a fan-out that never finishes: killed before it settles
        return True

    shard = GroupConsumer(client, Keys(prefix), [lead], group=group, consumer=consumer, handler=hang,
                          claim_idle_ms=60_000)  # fmt: skip
    await shard.ensure_groups()
    print("ready", flush=True)
    await shard.run(block_ms=500)


if __name__ == "__main__":
    # stdout carries the markers the test waits for; logs go to stderr
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    asyncio.run(main(*sys.argv[1:6]))
