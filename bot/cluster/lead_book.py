"""The feed's running copy of its lead's position state (docs/cluster.md, "Lead positions").

While a feed holds the lead's lease, the lead state stored in Redis is exactly the state after the
stream's newest entry: every fill is published together with the state it leaves (the publish
script stores both in one step, bot/cluster/fills.py), so a shard starting at any moment reads a
state and the number of the entry it holds, and needs no lead key.

- **A term starts** from the stored state (it holds every entry published, by whichever feed); the
  very first term of a lead, with nothing stored, publishes the venue's positions as a snapshot
  entry before any fill.
- **Each fill** is published with the state `LeadDoc.after` computes, by the engine's own rule (a
  fill the last snapshot already holds changes nothing); the book applies it once Redis has it.
- **A check** reads the lead's positions from the venue every `check_every_s` (the reconcile
  interval) and at the term's start. If they differ from the book's (a fill the feed never saw, a
  term that began from a stale state), no fill moved the book meanwhile, and the next read
  `confirm_s` later still differs (a fill on its way over the websocket is not a drift), the venue's
  positions are published as a snapshot entry: every shard adopts them in stream order, as one process adopts
  its reconciler's correction. The venue's per-position update time marks the fills it holds, so a
  fill published after the snapshot but already in it changes nothing anywhere.

The book is the feed engine's own `LeadRuntime`, so the feed's `/status` shows the lead as the
shards see it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from bot.cluster.fills import FillPublisher, Published
from bot.cluster.lead_doc import LeadDoc
from bot.core.types import LeadFill, PositionSnapshot
from bot.live.lead_state import LeadRuntime

log = structlog.get_logger(__name__)

# The lead's positions from the venue and the venue's time just before the read.
VenueRead = Callable[[], Awaitable[tuple[dict[str, PositionSnapshot], int]]]


@dataclass(slots=True)
class BookStats:
    checks: int = 0
    snapshots: int = 0  # snapshot entries published (the first state, drift corrections)
    drifts: int = 0


class LeadBook:
    def __init__(
        self, lead: LeadRuntime, read_venue: VenueRead, *, check_every_s: float, confirm_s: float = 1.0
    ) -> None:
        self.lead = lead
        self.read_venue = read_venue
        self.check_every_s = check_every_s
        self.confirm_s = min(confirm_s, check_every_s)
        self.suspect = False  # the last check differed: the next one, confirm_s later, decides
        self.lock = asyncio.Lock()  # a publish and a check's snapshot never interleave
        self.moves = 0  # fills applied: a check whose read spans one cannot be ordered against it
        self.stats = BookStats()

    async def start_term(self, publisher: FillPublisher, token: str) -> bool:
        """Take the stored state, or publish the venue's as the first. False: fenced."""
        async with self.lock:
            stored = await publisher.state()
            if stored is not None:
                equity = self.lead.equity  # the engine's upkeep keeps it fresher than the store
                LeadDoc.decode(stored.doc).install(self.lead)
                if equity:
                    self.lead.equity = equity
                self.moves += 1
                log.info("lead_state_loaded", lead=self.lead.id, seq=stored.doc_seq,
                         positions={s: str(q) for s, q in self.lead.positions.items()})  # fmt: skip
                return True
        snapshot, server_ms = await self.read_venue()
        async with self.lock:
            self.lead.seed(snapshot, server_ms)
            self.moves += 1
            return await self._publish_snapshot(publisher, token, "first")

    def state_after(self, fill: LeadFill) -> LeadDoc:
        return LeadDoc.of(self.lead).after(fill, self.lead.equity)

    def applied(self, fill: LeadFill) -> None:
        """`fill` is in the stream: apply it as every shard will."""
        self.lead.mark_seen(fill.trade_id)
        if not self.lead.in_snapshot(fill):
            self.lead.apply(fill)
        self.moves += 1

    async def check(self, publisher: FillPublisher, token: str, *, busy: Callable[[], bool]) -> bool:
        """Compare with the venue; publish its positions on a difference. False: fenced."""
        moves = self.moves
        snapshot, server_ms = await self.read_venue()
        self.stats.checks += 1
        async with self.lock:
            if self.moves != moves or busy():
                self.suspect = False
                return True  # a fill moved the book, or waits to: the read cannot be ordered
            venue = {s: p.qty for s, p in snapshot.items() if p.qty != 0}
            leverage = {s: p.leverage for s, p in snapshot.items() if p.leverage}
            known = {s: self.lead.leverage.get(s) for s in leverage}
            if venue == self.lead.positions and leverage == known:
                self.suspect = False
                return True
            if not self.suspect:
                self.suspect = True
                return True
            self.suspect = False
            self.stats.drifts += 1
            log.warning("lead_position_drift", lead=self.lead.id,
                        tracked={s: str(q) for s, q in self.lead.positions.items()},
                        venue={s: str(q) for s, q in venue.items()})  # fmt: skip
            self.lead.seed(snapshot, server_ms)
            self.moves += 1
            return await self._publish_snapshot(publisher, token, "drift")

    async def _publish_snapshot(self, publisher: FillPublisher, token: str, why: str) -> bool:
        result = await publisher.publish_snapshot(LeadDoc.of(self.lead).encode(), token=token)
        if result.status is not Published.PUBLISHED:
            return False
        self.stats.snapshots += 1
        log.info("lead_snapshot_published", lead=self.lead.id, why=why, seq=result.seq,
                 positions={s: str(q) for s, q in self.lead.positions.items()})  # fmt: skip
        return True
