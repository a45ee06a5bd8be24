"""LeadFeed: one supervised task per lead that turns the lead's websocket stream into `LeadFill`s.

Each session: a fresh ccxt.pro client (so a dead or expired listenKey is never reused), the watch
loop started first so nothing after the connect is missed, then a REST backfill since the durable
cursor, then live until the stream closes, expires, or goes silent for longer than `stale_after_s`
(no message and no pong). Between sessions: exponential backoff with jitter. Fills from the socket
and the backfill both go to `on_fill`, which deduplicates by trade id.

Fills the socket delivers while the backfill runs are held and handed on after it, so `on_fill` sees
the backfill's older fills first. The durable cursor is the newest fill handed on per symbol, and
the journal writes in order: were a newer socket fill handed on first, its cursor could become
durable before an older backfilled fill is, and a kill -9 in between would lose that fill for good
(the next backfill starts after it). A session that ends during its backfill drops what it held:
the next session's backfill fetches it again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from bot.core.errors import short
from bot.core.types import LeadFill
from bot.venues import VenueAdapter
from bot.venues.base import StreamDecoder, StreamExpired
from bot.venues.ccxt_common import fill_from_trade
from bot.venues.ccxt_stream import install_hook, is_connected, last_pong_ms

log = structlog.get_logger("copybot.feed")


class StreamStale(Exception):
    pass


class ListenKeyExpired(Exception):
    pass


@dataclass(frozen=True, slots=True)
class FeedSettings:
    keepalive_s: float = 20.0
    stale_after_s: float = 60.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    backfill_limit: int = 1000  # capped by the venue's page size (adapter.backfill_page_limit)
    connect_timeout_s: float = 15.0


class LeadFeed:
    def __init__(
        self,
        lead: str,
        *,
        adapter: VenueAdapter,
        make_stream_client: Callable[[], Any],
        rest: Any,
        symbols: Callable[[], Iterable[str]],
        cursors: Callable[[], Mapping[str, tuple[int, str]]],
        on_fill: Callable[[LeadFill], None],
        settings: FeedSettings,
        on_event: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self.lead = lead
        self._adapter = adapter
        self._make_client = make_stream_client
        self._rest = rest
        self._symbols = symbols
        self._cursors = cursors
        self._on_fill = on_fill
        self._settings = settings
        self._on_event = on_event or (lambda kind, detail: None)
        self._client: Any = None
        self._decode: StreamDecoder | None = None
        self._expired = asyncio.Event()
        self._last_message = 0.0
        self._connected_at = 0.0
        self.live = False
        self._held: list[LeadFill] | None = None  # socket fills held while the backfill runs
        self.sessions = 0
        self.reconnects = 0
        self.backfilled = 0
        self.last_error: str | None = None
        self._last_exc: BaseException | None = None

    # -- health -------------------------------------------------------------------------------

    def freshness_s(self) -> float | None:
        """Seconds since the stream last showed life (a message, a pong, or the connect)."""
        if not self.live:
            return None
        last = max(self._last_message, self._connected_at)
        pong = last_pong_ms(self._client) if self._client is not None else None
        if pong is not None:
            # ccxt stamps pongs with wall-clock ms; convert to this process's monotonic clock.
            last = max(last, time.monotonic() - (time.time() * 1000 - pong) / 1000)
        return max(0.0, time.monotonic() - last)

    def is_fresh(self) -> bool:
        age = self.freshness_s()
        return age is not None and age <= self._settings.stale_after_s

    # -- supervision --------------------------------------------------------------------------

    async def run(self) -> None:
        backoff = self._settings.backoff_initial_s
        while True:
            started = time.monotonic()
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure ends the session; the loop reconnects
                self.last_error = short(exc)
                kind = "stream_stale" if isinstance(exc, StreamStale) else "stream_down"
                log.warning(kind, lead=self.lead, error=self.last_error)
                self._on_event(kind, {"lead": self.lead, "error": self.last_error})
            self.reconnects += 1
            if time.monotonic() - started > 60 or isinstance(self._last_exc, ListenKeyExpired):
                backoff = self._settings.backoff_initial_s
            delay = backoff * (0.5 + random.random() / 2)
            backoff = min(backoff * 2, self._settings.backoff_max_s)
            await asyncio.sleep(delay)

    async def _session(self) -> None:
        self.sessions += 1
        self._expired = asyncio.Event()
        client = self._make_client()
        self._decode = self._adapter.stream_decoder(self.lead, client)
        if self._decode is not None:
            install_hook(client, self._on_message)
        self._client = client
        self._held = []  # from the first socket message until the backfill is done
        watch = asyncio.create_task(self._watch_loop(client), name=f"watch:{self.lead}")
        monitor: asyncio.Task[None] | None = None
        try:
            await self._wait_connected(client, watch)
            self._connected_at = time.monotonic()
            await self._backfill()
            held, self._held = self._held, None
            for fill in held:
                self._on_fill(fill)
            self.live = True
            self._last_exc = None
            log.info("stream_live", lead=self.lead, session=self.sessions, backfilled=self.backfilled)
            self._on_event("stream_live", {"lead": self.lead})
            monitor = asyncio.create_task(self._monitor(), name=f"monitor:{self.lead}")
            done, _ = await asyncio.wait({watch, monitor}, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                try:
                    task.result()
                except Exception as exc:
                    # The venue closes the socket right after listenKeyExpired: name the cause.
                    if self._expired.is_set() and not isinstance(exc, ListenKeyExpired):
                        raise ListenKeyExpired(f"listenKeyExpired received, then: {short(exc)}") from exc
                    raise
        except BaseException as exc:
            self._last_exc = exc
            raise
        finally:
            self.live = False
            self._held = None
            tasks = [t for t in (watch, monitor) if t is not None]
            for pending in tasks:
                pending.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._client = None
            try:
                await client.close()
            except Exception as exc:  # closing a broken client must not mask why the session ended
                log.debug("stream_close_failed", lead=self.lead, error=short(exc))

    async def _watch_loop(self, client: Any) -> None:
        # Tight loop: nothing is awaited between two watch calls but the watch itself.
        while True:
            trades = await client.watch_my_trades()
            self._last_message = time.monotonic()
            if self._decode is None:
                for trade in trades:
                    self._socket_fill(fill_from_trade(self.lead, trade, "ws"))

    async def _wait_connected(self, client: Any, watch: asyncio.Task[None]) -> None:
        deadline = time.monotonic() + self._settings.connect_timeout_s
        while not is_connected(client):
            if watch.done():
                watch.result()
                raise ConnectionError("watch loop ended before the stream connected")
            if time.monotonic() > deadline:
                raise TimeoutError(f"stream not connected after {self._settings.connect_timeout_s}s")
            await asyncio.sleep(0.005)

    async def _monitor(self) -> None:
        period = min(1.0, self._settings.stale_after_s / 4)
        while True:
            await asyncio.sleep(period)
            if self._expired.is_set():
                raise ListenKeyExpired("listenKeyExpired received: reconnecting with a new key")
            age = self.freshness_s()
            if age is not None and age > self._settings.stale_after_s:
                raise StreamStale(
                    f"no message or pong for {age:.1f}s (limit {self._settings.stale_after_s}s)"
                )

    def _on_message(self, message: dict[str, Any]) -> None:
        self._last_message = time.monotonic()
        assert self._decode is not None  # installed only with a decoder
        event = self._decode(message)
        if isinstance(event, LeadFill):
            self._socket_fill(event)
        elif isinstance(event, tuple):
            for fill in event:
                self._socket_fill(fill)
        elif isinstance(event, StreamExpired):
            self._expired.set()

    def _socket_fill(self, fill: LeadFill) -> None:
        if self._held is not None:
            self._held.append(fill)
        else:
            self._on_fill(fill)

    async def _backfill(self) -> None:
        """Fetch every lead trade since the durable cursor, per symbol (the venue needs one)."""
        cursors = self._cursors()
        for symbol in sorted(set(self._symbols())):
            if symbol not in cursors:
                continue  # never traded since the start snapshot: nothing to backfill
            async for page in self._adapter.backfill(
                self._rest, self.lead, symbol, cursors[symbol][0], self._settings.backfill_limit
            ):
                for fill in page:
                    self._on_fill(fill)
                self.backfilled += len(page)
