"""The feed role for one lead (docs/cluster.md, "The feed role"): contend for the lead's lease; while
holding it, run the lead's feed (a `LeadFeed` in production) from the cursor kept in Redis and
publish every fill it hands on, in order, under the lease token; when the lease is lost (not
renewed, taken, or a publish comes back fenced) stop the feed and stand by again.

With a lead book (bot/cluster/lead_book.py) every fill is published with the lead's position
state it leaves, and the term checks the lead's positions against the venue (docs/cluster.md,
"Lead positions").

Fills the feed handed on but that were not published when the term ended are dropped on purpose:
the Redis cursor only moves with published fills, so whichever feed holds the lease next backfills
them from the venue. A publish whose reply is lost (Redis restarted, connection cut) is retried;
the trade-id dedupe in the publish script makes the retry harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog

from bot.cluster.fills import FillPublisher, Published, PublishResult
from bot.cluster.lead_book import LeadBook
from bot.cluster.lease import FeedLease
from bot.cluster.redis_client import raise_if_cancelled
from bot.core.types import LeadFill

log = structlog.get_logger(__name__)

# symbol -> (ts_ms, trade_id) of the newest fill published: LeadFeed's `cursors` shape
Cursors = Mapping[str, tuple[int, str]]


class RunnableFeed(Protocol):
    async def run(self) -> None: ...


# (cursors to backfill from, where to hand each fill) -> a feed; `LeadFeed` fits with its other
# arguments bound. The cursors mapping is updated as fills are published, so a later session of the
# same feed backfills from there.
FeedFactory = Callable[[Callable[[], Cursors], Callable[[LeadFill], None]], RunnableFeed]


@dataclass(slots=True)
class FeedStats:
    terms: int = 0  # lease holdings served
    published: int = 0
    duplicates: int = 0
    fenced: int = 0
    dropped: int = 0  # handed on but unpublished when a term ended (the next holder backfills them)
    check_failures: int = 0  # lead position checks that could not read the venue


class FeedRunner:
    def __init__(
        self, lease: FeedLease, publisher: FillPublisher, make_feed: FeedFactory, book: LeadBook | None = None
    ) -> None:
        if lease.lead != publisher.lead:
            raise ValueError("the lease and the publisher must be of the same lead")
        self.lease = lease
        self.publisher = publisher
        self.make_feed = make_feed
        self.book = book
        self.stats = FeedStats()
        self._retry_s = min(0.2, lease.renew_every_s)

    async def run(self) -> None:
        """Forever (cancel to stop): hold the lease, serve each term. Cancelled, it releases the
        lease so a standby takes over at once."""
        holding = asyncio.create_task(self.lease.hold(), name=f"lease:{self.lease.lead}")
        try:
            while True:
                raise_if_cancelled()
                await self.lease.held_event.wait()
                await self.serve_term()
        finally:
            holding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await holding
            with contextlib.suppress(Exception):
                await self.lease.release()

    async def serve_term(self) -> None:
        """One holding of the lease: returns when it is lost."""
        token = self.lease.token
        if token is None:
            return
        self.stats.terms += 1
        if self.book is not None and not await self._start_book(token):
            return
        cursors = {s: (c.ts_ms, c.trade_id) for s, c in (await self.publisher.cursors()).items()}
        queue: asyncio.Queue[LeadFill] = asyncio.Queue()
        feed = self.make_feed(lambda: cursors, queue.put_nowait)
        log.info("feed_term_started", lead=self.lease.lead, epoch=self.lease.epoch, cursors=len(cursors))
        tasks = [
            asyncio.create_task(feed.run(), name=f"feed:{self.lease.lead}"),
            asyncio.create_task(self._publish_loop(queue, token, cursors), name=f"publish:{self.lease.lead}"),
            asyncio.create_task(self._until_lost(token), name=f"term:{self.lease.lead}"),
        ]
        if self.book is not None:
            tasks.append(asyncio.create_task(self._check_loop(self.book, token, queue),
                                             name=f"check:{self.lease.lead}"))  # fmt: skip
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.stats.dropped += queue.qsize()
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.error("feed_term_failed", lead=self.lease.lead, task=task.get_name(),
                          error=repr(task.exception()))  # fmt: skip
        log.warning("feed_term_ended", lead=self.lease.lead, epoch=self.lease.epoch, dropped=queue.qsize())
        if self.lease.token == token:
            # fenced, or the feed itself stopped: let Redis say whether the lease is still ours
            # before another term starts, and never start terms back to back
            from redis.exceptions import RedisError

            with contextlib.suppress(RedisError, OSError):
                await self.lease.renew()
            await asyncio.sleep(self._retry_s)

    async def _start_book(self, token: str) -> bool:
        """The book's state for this term; False (after a pause) if it could not be had."""
        assert self.book is not None
        from redis.exceptions import RedisError

        try:
            if await self.book.start_term(self.publisher, token):
                return True
            log.warning("lead_state_fenced", lead=self.lease.lead, token=token)
        except (RedisError, OSError) as exc:
            raise_if_cancelled()
            log.warning("lead_state_redis_error", lead=self.lease.lead, error=str(exc))
        except Exception as exc:  # the venue read of a first term: retried at the next term
            log.warning("lead_state_read_failed", lead=self.lease.lead, error=repr(exc))
        await asyncio.sleep(self._retry_s)
        return False

    async def _check_loop(self, book: LeadBook, token: str, queue: asyncio.Queue[LeadFill]) -> None:
        """The lead's positions against the venue's, at once and every `check_every_s`; returns
        only when a snapshot publish comes back fenced (the term is over)."""
        from redis.exceptions import RedisError

        while True:
            raise_if_cancelled()
            try:
                if not await book.check(self.publisher, token, busy=lambda: not queue.empty()):
                    self.stats.fenced += 1
                    return
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                raise_if_cancelled()
                log.warning("lead_check_redis_error", lead=self.lease.lead, error=str(exc))
            except Exception as exc:  # a venue read failed: the next check reads again
                self.stats.check_failures += 1
                log.warning("lead_check_failed", lead=self.lease.lead, error=repr(exc))
            raise_if_cancelled()  # a cancel redis-py swallowed must not wait out a whole period
            await asyncio.sleep(book.confirm_s if book.suspect else book.check_every_s)

    async def _publish(self, fill: LeadFill, token: str) -> PublishResult:
        if self.book is None:
            return await self.publisher.publish(fill, token=token)
        async with self.book.lock:
            state = self.book.state_after(fill).encode()
            result = await self.publisher.publish(fill, token=token, state=state,
                                                  lead_equity=self.book.lead.equity)  # fmt: skip
            if result.status is Published.PUBLISHED:
                self.book.applied(fill)
            return result

    async def _until_lost(self, token: str) -> None:
        while self.lease.token == token and self.lease.held:
            await asyncio.sleep(self._retry_s / 4)

    async def _publish_loop(
        self, queue: asyncio.Queue[LeadFill], token: str, cursors: dict[str, tuple[int, str]]
    ) -> None:
        from redis.exceptions import RedisError

        while True:
            fill = await queue.get()
            while True:
                raise_if_cancelled()
                try:
                    result = await self._publish(fill, token)
                    break
                except (RedisError, OSError) as exc:
                    log.warning("publish_redis_error", lead=fill.lead, trade_id=fill.trade_id, error=str(exc))
                    await asyncio.sleep(self._retry_s)
            if result.status is Published.FENCED:
                self.stats.fenced += 1
                self.stats.dropped += 1
                log.warning("publish_fenced", lead=fill.lead, trade_id=fill.trade_id, token=token)
                return  # the term is over; renew() will find the lease is not ours
            if result.status is Published.PUBLISHED:
                self.stats.published += 1
            else:
                self.stats.duplicates += 1
            previous = cursors.get(fill.symbol)
            if previous is None or previous[0] <= fill.ts_ms:
                cursors[fill.symbol] = (fill.ts_ms, fill.trade_id)
