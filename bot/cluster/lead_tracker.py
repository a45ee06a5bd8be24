"""A shard's leads, from the lead streams alone (docs/cluster.md, "Lead positions").

A shard never reads a lead's account: it starts each lead from the state the feed stored with the
stream (bot/cluster/fills.py) and applies every later entry exactly once, in stream order, by its
number (`seq`):

- an entry at or below the number applied is already in the lead's state (the start state holds it,
  or another partition's group delivered it first): nothing happens to the lead, and the caller
  still waits for its own followers' settlement of a fill;
- an entry past the next number means this shard has not seen the ones between (its groups lag
  each other, or a partition gained late starts ahead of the rest): they are read from the stream
  first and applied in order, so the lead's position, and each fill's before/after that sizes the
  copies, is always the stream's;
- a fill goes to the engine's fan-out (`Engine.on_lead_fill`) with the lead's equity as the feed
  knew it at publish; a snapshot entry replaces the lead's state (the feed found the venue's
  positions differ) and the followers converge on it at the shard's next reconcile pass, as in one
  process after its reconciler corrects a lead;
- an entry trimmed from the stream before this shard applied it (a shard down longer than the
  stream's retention) cannot be replayed: the shard takes the feed's stored state, which holds it,
  logs `lead_stream_gap` and lets the reconcile pass converge the followers.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog

from bot.cluster.codec import BadEntry, StreamEntry, StreamFill, StreamSnapshot, decode_entry
from bot.cluster.fills import StoredState, read_state
from bot.cluster.keys import Keys
from bot.cluster.lead_doc import LeadDoc
from bot.cluster.redis_client import raise_if_cancelled
from bot.live.engine import Engine
from bot.live.lead_state import LeadRuntime

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger(__name__)

PAGE = 500  # entries per XRANGE while catching up


class LeadTracker:
    def __init__(self, engine: Engine, client: Redis, keys: Keys, *, wait_log_s: float = 10.0) -> None:
        self.engine = engine
        self.client = client
        self.keys = keys
        self.wait_log_s = wait_log_s
        self.applied: dict[str, tuple[int, str]] = {}  # lead -> (seq, entry id) of the newest applied
        self.caught_up = 0  # entries read from the stream out of their groups' turn
        self.gaps = 0
        self._locks: dict[str, asyncio.Lock] = {}

    # -- start --------------------------------------------------------------------------------

    async def load(self, lead: LeadRuntime) -> None:
        """The lead's state as the feed stored it (engine.start's `lead_state`): waits for the
        first feed to store one, logging `waiting_for_lead_state` meanwhile."""
        from redis.exceptions import RedisError

        loop = asyncio.get_running_loop()
        next_log = loop.time()
        while True:
            raise_if_cancelled()
            try:
                stored = await read_state(self.client, self.keys, lead.id)
            except (RedisError, OSError) as exc:
                stored, why = None, f"Redis: {exc}"
            else:
                why = "no feed has published this lead's state yet (is a feed running?)"
            if stored is not None:
                break
            if loop.time() >= next_log:
                log.warning("waiting_for_lead_state", lead=lead.id, reason=why)
                next_log = loop.time() + self.wait_log_s
            await asyncio.sleep(0.2)
        self._install(lead, stored)
        log.info("lead_state_loaded", lead=lead.id, seq=stored.doc_seq, equity=str(lead.equity),
                 positions={s: str(q) for s, q in lead.positions.items()})  # fmt: skip

    def _install(self, lead: LeadRuntime, stored: StoredState) -> None:
        LeadDoc.decode(stored.doc).install(lead)
        self.applied[lead.id] = (stored.doc_seq, stored.doc_entry)

    # -- entries ------------------------------------------------------------------------------

    async def handle(self, item: StreamEntry) -> None:
        """Apply `item` (and any entry before it this shard has not applied) to its lead."""
        if item.seq is None:  # published before entries were numbered: its group's order only
            assert isinstance(item, StreamFill)
            self.engine.on_lead_fill(item.fill)
            return
        async with self._lock(item.lead):
            seq, _ = self.applied[item.lead]
            if item.seq <= seq:
                return
            if item.seq > seq + 1:
                await self._catch_up(item.lead, before=item.entry_id)
                seq = self.applied[item.lead][0]
                if item.seq > seq + 1:  # the entries between are trimmed
                    await self._gap(item.lead, seq, item.seq)
                if item.seq <= self.applied[item.lead][0]:
                    return  # the stored state already holds it
            self._apply(item)

    async def catch_up(self) -> None:
        """Apply every entry published so far (before a gained partition's followers are
        converged: they must start from the lead's latest position)."""
        for lead in self.engine.leads:
            async with self._lock(lead):
                await self._catch_up(lead, before=None)

    async def _catch_up(self, lead: str, *, before: str | None) -> None:
        stream = self.keys.stream(lead)
        entry = self.applied[lead][1]
        low = f"({entry}" if entry else "-"
        high = f"({before}" if before else "+"
        while True:
            rows: Any = await self.client.xrange(stream, min=low, max=high, count=PAGE)
            for entry_id, raw in rows or ():
                try:
                    item = decode_entry(entry_id, raw)
                except BadEntry as exc:
                    log.error("bad_lead_entry_skipped", lead=lead, error=str(exc))
                    continue
                seq = self.applied[lead][0]
                if item.seq is None or item.seq <= seq:
                    continue
                if item.seq != seq + 1:
                    await self._gap(lead, seq, item.seq)  # then the entries the stored state lacks
                    if item.seq <= self.applied[lead][0]:
                        continue
                self._apply(item)
                self.caught_up += 1
            if not rows or len(rows) < PAGE:
                return
            last = rows[-1][0]
            low = f"({last.decode() if isinstance(last, bytes) else last}"

    async def _gap(self, lead: str, have: int, found: int) -> None:
        stored = await read_state(self.client, self.keys, lead)
        if stored is None or stored.doc_seq < found - 1:
            raise RuntimeError(f"lead {lead}: stream entries {have + 1}..{found - 1} are gone and the "
                               "stored state does not hold them")  # fmt: skip
        self.gaps += 1
        log.error("lead_stream_gap", lead=lead, applied=have, next_found=found, adopted=stored.doc_seq)
        self._install(self.engine.leads[lead], stored)

    def _apply(self, item: StreamEntry) -> None:
        lead = self.engine.leads[item.lead]
        if isinstance(item, StreamSnapshot):
            LeadDoc.decode(item.doc).install(lead)
            log.warning("lead_snapshot_adopted", lead=item.lead, seq=item.seq,
                        positions={s: str(q) for s, q in lead.positions.items()})  # fmt: skip
        else:
            if item.lead_equity is not None:
                lead.equity = item.lead_equity
            self.engine.on_lead_fill(item.fill)
        assert item.seq is not None
        self.applied[item.lead] = (item.seq, item.entry_id)

    def _lock(self, lead: str) -> asyncio.Lock:
        return self._locks.setdefault(lead, asyncio.Lock())
