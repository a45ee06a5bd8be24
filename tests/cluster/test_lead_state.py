"""The lead's positions through Redis (docs/cluster.md, "Lead positions"), against a real
redis-server: the feed stores the lead's state with every entry it publishes, corrects it from the
venue with a snapshot entry, and a shard applies every entry once and in stream order whatever
order its partitions' groups deliver them in."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable
from decimal import Decimal

from redis.asyncio import Redis

from bot.cluster.codec import StreamFill, StreamSnapshot, decode_entry, encode
from bot.cluster.feed import FeedRunner
from bot.cluster.fills import FillPublisher, Published, read_state
from bot.cluster.keys import Keys
from bot.cluster.lead_book import LeadBook
from bot.cluster.lead_doc import LeadDoc
from bot.cluster.lead_tracker import LeadTracker
from bot.cluster.lease import FeedLease
from bot.core.types import LeadFill, PositionSnapshot, Side
from bot.live.lead_state import LeadRuntime
from tests.cluster.helpers import KEYS_PREFIX, eventually
from tests.cluster.scripted_lead import HISTORY, ScriptedFeed, trade, trader

KEYS = Keys(KEYS_PREFIX)
SYMBOL = "BTC/USDT:USDT"
QTY = Decimal("0.123")  # every scripted trade buys this much (tests/cluster/helpers.py lead_fill)


def lead_runtime(lead: str = "alpha") -> LeadRuntime:
    return LeadRuntime(id=lead, rest=None, adapter=None, markets={})  # type: ignore[arg-type]


class Venue:
    """The lead account's positions as the venue reports them: the scripted trade history, plus
    whatever a test puts there that no fill explains."""

    def __init__(self, client: Redis) -> None:
        self.client = client
        self.extra = Decimal(0)
        self.reads = 0

    async def read(self) -> tuple[dict[str, PositionSnapshot], int]:
        self.reads += 1
        rows = [json.loads(r) for r in await self.client.lrange(HISTORY, 0, -1)]
        qty = QTY * len(rows) + self.extra
        last = max((r["ts_ms"] for r in rows), default=0)
        snapshot = {SYMBOL: PositionSnapshot(SYMBOL, qty, Decimal("65000.10"), last, 5)} if qty else {}
        return snapshot, last + 1


def feed(client: Redis, venue: Venue, holder: str, *, check_every_s: float = 60.0) -> FeedRunner:
    lease = FeedLease(client, KEYS, "alpha", holder, ttl_s=1.0)
    book = LeadBook(lead_runtime(), venue.read, check_every_s=check_every_s)
    return FeedRunner(lease, FillPublisher(client, KEYS, "alpha", maxlen=10_000),
                      lambda cursors, on_fill: ScriptedFeed(client, cursors, on_fill), book)  # fmt: skip


async def entries(client: Redis) -> list[StreamFill | StreamSnapshot]:
    return [decode_entry(i, f) for i, f in await client.xrange(KEYS.stream("alpha"))]


async def stored_qty(client: Redis) -> Decimal | None:
    stored = await read_state(client, KEYS, "alpha")
    return None if stored is None else LeadDoc.decode(stored.doc).positions.get(SYMBOL, Decimal(0))


async def stop(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_every_entry_is_numbered_and_stored_with_the_state_it_leaves_across_a_takeover(
    redis_client: Redis,
) -> None:
    venue = Venue(redis_client)
    # the lead holds a position before any feed ran
    await redis_client.rpush(HISTORY, json.dumps({"trade_id": "pre", "ts_ms": 999}))
    active, standby = feed(redis_client, venue, "a"), feed(redis_client, venue, "b")
    runs = [asyncio.create_task(active.run())]
    try:
        await asyncio.wait_for(active.lease.held_event.wait(), 10)
        runs.append(asyncio.create_task(standby.run()))
        runs.append(asyncio.create_task(trader(redis_client, 30, every_s=0.01)))

        async def half() -> bool:
            return (await stored_qty(redis_client) or 0) >= QTY * 15

        await eventually(half)
        await stop(runs[0])  # releases: the standby's term starts from the stored state
        await asyncio.wait_for(runs[2], 30)

        async def all_in() -> bool:
            return await stored_qty(redis_client) == QTY * 31

        await eventually(all_in, timeout_s=20)
    finally:
        await stop(*runs[1:])
    items = await entries(redis_client)
    assert [item.seq for item in items] == list(range(1, len(items) + 1))
    snapshots = [item for item in items if isinstance(item, StreamSnapshot)]
    # the first term found nothing stored and published the venue's position first; the standby
    # took the stored state, so no other snapshot (the venue agreed with it at every check)
    assert len(snapshots) == 1
    assert items[0] is snapshots[0]
    first = LeadDoc.decode(snapshots[0].doc).positions[SYMBOL]
    assert first >= QTY  # "pre", and whatever the trader had done by the venue read
    fills = [item for item in items if isinstance(item, StreamFill)]
    # "pre" is in that snapshot: published (the cursor, the dedupe) but it changes nothing
    assert sorted(f.fill.trade_id for f in fills) == sorted(["pre", *(str(i) for i in range(30))])
    stored = await read_state(redis_client, KEYS, "alpha")
    assert stored is not None
    assert stored.doc_seq == stored.seq == len(items)
    assert stored.doc_entry == items[-1].entry_id
    assert standby.stats.terms == 1
    assert standby.book is not None
    assert standby.book.stats.snapshots == 0
    assert standby.book.stats.checks >= 1


async def test_a_position_no_fill_explains_is_published_as_a_snapshot_that_replaces_the_state(
    redis_client: Redis,
) -> None:
    venue = Venue(redis_client)
    runner = feed(redis_client, venue, "a", check_every_s=0.1)
    run = asyncio.create_task(runner.run())
    try:
        await trade(redis_client, 1)
        await eventually(lambda: _equals(stored_qty(redis_client), QTY))
        venue.extra = Decimal("-0.5")  # e.g. a liquidation the feed never saw as a trade
        await eventually(lambda: _equals(stored_qty(redis_client), QTY - Decimal("0.5")))
        await trade(redis_client, 2)  # a later fill applies on top of the snapshot
        await eventually(lambda: _equals(stored_qty(redis_client), 2 * QTY - Decimal("0.5")))
    finally:
        await stop(run)
    assert runner.book is not None
    assert runner.book.stats.drifts == 1
    kinds = [type(item).__name__ for item in await entries(redis_client)]
    assert kinds.count("StreamSnapshot") == 2  # the first term's, the correction


async def _equals(value: Awaitable[Decimal | None], expected: Decimal) -> bool:
    return await value == expected


async def test_a_feed_that_lost_its_lease_stores_no_state(redis_client: Redis) -> None:
    publisher = FillPublisher(redis_client, KEYS, "alpha", maxlen=100)
    state = LeadDoc({SYMBOL: QTY}).encode()
    assert (await publisher.publish_snapshot(state, token="1:gone")).status is Published.FENCED
    fill = LeadFill("alpha", "9", "o9", SYMBOL, Side.BUY, QTY, Decimal(1), 5)
    assert (await publisher.publish(fill, token="1:gone", state=state)).status is Published.FENCED
    assert await read_state(redis_client, KEYS, "alpha") is None
    assert await redis_client.xlen(KEYS.stream("alpha")) == 0


class Shard:
    """The engine as a shard's tracker sees it: its leads, and the fan-out, which applies a fill
    as `Engine.on_lead_fill` does (once per trade id; nothing if the snapshot holds it)."""

    def __init__(self) -> None:
        self.leads = {"alpha": lead_runtime()}
        self.fanned_out: list[str] = []

    def on_lead_fill(self, fill: LeadFill) -> None:
        lead = self.leads[fill.lead]
        if lead.seen(fill.trade_id):
            return
        lead.mark_seen(fill.trade_id)
        if lead.in_snapshot(fill):
            return
        lead.apply(fill)
        self.fanned_out.append(fill.trade_id)


class Lead:
    """Publishes as a feed holding the lease does: a first snapshot, then fills with their state."""

    def __init__(self, client: Redis) -> None:
        self.lease = FeedLease(client, KEYS, "alpha", "a", ttl_s=30)
        self.publisher = FillPublisher(client, KEYS, "alpha", maxlen=10_000)
        self.doc = LeadDoc()
        self.next = 0

    async def start(self) -> Lead:
        assert await self.lease.try_acquire()
        await self.snapshot(self.doc)
        return self

    async def snapshot(self, doc: LeadDoc) -> None:
        self.doc = doc
        assert (await self.publisher.publish_snapshot(doc.encode(), token=self.lease.token)).seq

    async def fills(self, count: int) -> None:
        for _ in range(count):
            i, self.next = self.next, self.next + 1
            await self.fill(
                LeadFill("alpha", str(i), f"o{i}", SYMBOL, Side.BUY, QTY, Decimal(100 + i), 1_000 + i)
            )

    async def fill(self, fill: LeadFill) -> None:
        equity = Decimal(1_000) + fill.ts_ms % 1_000
        self.doc = self.doc.after(fill, equity)
        result = await self.publisher.publish(fill, token=self.lease.token, state=self.doc.encode(),
                                              lead_equity=equity)  # fmt: skip
        assert result.status is Published.PUBLISHED


async def started(client: Redis, *, fills: int) -> tuple[Lead, Shard, LeadTracker]:
    """A lead feed that published its first snapshot and `fills` fills, and a shard started then."""
    lead_feed = await Lead(client).start()
    await lead_feed.fills(fills)
    shard = Shard()
    tracker = LeadTracker(shard, client, KEYS)  # type: ignore[arg-type]
    await tracker.load(shard.leads["alpha"])
    return lead_feed, shard, tracker


async def delivered(client: Redis, seq: int) -> StreamFill | StreamSnapshot:
    return next(item for item in await entries(client) if item.seq == seq)


async def test_a_shard_applies_entries_once_and_in_stream_order_whatever_delivers_them(
    redis_client: Redis,
) -> None:
    lead_feed, shard, tracker = await started(redis_client, fills=2)  # entries 1 (snapshot), 2, 3
    assert tracker.applied["alpha"][0] == 3
    assert shard.leads["alpha"].positions == {SYMBOL: 2 * QTY}
    await lead_feed.fills(3)  # entries 4, 5, 6
    # one partition's group delivers entry 6 first: 4 and 5 are read from the stream and applied
    await tracker.handle(await delivered(redis_client, 6))
    assert shard.fanned_out == ["2", "3", "4"]
    # the other groups deliver 2, 4, 5 later: already applied, nothing happens
    for seq in (2, 4, 5):
        await tracker.handle(await delivered(redis_client, seq))
    assert shard.fanned_out == ["2", "3", "4"]
    lead = shard.leads["alpha"]
    assert lead.positions == {SYMBOL: 5 * QTY}
    assert lead.equity == Decimal(1_004)  # as the feed knew it when it published the newest fill
    assert lead.entry_prices == {SYMBOL: Decimal(102)}  # (100 + 101 + 102 + 103 + 104) / 5
    # the running state equals what the feed stored with the newest entry, entry prices included
    stored = await read_state(redis_client, KEYS, "alpha")
    assert stored is not None
    assert LeadDoc.of(lead) == LeadDoc.decode(stored.doc)
    assert tracker.caught_up == 2


async def test_a_snapshot_entry_replaces_the_lead_and_a_fill_it_holds_changes_nothing(
    redis_client: Redis,
) -> None:
    lead_feed, shard, tracker = await started(redis_client, fills=1)
    await lead_feed.snapshot(
        LeadDoc({SYMBOL: Decimal(7)}, {SYMBOL: Decimal(90)}, {SYMBOL: 3}, {SYMBOL: 5_000}, 5_000)
    )
    await lead_feed.fill(LeadFill("alpha", "late", "o-late", SYMBOL, Side.BUY, QTY, Decimal(95), 4_999))
    await lead_feed.fill(LeadFill("alpha", "new", "o-new", SYMBOL, Side.BUY, QTY, Decimal(95), 5_001))
    for item in await entries(redis_client):
        await tracker.handle(item)
    lead = shard.leads["alpha"]
    assert lead.positions == {SYMBOL: 7 + QTY}
    assert lead.leverage == {SYMBOL: 3}
    assert shard.fanned_out == ["new"]  # "0" was in the start state, "late" in the snapshot


async def test_entries_trimmed_before_a_shard_applied_them_are_replaced_by_the_stored_state(
    redis_client: Redis,
) -> None:
    lead_feed, shard, tracker = await started(redis_client, fills=1)  # the shard at entry 2
    await lead_feed.fills(5)  # entries 3..7
    ids = [i for i, _ in await redis_client.xrange(KEYS.stream("alpha"))]
    await redis_client.xdel(KEYS.stream("alpha"), *ids[2:5])  # 3, 4, 5 gone (MAXLEN trimming)
    await tracker.handle(await delivered(redis_client, 7))
    assert tracker.gaps == 1
    assert shard.leads["alpha"].positions == {SYMBOL: 6 * QTY}  # the stored state holds them all
    assert tracker.applied["alpha"][0] == 7


def test_a_fill_entry_carries_the_leads_equity_and_reads_back_exactly() -> None:
    fill = LeadFill("alpha", "1", "o1", SYMBOL, Side.SELL, QTY, Decimal("65000.10"), 7)
    fields = encode(fill, epoch=2, lead_equity=Decimal("12345.678901"))
    item = decode_entry("5-0", {**fields, "seq": "9"})
    assert isinstance(item, StreamFill)
    assert (item.seq, item.lead_equity, item.fill.qty) == (9, Decimal("12345.678901"), QTY)


def test_the_state_document_keeps_decimals_and_refuses_garbage() -> None:
    doc = LeadDoc({SYMBOL: Decimal("-0.001")}, {SYMBOL: Decimal("65000.123456789")}, {SYMBOL: 20},
                  {SYMBOL: 17}, 18, Decimal("1000.000000001"))  # fmt: skip
    assert LeadDoc.decode(doc.encode()) == doc
    import pytest

    from bot.cluster.lead_doc import BadDoc

    for bad in ("[]", '{"v": 2}', '{"v": 1, "positions": {"X": "lots"}}', "not json"):
        with pytest.raises(BadDoc):
            LeadDoc.decode(bad)


def test_the_entry_price_averages_in_keeps_on_a_reduction_and_restarts_on_a_flip() -> None:
    def fill(side: Side, qty: str, price: str) -> LeadFill:
        return LeadFill("alpha", "t", "o", SYMBOL, side, Decimal(qty), Decimal(price), 1)

    doc = LeadDoc().after(fill(Side.BUY, "1", "100"), Decimal(0))
    doc = doc.after(fill(Side.BUY, "3", "200"), Decimal(0))
    assert doc.entry_prices[SYMBOL] == Decimal(175)  # (1 x 100 + 3 x 200) / 4
    doc = doc.after(fill(Side.SELL, "2", "300"), Decimal(0))
    assert doc.entry_prices[SYMBOL] == Decimal(175)
    doc = doc.after(fill(Side.SELL, "5", "250"), Decimal(0))
    assert doc.positions[SYMBOL] == Decimal(-3)
    assert doc.entry_prices[SYMBOL] == Decimal(250)
    doc = doc.after(fill(Side.BUY, "3", "1"), Decimal(0))
    assert doc.positions == {}
    assert doc.entry_prices == {}
