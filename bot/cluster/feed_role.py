"""The feed role on the engine (docs/cluster.md, "Running a feed"): per lead, a `FeedRunner` that
contends for the lead's lease and, while it holds it, runs the single process's own `LeadFeed`
(websocket, backfill from the cursor kept in Redis) and publishes each fill to the lead's stream.

The engine here serves no follower: it holds the leads (markets, REST client, start snapshot) and
the supervisor, API and metrics of one process. The term's feed is listed in `engine.feeds` while
the lease is held, so `/status` and `/readyz` show its stream exactly as in one process; a standby
lists none and is healthy.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import structlog

from bot.cluster.feed import Cursors, FeedRunner, RunnableFeed
from bot.cluster.fills import FillPublisher
from bot.cluster.keys import Keys
from bot.cluster.lead_book import LeadBook
from bot.cluster.lease import FeedLease
from bot.core.types import LeadFill
from bot.live.engine import Engine
from bot.live.lead_feed import LeadFeed
from bot.live.reconciler import read_lead_positions

if TYPE_CHECKING:
    from collections.abc import Callable

    from redis.asyncio import Redis

log = structlog.get_logger("copybot.feed_role")


class _TermFeed:
    """One term's LeadFeed, listed in `engine.feeds` while it runs."""

    def __init__(self, engine: Engine, feed: LeadFeed) -> None:
        self.engine = engine
        self.feed = feed

    async def run(self) -> None:
        self.engine.feeds[self.feed.lead] = self.feed
        try:
            await self.feed.run()
        finally:
            if self.engine.feeds.get(self.feed.lead) is self.feed:
                del self.engine.feeds[self.feed.lead]


class FeedRole:
    def __init__(
        self,
        engine: Engine,
        client: Redis,
        keys: Keys,
        holder: str,
        *,
        lease_ttl_s: float,
        renew_every_s: float,
        stream_maxlen: int,
    ) -> None:
        self.engine = engine
        # This process's lead books check the leads (bot/cluster/lead_book.py), not its reconciler.
        engine.lead_positions_from = "feed"
        self.runners: dict[str, FeedRunner] = {}
        self.books: dict[str, LeadBook] = {}
        for lead in engine.leads:
            lease = FeedLease(client, keys, lead, holder, ttl_s=lease_ttl_s, renew_every_s=renew_every_s)
            publisher = FillPublisher(client, keys, lead, maxlen=stream_maxlen)
            book = self.books[lead] = LeadBook(
                engine.leads[lead], partial(read_lead_positions, engine, lead),
                check_every_s=float(engine.cfg.reconcile.interval_s),
            )  # fmt: skip
            self.runners[lead] = FeedRunner(lease, publisher, self._factory(lead), book)

    def _factory(
        self, lead_id: str
    ) -> Callable[[Callable[[], Cursors], Callable[[LeadFill], None]], RunnableFeed]:
        engine = self.engine
        lead = engine.leads[lead_id]

        def make(cursors: Callable[[], Cursors], on_fill: Callable[[LeadFill], None]) -> RunnableFeed:
            feed = engine.make_lead_feed(
                lead_id, symbols=lambda: lead.symbols(set(cursors())), cursors=cursors, on_fill=on_fill
            )
            return _TermFeed(engine, feed)

        return make

    async def seed(self) -> None:
        """Each lead symbol without a cursor in Redis backfills from this process's start
        snapshot (FillPublisher.seed_cursors), written before any term starts."""
        for lead_id, runner in self.runners.items():
            lead = self.engine.leads[lead_id]
            known = await runner.publisher.cursors()
            since = {s: lead.snapshot_ms.get(s, lead.snapshot_default_ms) for s in lead.symbols(set(known))}
            await runner.publisher.seed_cursors({s: ts for s, ts in since.items() if s not in known})

    def spawn(self) -> None:
        for lead_id, runner in self.runners.items():
            self.engine.supervisor.spawn(f"feed:{lead_id}", runner.run)

    def status(self) -> dict[str, Any]:
        out = {}
        for lead_id, runner in self.runners.items():
            stats = runner.stats
            out[lead_id] = {
                "holding": runner.lease.held,
                "epoch": runner.lease.epoch if runner.lease.held else None,
                "terms": stats.terms,
                "published": stats.published,
                "duplicates": stats.duplicates,
                "fenced": stats.fenced,
                "dropped": stats.dropped,
                "position_checks": self.books[lead_id].stats.checks,
                "check_failures": stats.check_failures,
                "snapshots": self.books[lead_id].stats.snapshots,
                "drifts": self.books[lead_id].stats.drifts,
            }
        return out
