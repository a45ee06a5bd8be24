"""A shard gaining a large partition keeps its event loop turning: building a follower's client
costs ~5 ms of CPU, and building a thousand in one synchronous pass held the loop past the
heartbeat ttl, so the other shards counted it dead and it dropped what it was gaining, over and
over (docs/benchmark.md, "Shards"). The gain yields every `BUILD_BATCH` builds; here a task that
counts loop turns must have turned between batches."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.cluster import shard_role
from bot.live.engine import Engine
from bot.service.app import Daemon
from tests.cluster.engine_cluster import CLUSTER, PREFIX, Cluster, sim_config, until
from tests.cluster.redis_server import RedisServer
from tests.integration.harness import Harness, follower, run_until_ready

pytestmark = pytest.mark.timeout(60)

FOLLOWERS = shard_role.BUILD_BATCH + 3  # one partition: one gain builds them all


async def test_a_gain_yields_to_the_event_loop_between_batches_of_followers(
    tmp_path: Path, redis_server: RedisServer, redis_client: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    turns = 0
    at_build: list[int] = []
    build = Engine.build_follower

    def counted(self: Engine, *args: Any) -> Any:
        at_build.append(turns)
        return build(self, *args)

    monkeypatch.setattr(Engine, "build_follower", counted)

    async def turning() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    async with Harness(tmp_path, sim_config()) as h:
        h.build_config([follower(f"f{i}", {"mode": "multiplier", "multiplier": "0.1"})
                        for i in range(FOLLOWERS)])  # fmt: skip
        h.config["cluster"] = {"redis_url": redis_server.url, "id": "unset", "key_prefix": PREFIX,
                               **CLUSTER, "partitions": 1}  # fmt: skip
        daemons: list[tuple[Daemon, asyncio.Task[int]]] = []
        ticker: asyncio.Task[None] | None = None
        try:
            for role in ("feed", "shard"):
                cfg = h.app_config()
                daemon = Daemon(cfg.with_cluster_id(f"{role}-a"), api_port=0, role=role)
                if role == "shard":
                    ticker = asyncio.create_task(turning())
                daemons.append((daemon, (await run_until_ready(daemon, 30))[0]))

            async def all_served() -> bool:
                return await Cluster.serving(redis_client, "shard-a") == FOLLOWERS

            await until(all_served, 20, "the shard serving every follower")
        finally:
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            for daemon, _ in daemons:
                daemon.request_stop("test")
            codes = await asyncio.gather(*(task for _, task in daemons))
    assert codes == [0, 0]
    assert len(at_build) == FOLLOWERS
    batch = shard_role.BUILD_BATCH
    # the loop turned between the batches (it may also turn before the first, never inside one)
    assert at_build[batch] > at_build[batch - 1]
    assert at_build[1:batch] == [at_build[0]] * (batch - 1)
