"""The fixture's own server: it answers, keeps an AOF across a restart when asked, and is gone after."""

from __future__ import annotations

from pathlib import Path

from redis.asyncio import Redis

from tests.cluster.redis_server import RedisServer, ping


async def test_fixture_server_answers_and_is_empty(redis_client: Redis) -> None:
    assert await redis_client.ping() is True
    assert await redis_client.dbsize() == 0


async def test_append_only_data_survives_a_kill_and_restart(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "aof", appendonly=True)
    server.start()
    try:
        client = Redis.from_url(server.url)
        await client.xadd("s", {"k": "v"})
        await client.aclose()
        server.kill()
        assert not ping(server.port)
        server.start()
        client = Redis.from_url(server.url)
        assert await client.xlen("s") == 1
        await client.aclose()
    finally:
        server.kill()
    assert not ping(server.port)
