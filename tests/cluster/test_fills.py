"""Publishing under the lease against a real redis-server: only the current holder's fills reach
the stream, a partitioned old holder publishes nothing, a trade id is published once whoever sends
it, retention is bounded and the cursor only moves forward."""

from __future__ import annotations

from decimal import Decimal

import pytest
from redis.asyncio import Redis

from bot.cluster.codec import BadEntry, decode, encode
from bot.cluster.fills import Cursor, FillPublisher, Published
from bot.cluster.keys import Keys
from bot.cluster.lease import FeedLease
from tests.cluster.helpers import KEYS_PREFIX, eventually, lead_fill

KEYS = Keys(KEYS_PREFIX)


def publisher(client: Redis, *, maxlen: int = 1000) -> FillPublisher:
    return FillPublisher(client, KEYS, "alpha", maxlen=maxlen)


async def stream_trade_ids(client: Redis) -> list[str]:
    return [decode(i, f).fill.trade_id for i, f in await client.xrange(KEYS.stream("alpha"))]


async def test_a_partitioned_old_holder_publishes_nothing(redis_client: Redis) -> None:
    old = FeedLease(redis_client, KEYS, "alpha", "old", ttl_s=0.3)
    new = FeedLease(redis_client, KEYS, "alpha", "new", ttl_s=5)
    pub = publisher(redis_client)
    assert await old.try_acquire()
    assert (await pub.publish(lead_fill("1"), token=old.token)).status is Published.PUBLISHED
    stale_token = old.token  # the old feed keeps running and never learns it lost the lease
    await eventually(new.try_acquire)
    assert (await pub.publish(lead_fill("2"), token=stale_token)).status is Published.FENCED
    assert (await pub.publish(lead_fill("3"), token=new.token)).status is Published.PUBLISHED
    await new.release()  # even with nobody holding it, the stale token stays fenced
    assert (await pub.publish(lead_fill("4"), token=stale_token)).status is Published.FENCED
    assert (await pub.publish(lead_fill("5"), token=None)).status is Published.FENCED
    assert await stream_trade_ids(redis_client) == ["1", "3"]


async def test_the_same_holder_reacquiring_gets_a_new_token_and_the_old_one_is_fenced(
    redis_client: Redis,
) -> None:
    feed = FeedLease(redis_client, KEYS, "alpha", "feed", ttl_s=5)
    pub = publisher(redis_client)
    assert await feed.try_acquire()
    first = feed.token
    await feed.release()
    assert await feed.try_acquire()
    assert feed.token != first
    assert (await pub.publish(lead_fill("1"), token=first)).status is Published.FENCED
    result = await pub.publish(lead_fill("1"), token=feed.token)
    assert result.status is Published.PUBLISHED
    entries = await redis_client.xrange(KEYS.stream("alpha"))
    assert [e[0].decode() for e in entries] == [result.entry_id]
    assert decode(*entries[0]).epoch == 2


async def test_a_trade_id_is_published_once_whoever_sends_it(redis_client: Redis) -> None:
    a = FeedLease(redis_client, KEYS, "alpha", "a", ttl_s=0.3)
    b = FeedLease(redis_client, KEYS, "alpha", "b", ttl_s=5)
    pub = publisher(redis_client)
    assert await a.try_acquire()
    assert (await pub.publish(lead_fill("7"), token=a.token)).status is Published.PUBLISHED
    assert (await pub.publish(lead_fill("7"), token=a.token)).status is Published.DUPLICATE
    await eventually(b.try_acquire)
    # the new holder backfills over what the old one published: the fill is not published again
    assert (await pub.publish(lead_fill("7"), token=b.token)).status is Published.DUPLICATE
    assert (await pub.publish(lead_fill("8"), token=b.token)).status is Published.PUBLISHED
    assert await stream_trade_ids(redis_client) == ["7", "8"]


async def test_retention_is_bounded(redis_client: Redis) -> None:
    feed = FeedLease(redis_client, KEYS, "alpha", "feed", ttl_s=30)
    assert await feed.try_acquire()
    pub = publisher(redis_client, maxlen=100)
    for i in range(350):
        await pub.publish(lead_fill(str(i), ts_ms=1_000 + i), token=feed.token)
    # MAXLEN ~ trims whole stream nodes (100 entries each by default): at least 100 kept, bounded
    assert 100 <= await redis_client.xlen(KEYS.stream("alpha")) <= 200
    assert await redis_client.zcard(KEYS.seen("alpha")) == 100
    # the newest trade ids are the ones remembered
    assert await redis_client.zscore(KEYS.seen("alpha"), "349") is not None
    assert await redis_client.zscore(KEYS.seen("alpha"), "0") is None


async def test_the_cursor_moves_forward_per_symbol_only(redis_client: Redis) -> None:
    feed = FeedLease(redis_client, KEYS, "alpha", "feed", ttl_s=30)
    assert await feed.try_acquire()
    pub = publisher(redis_client)
    await pub.publish(lead_fill("1", ts_ms=5_000), token=feed.token)
    await pub.publish(lead_fill("2", ts_ms=4_000), token=feed.token)  # late backfill: published
    await pub.publish(lead_fill("3", symbol="ETH/USDT:USDT", ts_ms=3_000), token=feed.token)
    assert await pub.cursors() == {
        "BTC/USDT:USDT": Cursor(5_000, "1"),
        "ETH/USDT:USDT": Cursor(3_000, "3"),
    }
    assert await stream_trade_ids(redis_client) == ["1", "2", "3"]


async def test_a_fill_of_another_lead_is_refused(redis_client: Redis) -> None:
    with pytest.raises(ValueError, match="lead 'beta'"):
        await publisher(redis_client).publish(lead_fill("1", lead="beta"), token="1:x")


def test_the_entry_format_keeps_decimals_exact_and_refuses_garbage() -> None:
    fill = lead_fill("42")
    fields = encode(fill, epoch=3)
    back = decode(b"1-0", {k.encode(): v.encode() for k, v in fields.items()})
    assert back.fill.qty == Decimal("0.123")
    assert back.fill.price == Decimal("65000.10")
    assert str(back.fill.price) == "65000.10"
    assert (back.entry_id, back.epoch, back.fill.trade_id, back.fill.side) == ("1-0", 3, "42", fill.side)
    with pytest.raises(BadEntry, match="unknown format"):
        decode("2-0", {"lead": "alpha"})
    with pytest.raises(BadEntry, match="qty"):
        decode("3-0", {**fields, "qty": "lots"})
