"""An active lead feed process for the kill -9 test: holds alpha's lease and publishes the scripted
lead's trades until killed. Prints "held" once it holds the lease.

python -m tests.cluster.feed_proc URL PREFIX HOLDER TTL_S
"""

from __future__ import annotations

import asyncio
import sys

import structlog

from bot.cluster.feed import FeedRunner
from bot.cluster.fills import FillPublisher
from bot.cluster.keys import Keys
from bot.cluster.lease import FeedLease
from bot.cluster.redis_client import connect
from tests.cluster.scripted_lead import ScriptedFeed


async def main(url: str, prefix: str, holder: str, ttl_s: str) -> None:
    client = connect(url)
    keys = Keys(prefix)
    lease = FeedLease(client, keys, "alpha", holder, ttl_s=float(ttl_s))
    runner = FeedRunner(lease, FillPublisher(client, keys, "alpha", maxlen=10_000),
                        lambda cursors, on_fill: ScriptedFeed(client, cursors, on_fill))  # fmt: skip
    running = asyncio.create_task(runner.run())
    await lease.held_event.wait()
    print("held", flush=True)
    await running


if __name__ == "__main__":
    # stdout carries the markers the test waits for; logs go to stderr
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    asyncio.run(main(*sys.argv[1:5]))
