"""Fixtures of the cluster tests: a real redis-server per test (tests/cluster/redis_server.py) and
an asyncio client on it. Without the redis-server binary every test here is skipped with the reason."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.cluster.redis_server import REDIS_SERVER, RedisServer

if TYPE_CHECKING:
    from redis.asyncio import Redis


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if REDIS_SERVER is not None:
        return
    skip = pytest.mark.skip(reason="redis-server is not installed (apt-get install redis-server)")
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
async def redis_client(redis_server: RedisServer) -> AsyncIterator[Redis]:
    from redis.asyncio import Redis

    client = Redis.from_url(redis_server.url, socket_timeout=10)
    try:
        yield client
    finally:
        await client.aclose()
