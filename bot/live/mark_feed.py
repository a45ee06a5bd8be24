"""MarkFeed: one supervised task per venue that keeps the mark price of every symbol copybot trades
there, from the venue's public stream (no key, no REST weight; docs/architecture.md, "Mark prices").

Each session: a fresh keyless ccxt.pro client (one public connection per venue, whatever the number
of followers), subscribed to the symbols in use (`symbols()`: the union of the leads' and
followers' markets on the venue), then `on_mark(venue, symbol, price)` for every change until the
stream closes, goes silent for longer than `stale_after_s` (no update and no pong), or the set of
symbols grows (the next session subscribes to the new set on a new connection; ccxt would open one
socket per distinct set otherwise). Between sessions: exponential backoff with jitter. A feed that is
down changes nothing else: the engine's marks keep their last value and fills still update them.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import structlog

from bot.core.errors import short
from bot.live.config_view import EngineConf, FeedConf
from bot.live.follower import FollowerRuntime
from bot.live.lead_state import LeadRuntime
from bot.live.lead_view import follower_symbols
from bot.live.metrics import Metrics
from bot.live.ports import JournalPort
from bot.live.venue_runtime import Venue
from bot.venues import VenueAdapter
from bot.venues.ccxt_stream import is_connected, last_pong_ms

log = structlog.get_logger("copybot.marks")

OnMark = Callable[[str, str, Decimal], None]  # venue, unified symbol, mark


class MarkStale(Exception):
    pass


class SymbolsChanged(Exception):
    pass


@dataclass(frozen=True, slots=True)
class MarkFeedSettings:
    stale_after_s: float = 10.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    connect_timeout_s: float = 15.0
    resubscribe_check_s: float = 2.0  # how often the set of symbols in use is looked at again
    idle_wait_s: float = 2.0  # with no symbol in use, how long before looking again


class MarkFeed:
    def __init__(
        self,
        venue: str,
        *,
        adapter: VenueAdapter,
        make_client: Callable[[], Any],
        symbols: Callable[[], Collection[str]],
        on_mark: OnMark,
        settings: MarkFeedSettings,
        metrics: Metrics | None = None,
    ) -> None:
        self.venue = venue
        self._adapter = adapter
        self._make_client = make_client
        self._symbols = symbols
        self._on_mark = on_mark
        self._settings = settings
        self._metrics = metrics
        self._client: Any = None
        self.marks: dict[str, Decimal] = {}  # this venue's marks, by its unified symbols
        self.subscribed: tuple[str, ...] = ()
        self.connected = False
        self.sessions = 0
        self.reconnects = 0
        self.updates = 0
        self.last_error: str | None = None
        self._last_update = 0.0  # monotonic; 0: never
        self._connected_at = 0.0
        if metrics is not None:  # read at each scrape: the age grows while the feed is down too
            metrics.mark_age.labels(venue).set_function(lambda: self.age_s() or float("nan"))

    # -- health -------------------------------------------------------------------------------

    def age_s(self) -> float | None:
        """Seconds since the last mark update (None before the first)."""
        return time.monotonic() - self._last_update if self._last_update else None

    def _liveness_age_s(self) -> float:
        """Seconds since the stream last showed life: an update, a pong, or the connect."""
        last = max(self._last_update, self._connected_at)
        pong = last_pong_ms(self._client) if self._client is not None else None
        if pong is not None:  # ccxt stamps pongs with wall-clock ms
            last = max(last, time.monotonic() - (time.time() * 1000 - pong) / 1000)
        return max(0.0, time.monotonic() - last)

    def status(self) -> dict[str, Any]:
        age = self.age_s()
        return {
            "connected": self.connected,
            "age_s": round(age, 3) if age is not None else None,
            "symbols": list(self.subscribed),
            "updates": self.updates,
            "sessions": self.sessions,
            "reconnects": self.reconnects,
            "last_error": self.last_error,
        }

    # -- supervision --------------------------------------------------------------------------

    async def run(self) -> None:
        backoff = self._settings.backoff_initial_s
        while True:
            symbols = tuple(sorted(self._symbols()))
            if not symbols:  # nothing traded on this venue yet
                await asyncio.sleep(self._settings.idle_wait_s)
                continue
            started = time.monotonic()
            try:
                await self._session(symbols)
            except asyncio.CancelledError:
                raise
            except SymbolsChanged:
                log.info("marks_resubscribe", venue=self.venue)
                continue
            except Exception as exc:  # every failure ends the session; the loop reconnects
                self.last_error = short(exc)
                log.warning("marks_down", venue=self.venue, error=self.last_error)
                self.reconnects += 1
                if self._metrics is not None:
                    self._metrics.mark_reconnects.labels(self.venue).inc()
            if time.monotonic() - started > 60:
                backoff = self._settings.backoff_initial_s
            delay = backoff * (0.5 + random.random() / 2)
            backoff = min(backoff * 2, self._settings.backoff_max_s)
            await asyncio.sleep(delay)

    async def _session(self, symbols: tuple[str, ...]) -> None:
        self.sessions += 1
        client = self._make_client()
        self._client = client
        self.subscribed = symbols
        watch = asyncio.create_task(self._watch_loop(client, list(symbols)), name=f"marks:{self.venue}")
        monitor: asyncio.Task[None] | None = None
        try:
            await self._wait_connected(client, watch)
            self._connected_at = time.monotonic()
            self.connected = True
            log.info("marks_live", venue=self.venue, symbols=len(symbols), session=self.sessions)
            monitor = asyncio.create_task(self._monitor(symbols), name=f"marks-monitor:{self.venue}")
            done, _ = await asyncio.wait({watch, monitor}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()
        finally:
            self.connected = False
            tasks = [t for t in (watch, monitor) if t is not None]
            for pending in tasks:
                pending.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._client = None
            try:
                await client.close()
            except Exception as exc:  # closing a broken client must not mask why the session ended
                log.debug("marks_close_failed", venue=self.venue, error=short(exc))

    async def _watch_loop(self, client: Any, symbols: list[str]) -> None:
        while True:
            marks = await self._adapter.watch_marks(client, symbols)
            self._last_update = time.monotonic()
            for symbol, price in marks.items():
                if self.marks.get(symbol) == price:
                    continue
                self.marks[symbol] = price
                self.updates += 1
                if self._metrics is not None:
                    self._metrics.mark_updates.labels(self.venue).inc()
                self._on_mark(self.venue, symbol, price)

    async def _wait_connected(self, client: Any, watch: asyncio.Task[None]) -> None:
        deadline = time.monotonic() + self._settings.connect_timeout_s
        while not is_connected(client):
            if watch.done():
                watch.result()
                raise ConnectionError("mark stream ended before it connected")
            if time.monotonic() > deadline:
                raise TimeoutError(f"mark stream not connected after {self._settings.connect_timeout_s}s")
            await asyncio.sleep(0.01)

    async def _monitor(self, symbols: tuple[str, ...]) -> None:
        period = min(1.0, self._settings.stale_after_s / 4)
        checked = time.monotonic()
        while True:
            await asyncio.sleep(period)
            silent, limit = self._liveness_age_s(), self._settings.stale_after_s
            if silent > limit:
                raise MarkStale(f"no mark update or pong for {silent:.1f}s (limit {limit}s)")
            if time.monotonic() - checked >= self._settings.resubscribe_check_s:
                checked = time.monotonic()
                if not set(self._symbols()) <= set(symbols):
                    raise SymbolsChanged


def mark_feed_for(
    venue: Venue, conf: FeedConf, symbols: Callable[[], Collection[str]], on_mark: OnMark, metrics: Metrics
) -> MarkFeed:
    """The mark feed of one venue, as configured under `feed`."""
    stale = conf.marks_stale_after_s
    settings = MarkFeedSettings(stale_after_s=stale, backoff_initial_s=conf.backoff_initial_s,
                                backoff_max_s=conf.backoff_max_s)  # fmt: skip
    return MarkFeed(
        venue.name,
        adapter=venue.adapter,
        # pings at a third of the stale limit, so a quiet but live stream is never judged dead
        make_client=lambda: venue.public_client(keepalive_ms=int(stale * 1000 / 3)),
        symbols=symbols,
        on_mark=on_mark,
        settings=settings,
        metrics=metrics,
    )


class EngineView(Protocol):
    """What `symbols_in_use` reads of the engine (bot.live.engine.Engine is one)."""

    @property
    def cfg(self) -> EngineConf: ...
    @property
    def venues(self) -> Mapping[str, Venue]: ...
    @property
    def journal(self) -> JournalPort: ...
    @property
    def leads(self) -> Mapping[str, LeadRuntime]: ...
    @property
    def followers(self) -> Mapping[str, FollowerRuntime]: ...


def venues_in_use(engine: EngineView) -> list[str]:
    used = {lead.venue for lead in engine.cfg.leads} | {f.venue for f in engine.cfg.followers if f.enabled}
    return sorted(name for name in engine.venues if name in used)


def symbols_in_use(engine: EngineView, venue: str) -> set[str]:
    """The symbols copybot trades on `venue`, in its own names: each lead's there (configured, held
    or traded), each follower's there (its leads' symbols as its venue lists them, and what it
    holds). Only markets the venue lists."""
    out: set[str] = set()
    of_lead: dict[str, set[str]] = {}
    for lead_cfg in engine.cfg.leads:
        lead = engine.leads.get(lead_cfg.id)
        if lead is not None:
            of_lead[lead.id] = lead.symbols(set(engine.journal.cursors(lead.id))) | set(lead.positions)
            if lead_cfg.venue == venue:
                out |= of_lead[lead.id]
    for follower in engine.followers.values():
        if engine.cfg.follower(follower.id).venue != venue:
            continue
        out |= set(follower.confirmed)
        for lead_id in follower.settings.sizings:
            out |= follower_symbols(follower, lead_id, of_lead.get(lead_id, set()))
    markets = engine.venues[venue].markets
    return {s for s in out if s in markets}
