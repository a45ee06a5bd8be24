"""deploy/redis/copybot.conf: a real redis-server starts on it and runs with its durability settings
(the test helper overrides only the port, folder, bind address and log file); the benchmark's Redis
(bot.bench.redis_server.bench_redis) runs with the same AOF settings and is gone after."""

from __future__ import annotations

from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.bench.redis_server import REDIS_SERVER, RedisServer, bench_redis, ping

CONF = Path(__file__).resolve().parents[2] / "deploy" / "redis" / "copybot.conf"

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


async def test_redis_runs_with_the_shipped_settings(tmp_path: Path) -> None:
    with RedisServer(tmp_path / "redis", appendonly=None, appendfsync=None, config_file=CONF) as server:
        client = Redis.from_url(server.url, decode_responses=True)
        try:
            settings = {}
            for key in (
                "appendonly",
                "appendfsync",
                "aof-use-rdb-preamble",
                "maxmemory-policy",
                "protected-mode",
            ):
                settings.update(await client.config_get(key))
            await client.xadd("copybot:lead:{alpha}:fills", {"trade_id": "1"})
            info = await client.info("persistence")
        finally:
            await client.aclose()
    assert settings == {
        "appendonly": "yes",
        "appendfsync": "everysec",
        "aof-use-rdb-preamble": "yes",
        "maxmemory-policy": "noeviction",
        "protected-mode": "yes",
    }
    assert info["aof_enabled"] == 1
    assert any((tmp_path / "redis").rglob("*.aof")), "no append-only file written"


async def test_the_benchmarks_redis_runs_as_production_does_and_stops(tmp_path: Path) -> None:
    async with bench_redis(tmp_path) as server:
        client = Redis.from_url(server.url, decode_responses=True)
        try:
            assert await client.config_get("appendonly") == {"appendonly": "yes"}
            assert await client.config_get("appendfsync") == {"appendfsync": "everysec"}
            assert await client.dbsize() == 0
        finally:
            await client.aclose()
        assert server.directory == tmp_path / "redis"
    assert not ping(server.port)
