"""The feed lease against a real redis-server: one holder at a time, a new epoch per acquisition,
renewal keeps it, a lapse hands it over, a holder cut off from Redis stops believing it holds it."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from redis.asyncio import Redis

from bot.cluster.keys import Keys
from bot.cluster.lease import FeedLease, current_holder
from tests.cluster.helpers import KEYS_PREFIX, eventually
from tests.cluster.redis_server import RedisServer

KEYS = Keys(KEYS_PREFIX)


def lease(client: Redis, holder: str, *, ttl_s: float = 5.0, renew_every_s: float | None = None) -> FeedLease:
    return FeedLease(client, KEYS, "alpha", holder, ttl_s=ttl_s, renew_every_s=renew_every_s)


async def test_of_many_contenders_exactly_one_holds(redis_client: Redis) -> None:
    contenders = [lease(redis_client, f"feed{i}") for i in range(6)]
    won = await asyncio.gather(*(c.try_acquire() for c in contenders))
    assert sum(won) == 1
    winner = contenders[won.index(True)]
    assert winner.held
    assert winner.token == f"1:{winner.holder}"
    assert [c.token for c in contenders].count(None) == 5
    view = await current_holder(redis_client, KEYS, "alpha")
    assert view is not None
    assert (view.epoch, view.holder) == (1, winner.holder)
    assert 0 < view.ttl_ms <= 5000
    # the holder itself cannot acquire twice either
    assert not await winner.try_acquire()


async def test_a_lapsed_lease_goes_to_the_other_with_a_new_epoch(redis_client: Redis) -> None:
    a, b = lease(redis_client, "a", ttl_s=0.3), lease(redis_client, "b", ttl_s=0.3)
    assert await a.try_acquire()
    assert not await b.try_acquire()
    await eventually(b.try_acquire)  # a never renews: it lapses after 0.3 s
    assert b.epoch == 2
    assert b.token == "2:b"
    assert not await a.renew()  # a finds out on its next renewal
    assert a.token is None
    assert not a.held
    assert not a.held_event.is_set()


async def test_renewal_keeps_the_lease_past_its_ttl_and_release_hands_it_over(redis_client: Redis) -> None:
    a, b = lease(redis_client, "a", ttl_s=1.0, renew_every_s=0.1), lease(redis_client, "b", ttl_s=1.0)
    holding = asyncio.create_task(a.hold())
    try:
        await asyncio.wait_for(a.held_event.wait(), 10)
        loop = asyncio.get_running_loop()
        until = loop.time() + 1.5  # longer than the ttl: without renewal it would lapse
        while loop.time() < until:
            assert not await b.try_acquire()
            await asyncio.sleep(0.05)
        assert a.held
        assert a.epoch == 1
    finally:
        holding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await holding
    await a.release()
    assert not a.held
    assert await b.try_acquire()  # at once: no wait for the expiry
    assert b.epoch == 2


async def test_a_holder_cut_off_from_redis_drops_the_lease_within_its_ttl(redis_server: RedisServer) -> None:
    client = Redis.from_url(redis_server.url, socket_timeout=1, socket_connect_timeout=1)
    a = lease(client, "a", ttl_s=0.6, renew_every_s=0.1)
    holding = asyncio.create_task(a.hold())
    try:
        await asyncio.wait_for(a.held_event.wait(), 10)
        redis_server.kill()

        async def dropped() -> bool:
            return not a.held_event.is_set()

        took = await eventually(dropped)
        assert not a.held
        assert a.token is None
        assert took < 5
    finally:
        holding.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await holding
        await client.aclose()


async def test_holder_names_cannot_forge_a_token(redis_client: Redis) -> None:
    with pytest.raises(ValueError, match="cannot contain ':'"):
        lease(redis_client, "1:b")


async def test_a_cancelled_hold_always_stops(redis_client: Redis) -> None:
    """A cancel landing mid-command can be swallowed by redis-py (it retries what it takes for a
    connection error): the loop must stop anyway, whenever the cancel lands."""
    for i in range(60):
        a = FeedLease(redis_client, KEYS, f"lead{i}", "a", ttl_s=1.0, renew_every_s=0.001)
        holding = asyncio.create_task(a.hold())
        await asyncio.sleep((i % 12) * 0.001)
        holding.cancel()
        done, _ = await asyncio.wait({holding}, timeout=10)
        assert done == {holding}, f"hold() ignored its cancellation (round {i})"
        assert holding.cancelled()
