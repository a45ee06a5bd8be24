"""The one place redis-py is imported at run time: cluster mode only, so a single process never
loads it (tests/unit/test_cluster_config.py::test_a_single_process_never_imports_redis)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from redis.asyncio import Redis


class RedisUnavailable(Exception):
    """A cluster role could not reach Redis at start: one line on stderr, no traceback."""


def connect(
    url: str, *, username: str | None = None, password: str | None = None, max_connections: int = 100
) -> Redis:
    """A client on `url` (redis://, rediss://, unix://). The password comes from the config's secret
    reference, never from the URL. Timeouts are finite so a partitioned process notices. A shard
    holds one connection per partition it consumes (a blocking read each), hence `max_connections`."""
    from redis.asyncio import Redis

    return Redis.from_url(
        url,
        username=username,
        password=password,
        socket_timeout=5,
        socket_connect_timeout=5,
        health_check_interval=15,
        max_connections=max_connections,
    )


def is_busy_group(exc: BaseException) -> bool:
    """XGROUP CREATE on a group that exists: harmless, every shard creates the groups it needs."""
    from redis.exceptions import ResponseError

    return isinstance(exc, ResponseError) and str(exc).startswith("BUSYGROUP")


def raise_if_cancelled() -> None:
    """Re-raise a cancellation redis-py swallowed. A cancel that lands while a command is on the
    wire can come out of redis-py as a connection error it then retries, so the command returns
    normally and the task, though cancelled, would loop on: every long-lived loop here calls this
    once per round (tests/cluster: test_a_cancelled_hold_always_stops)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
