"""The engine: wires leads, followers, their clients and the journal, and routes each lead fill
to every follower of that lead.

Start-up order matters for "nothing lost, nothing doubled": markets once per venue; every intent the
journal does not know as settled is looked up by its client id BEFORE anything is placed; follower
positions and lead positions are taken from the venue (the source of truth); then the streams start
(each backfills since its durable cursor) and a reconciliation pass converges every follower.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from decimal import Decimal
from functools import partial
from typing import Any, Literal

import structlog

from bot.core.fanout import fanout_order
from bot.core.trading_state import StateChange, StateCode
from bot.core.types import ZERO, Credentials, LeadFill, TradingState
from bot.live import follower_build, follower_worker, stops
from bot.live.budget import RequestBudget, paced
from bot.live.config_view import EngineConf, FollowerConf
from bot.live.copy_lag import CopyLags
from bot.live.follower import FollowerRuntime
from bot.live.follower_events import FollowerEvents
from bot.live.lead_feed import FeedSettings, LeadFeed
from bot.live.lead_state import LeadRuntime
from bot.live.lead_view import seen_by
from bot.live.mark_feed import MarkFeed, mark_feed_for, symbols_in_use, venues_in_use
from bot.live.metrics import Metrics
from bot.live.pnl import FollowerPnl
from bot.live.ports import AlertPort, JournalPort, SlippagePort
from bot.live.settlement import Settlements
from bot.live.startup import load_leads, prepare_followers
from bot.live.supervisor import Supervisor
from bot.live.trading_states import Standing, StateOwner
from bot.live.venue_runtime import Venue
from bot.live.work import FillWork, FollowerSettings

log = structlog.get_logger("copybot.engine")


class Engine:
    def __init__(
        self,
        cfg: EngineConf,
        journal: JournalPort,
        follower_settings: Mapping[str, FollowerSettings],
        *,
        slippage: SlippagePort,
        sim_urls: tuple[str, str] | None = None,
        metrics: Metrics | None = None,
        alerts: AlertPort | None = None,
    ) -> None:
        self.cfg = cfg
        self.follower_settings = follower_settings
        self.journal = journal
        self.metrics = metrics or Metrics()
        self.alerts = alerts
        self.slippage = slippage
        self.venues = {name: Venue.from_config(name, v, sim_urls) for name, v in cfg.venues.items()}
        self.leads: dict[str, LeadRuntime] = {}
        self.feeds: dict[str, LeadFeed] = {}
        self.followers: dict[str, FollowerRuntime] = {}
        self.followers_of: dict[str, list[FollowerRuntime]] = {}
        # Followers leaving with on_leave close / follow_exits: still fed the lead's fills until
        # flat, but no longer counted as followers (AUM, fan-out ranks). bot/live/membership.py.
        self.departing_of: dict[str, list[FollowerRuntime]] = {}
        # The latest price per unified symbol, whichever venue said it (mark feeds, lead fills,
        # snapshots); a symbol listed under one name on two venues shares it. `venue_marks` keeps
        # each venue's feed apart (LeadView prefers the follower's own venue's).
        self.marks: dict[str, Decimal] = {}
        self.venue_marks: dict[str, dict[str, Decimal]] = {}
        self.mark_feeds: dict[str, MarkFeed] = {}
        self._lead_venue = {lead.id: lead.venue for lead in cfg.leads}
        self.states = StateOwner(journal, self.metrics, self.alert)
        self.supervisor = Supervisor(self.metrics, self.alert)
        self.mark_watch = stops.MarkWatch(self)
        self._before_kill: Standing | None = None  # the global standing the kill switch replaced
        self.started_at = time.time()
        self.ready = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self.kill_file_seen = False
        self.stopping = False
        self.lags = CopyLags(self.metrics, lambda venue: self.venues[venue].clock)
        self.pnl = FollowerPnl(journal, self.metrics)  # each follower's own results (docs/pnl.md)
        self.events = FollowerEvents(
            self.metrics, self.lags, slippage, self.supervisor,
            venue_of=lambda fid: self.cfg.follower(fid).venue,
            after_fill=lambda follower: stops.check(self, follower), pnl=self.pnl,
        )  # fmt: skip
        self.observers = self.events.observers
        # Set by the cluster's shard role only: which followers still owe a fill its disposition.
        self.settlements: Settlements | None = None
        # Asked before each follower order is signed (bot/live/executor.py): a cluster shard fences
        # itself past its heartbeat bound (bot/cluster/shard.py); a single process never does.
        self.send_fence: Callable[[], str | None] = lambda: None
        self.lead_feeds_here = True  # False in a cluster role: feeds, when any, are the leases held
        # Where the leads' positions come from (docs/cluster.md, "Lead positions"): "venue" (one
        # process: a start snapshot, fills, the reconciler's checks), "feed" (a cluster feed: its
        # lead book checks the venue and publishes), "stream" (a shard: the feed's published state
        # and entries; it never reads a lead's account and holds no lead key).
        self.lead_positions_from: Literal["venue", "feed", "stream"] = "venue"

    @property
    def last_copy_lag_ms(self) -> float | None:
        return self.lags.last_ms

    @property
    def internal_lag_ms(self) -> deque[float]:
        return self.lags.internal_ms

    # -- EngineView, read by followers --------------------------------------------------------

    def lead_position(self, lead: str, symbol: str) -> Decimal:
        runtime = self.leads.get(lead)
        return runtime.positions.get(symbol, ZERO) if runtime else ZERO

    def lead_contract_size(self, lead: str, symbol: str) -> Decimal:
        market = self.leads[lead].markets.get(symbol) if lead in self.leads else None
        return market.contract_size if market else Decimal(1)

    def lead_equity(self, lead: str) -> Decimal:
        return self.leads[lead].equity if lead in self.leads else ZERO

    @property
    def state(self) -> TradingState:
        return self.states.global_standing.state

    @property
    def state_reason(self) -> str:
        return self.states.global_standing.reason

    def global_state(self) -> TradingState:
        return self.state

    def kill_switch(self) -> bool:
        return self.kill_file_seen

    def mark(self, symbol: str) -> Decimal | None:
        return self.marks.get(symbol)

    def venue_mark(self, venue: str, symbol: str) -> Decimal | None:
        """`symbol`'s mark from `venue`'s own public feed while it is connected, else None (a fill
        price in `marks` may then be newer)."""
        feed = self.mark_feeds.get(venue)
        return self.venue_marks.get(venue, {}).get(symbol) if feed is not None and feed.connected else None

    def on_mark(self, symbol: str, price: Decimal, *, venue: str | None = None) -> None:
        """A new price for a symbol (a venue's public mark feed; a lead fill's price where no feed
        is live): every follower's equity and stops move with it, checked once the current
        fan-out is queued (bot.live.stops)."""
        self.marks[symbol] = price
        self.mark_watch.changed()

    # -- start-up -----------------------------------------------------------------------------

    def client_for(
        self, venue: Venue, account_id: str, *, pro: bool = False, timeout_ms: int | None = None
    ) -> Any:
        keepalive_ms = int(self.cfg.feed.keepalive_s * 1000)
        creds = self.cfg.credentials_for(account_id)
        return venue.client(creds, pro=pro, keepalive_ms=keepalive_ms, timeout_ms=timeout_ms)

    async def start(
        self,
        *,
        lead_feeds: bool = True,
        followers: bool = True,
        marks: bool = True,
        lead_state: Callable[[LeadRuntime], Awaitable[None]] | None = None,
    ) -> None:
        """Markets, lead snapshots, followers, feeds. The cluster roles leave out what another
        process does: a shard takes lead fills from Redis (no lead feeds), and with `lead_state`
        the leads' positions too (no lead key: its lead clients read public data only), and
        prepares its followers as it gains their partitions; a feed serves no follower
        (docs/cluster.md)."""
        await asyncio.gather(*(v.open() for v in self.venues.values()))
        if lead_state is not None:
            self.lead_positions_from = "stream"
        for lead_cfg in self.cfg.leads:
            venue = self.venues[lead_cfg.venue]
            # a shard's lead client reads public data only (order books, markets): no key
            rest = venue.client(Credentials("", "")) if lead_state else self.client_for(venue, lead_cfg.id)
            self.leads[lead_cfg.id] = LeadRuntime(
                id=lead_cfg.id, rest=rest, adapter=venue.adapter, markets=venue.markets,
                symbols_configured=lead_cfg.symbols,
            )  # fmt: skip
            self.followers_of[lead_cfg.id] = []
        await load_leads(self, lead_state)
        for f_cfg in self.cfg.followers:
            if f_cfg.enabled and followers:
                self._add_follower(f_cfg)
        self._restore_states()
        kill_file = self.cfg.kill_switch_file
        if kill_file and os.path.exists(kill_file):  # noqa: ASYNC240 - once, before anything is placed
            self.set_kill_switch(True, kill_file)
        sem = asyncio.Semaphore(64)
        await prepare_followers(self, list(self.followers.values()), sem)
        await self.pnl.prepare(list(self.followers.values()))
        for follower in self.followers.values():
            self.supervisor.spawn(f"follower:{follower.id}", partial(follower_worker.run, follower))
        if self.cfg.feed.marks and marks:
            for name in venues_in_use(self):
                self._start_mark_feed(self.venues[name])
        self.lead_feeds_here = lead_feeds
        if lead_feeds:
            for lead in self.leads.values():
                self._start_feed(lead)

    def _add_follower(self, cfg: FollowerConf) -> None:
        follower = self.build_follower(cfg, self.follower_settings[cfg.id])
        self.followers[cfg.id] = follower
        for link in cfg.follows:
            self.followers_of[link.lead].append(follower)

    def build_follower(self, cfg: FollowerConf, settings: FollowerSettings) -> FollowerRuntime:
        """A follower's runtime and client, not yet fed any fill (bot/live/follower_build.py)."""
        return follower_build.build(self, cfg, settings)

    def disposed(self, follower: FollowerRuntime, trade_ids: list[str]) -> None:
        if self.settlements is not None:
            self.settlements.disposed(follower.id, trade_ids)

    async def resync_follower(self, follower: FollowerRuntime) -> None:
        """Adopt the venue's positions and equity as the truth (bot/live/follower_build.py)."""
        await follower_build.resync(self, follower)

    def budget_of(self, follower_id: str) -> RequestBudget:
        """The request budget of a follower's venue address."""
        return self.venues[self.cfg.follower(follower_id).venue].budget

    async def read_lead_book(self, lead_id: str, symbol: str) -> dict[str, Any]:
        """A lead symbol's order book, as a background read paced in the lead's address budget."""
        lead = self.leads[lead_id]
        budget = self.venues[self.cfg.lead(lead_id).venue].budget
        book: dict[str, Any] = await paced(
            budget, lead.adapter, lead.rest, lead.adapter.weight("book"),
            lambda: lead.rest.fetch_order_book(symbol),
        )  # fmt: skip
        return book

    def _backfill_cursors(self, lead: LeadRuntime) -> dict[str, tuple[int, str]]:
        """Backfill each symbol from its durable cursor; a symbol never traded since the start
        snapshot from the snapshot itself (fills between it and the stream connecting)."""
        cursors: dict[str, tuple[int, str]] = dict(self.journal.cursors(lead.id))
        for symbol in lead.symbols(set(cursors)):
            cursors.setdefault(symbol, (lead.snapshot_default_ms, ""))
        return cursors

    def _start_feed(self, lead: LeadRuntime) -> None:
        feed = self.make_lead_feed(
            lead.id,
            symbols=lambda: lead.symbols(set(self.journal.cursors(lead.id))),
            cursors=lambda: self._backfill_cursors(lead),
            on_fill=self.on_lead_fill,
        )
        self.feeds[lead.id] = feed
        self.supervisor.spawn(f"feed:{lead.id}", feed.run)

    def make_lead_feed(
        self,
        lead_id: str,
        *,
        symbols: Callable[[], Iterable[str]],
        cursors: Callable[[], Mapping[str, tuple[int, str]]],
        on_fill: Callable[[LeadFill], None],
    ) -> LeadFeed:
        """A lead's websocket feed with its backfill, handing fills to `on_fill` (the engine's own
        fan-out here; the lead's Redis stream in the cluster's feed role)."""
        lead = self.leads[lead_id]
        venue = self.venues[self.cfg.lead(lead_id).venue]
        fc = self.cfg.feed
        return LeadFeed(
            lead_id,
            adapter=venue.adapter,
            make_stream_client=lambda: self.client_for(venue, lead_id, pro=True),
            rest=lead.rest,
            symbols=symbols,
            cursors=cursors,
            on_fill=on_fill,
            settings=FeedSettings(
                keepalive_s=fc.keepalive_s,
                stale_after_s=fc.stale_after_s,
                backoff_initial_s=fc.backoff_initial_s,
                backoff_max_s=fc.backoff_max_s,
                backfill_limit=fc.backfill_limit,
            ),
            on_event=self._on_feed_event,
        )

    def _start_mark_feed(self, venue: Venue) -> None:
        symbols = partial(symbols_in_use, self, venue.name)
        feed = mark_feed_for(venue, self.cfg.feed, symbols, self._on_feed_mark, self.metrics)
        self.mark_feeds[venue.name] = feed
        self.supervisor.spawn(f"marks:{venue.name}", feed.run)

    def _on_feed_mark(self, venue: str, symbol: str, price: Decimal) -> None:
        self.venue_marks.setdefault(venue, {})[symbol] = price
        self.on_mark(symbol, price, venue=venue)

    # -- the hot path ---------------------------------------------------------------------------

    def on_lead_fill(self, fill: LeadFill) -> None:
        lead = self.leads[fill.lead]
        if lead.seen(fill.trade_id) or (
            fill.source == "rest" and self.journal.has_lead_fill(fill.lead, fill.trade_id)
        ):
            lead.mark_seen(fill.trade_id)
            self.metrics.duplicate_fills.labels(fill.lead).inc()
            return
        lead.mark_seen(fill.trade_id)
        if lead.in_snapshot(fill):
            self.journal.record_lead_fill(fill, "in_snapshot", "already in the position snapshot")
            return
        applied = lead.apply(fill)
        if self.venue_mark(self._lead_venue[fill.lead], fill.symbol) is None:
            self.on_mark(fill.symbol, fill.price)  # no live mark feed for it: the fill price stands in
        self.lags.fill_seen(fill, self.cfg.lead(fill.lead).venue)
        work = FillWork(fill, applied.before, applied.after, applied.new_entry, lead.equity)
        followers = self.followers_of[fill.lead]
        if self.departing_of.get(fill.lead):
            followers = followers + self.departing_of[fill.lead]
        by_id = {f.id: f for f in followers}
        if self.settlements is not None:
            self.settlements.submitted(fill.trade_id, by_id)
        for rank, follower_id in enumerate(fanout_order(list(by_id), fill.trade_id), start=1):
            by_id[follower_id].submit(seen_by(by_id[follower_id], work))
            by_id[follower_id].fanout_rank[fill.trade_id] = rank
        self.journal.record_lead_fill(fill, "accepted")
        self.journal.set_cursor(fill.lead, fill.symbol, fill.ts_ms, fill.trade_id)
        self.metrics.lead_fills.labels(fill.lead).inc()
        log.info("lead_fill", lead=fill.lead, trade_id=fill.trade_id, symbol=fill.symbol,
                 side=fill.side.value, qty=str(fill.qty), price=str(fill.price), source=fill.source,
                 position=str(applied.after), followers=len(followers))  # fmt: skip

    def _on_feed_event(self, kind: str, detail: dict[str, Any]) -> None:
        if kind in ("stream_down", "stream_stale"):
            self.metrics.reconnects.labels(detail["lead"]).inc()
        if kind == "stream_stale":
            self.alert("stream_stale", detail["lead"], detail)
        if kind == "stream_live":
            self.journal.record_event("stream_live", detail["lead"], detail)

    def alert(self, kind: str, subject: str, detail: dict[str, Any], severity: str = "warning") -> None:
        self.journal.record_event(kind, subject, detail)
        if self.alerts is not None:
            self.alerts.send(kind, subject, detail, severity=severity)

    # -- control ------------------------------------------------------------------------------

    def _restore_states(self) -> None:
        """An operator's halt or reduce-only, and a stop, outlive a restart; conditions start-up
        checks again (a key, the kill-switch file, a worker) do not."""
        self.states.restore({fid: f.standing for fid, f in self.followers.items()})

    def set_follower_state(
        self, follower: FollowerRuntime, state: TradingState, code: StateCode, reason: str
    ) -> StateChange:
        return self.states.request(follower.id, follower.standing, state, code, reason)

    def set_state(self, state: TradingState, reason: str, follower: str | None = None) -> StateChange:
        """Operator control: globally or for one follower."""
        if follower is None:
            return self.states.request_global(state, StateCode.OPERATOR, reason)
        return self.set_follower_state(self.followers[follower], state, StateCode.OPERATOR, reason)

    def set_kill_switch(self, engaged: bool, source: str) -> None:
        """The kill-switch file appeared (HALT everything) or went away (back to the global state
        from before it appeared)."""
        self.kill_file_seen = engaged
        standing = self.states.global_standing
        if engaged:
            self._before_kill = Standing(standing.state, standing.code, standing.reason)
            self.states.request_global(
                TradingState.HALTED, StateCode.KILL_SWITCH, f"kill switch file {source}"
            )
        elif standing.code is StateCode.KILL_SWITCH:
            before = self._before_kill or Standing()
            reason = f"kill switch file {source} removed" + (
                f"; back to: {before.reason}" if before.reason else ""
            )
            self.states.request_global(before.state, StateCode.KILL_SWITCH, reason)
        self._before_kill = self._before_kill if engaged else None

    def streams_fresh(self) -> bool:
        fresh = all(f.is_fresh() for f in self.feeds.values())
        return fresh and (bool(self.feeds) or not self.lead_feeds_here)

    def idle(self) -> bool:
        return all(f.queue.empty() and not f.busy and not f.retry_pending for f in self.followers.values())

    async def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.idle():
                return True
            await asyncio.sleep(0.01)
        return self.idle()

    # -- shutdown -------------------------------------------------------------------------------

    def add_task(self, task: asyncio.Task[Any]) -> None:
        self._tasks.append(task)

    async def stop(self, drain_timeout: float | None = None, *, first: Iterable[str] = ()) -> bool:
        """Stop taking new fills, let in-flight work settle (bounded), then close everything.
        `first`: more tasks that bring fills in (a cluster shard's consumers), stopped with the feeds."""
        self.stopping = True
        # The mark feeds stop with the lead feeds: closing a ccxt.pro client takes a quarter second
        # (ccxt's timeout_on_exit), spent once for all instead of once more after the drain.
        feeds = [f"feed:{name}" for name in self.feeds] + [f"marks:{name}" for name in self.mark_feeds]
        feeds += [f"feed:{name}" for name in self.leads if not self.lead_feeds_here] + list(first)
        await self.supervisor.stop(feeds)
        timeout = self.cfg.executor.drain_timeout_s if drain_timeout is None else drain_timeout
        drained = await self.wait_idle(timeout)
        await self.supervisor.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        clients = [lead.rest for lead in self.leads.values()]
        clients += [f.client for f in self.followers.values()]
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
        await asyncio.gather(*(v.close() for v in self.venues.values()), return_exceptions=True)
        log.info("engine_stopped", drained=drained)
        return drained
