"""Order placement for one follower account: never a blind resend, never a resend that could double.

An order goes out with its deterministic client id, a `timestamp` on the venue's clock and an
explicit, short `recvWindow`. A definite rejection is recorded with its kind. A rate limit or a
rejected-before-execution error (-1021, -5028) is retried with the SAME client id after a wait.

An ambiguous outcome (timeout, dropped connection, 5xx) is NOT settled by an immediate lookup: the
request may still be queued inside the venue, where a lookup does not see it, and Binance accepts a
client id again once its first order is closed, so "not found, send again" would fill twice when
the first request lands after the lookup. The executor first waits until the order can no longer
land (the venue's clock past its timestamp + the venue's landing window for that recvWindow, plus a
margin, confirmed by reading the venue's time), and only then looks it up: found means placed; not
found means never placed, and only then is the same client id sent again. While it waits, the
order's quantity stays in flight, so no plan counts it as missing. See docs/guarantees.md.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import structlog
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from bot.core.errors import ErrorKind, short
from bot.core.types import Intent, OrderOutcome, OrderStatus
from bot.live.venue_clock import VenueClock
from bot.venues import VenueAdapter
from bot.venues.errors import retry_after_s

log = structlog.get_logger("copybot.executor")


class LookupFailed(Exception):
    """The venue could not tell whether an order exists."""


@dataclass(frozen=True, slots=True)
class ExecSettings:
    send_attempts: int = 4
    lookup_attempts: int = 5
    retry_initial_s: float = 0.05
    retry_max_s: float = 2.0
    # recvWindow sent with every order, and the margin on top of the venue's landing window that
    # covers the error of the venue clock estimate (docs/guarantees.md, "Nothing doubled").
    recv_window_ms: int = 2000
    landing_margin_ms: int = 1000
    time_reads: int = 5  # venue-time readings while waiting for an order to be unable to land


class OrderPlacer:
    """`slots`, shared by the followers of one venue, bounds the order requests in flight so that
    orders leave in fan-out order instead of a thousand interleaving on the wire. A slot is held
    for one request only, never across a retry's wait, so accounts that are failing slowly hold
    the others up for at most one request timeout."""

    def __init__(
        self,
        client: Any,
        follower: str,
        adapter: VenueAdapter,
        settings: ExecSettings | None = None,
        *,
        slots: asyncio.Semaphore | None = None,
        clock: VenueClock | None = None,
        fence: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.client = client
        self.follower = follower
        self.adapter = adapter
        self.settings = settings or ExecSettings()
        self._slots = slots or contextlib.nullcontext()
        self.clock = clock or VenueClock()
        # A reason this process may no longer send, or None. Asked right before each order is
        # signed: a cluster shard that was frozen past its heartbeat bound has had its followers
        # taken over, and a deterministic client id sent again after the first order filled is a
        # second order on Binance (docs/cluster.md, "Guarantees").
        self.fence = fence
        self.landing_waits = 0  # ambiguous orders waited out before their lookup

    def landing_deadline_ms(self, timestamp_ms: int) -> int:
        """On the venue's clock: after this, an order signed at `timestamp_ms` can no longer land."""
        s = self.settings
        return timestamp_ms + self.adapter.landing_window_ms(s.recv_window_ms) + s.landing_margin_ms

    async def wait_until_unlandable(self, timestamp_ms: int) -> None:
        """Return once the venue's clock is past the order's landing deadline: by the local estimate
        first, then confirmed by reading the venue's time (which also corrects the estimate). If the
        venue's time cannot be read, the estimate plus the margin stands."""
        deadline = self.landing_deadline_ms(timestamp_ms)
        self.landing_waits += 1
        for _ in range(self.settings.time_reads):
            ahead_ms = deadline - self.clock.now_ms()
            if ahead_ms > 0:
                await asyncio.sleep(ahead_ms / 1000)
            try:
                venue_ms = await self.clock.read(lambda: self.adapter.server_time_ms(self.client))
            except Exception as exc:
                if self.adapter.classify(exc) is ErrorKind.AUTH:
                    raise
                log.warning("venue_time_unread", follower=self.follower, error=short(exc))
                await asyncio.sleep(self.settings.landing_margin_ms / 1000)
                continue
            if venue_ms > deadline:
                return
        log.warning("landing_deadline_unconfirmed", follower=self.follower, deadline_ms=deadline)

    def _reads(self) -> AsyncRetrying:
        s = self.settings
        return AsyncRetrying(
            stop=stop_after_attempt(s.lookup_attempts),
            wait=wait_exponential(multiplier=s.retry_initial_s, max=s.retry_max_s),
            retry=retry_if_exception(
                lambda e: (
                    self.adapter.classify(e)
                    in (ErrorKind.TEMPORARY, ErrorKind.RATE_LIMITED, ErrorKind.AMBIGUOUS)
                )
            ),
            reraise=True,
        )

    async def lookup(self, symbol: str, client_order_id: str) -> OrderOutcome | None:
        """The order with this client id, or None when the venue says it does not exist."""
        try:
            async for attempt in self._reads():
                with attempt:
                    try:
                        async with self._slots:
                            order = await self.adapter.fetch_by_client_id(
                                self.client, symbol, client_order_id
                            )
                    except Exception as exc:
                        if self.adapter.classify(exc) is ErrorKind.NOT_FOUND:
                            return None
                        raise
                    return self.adapter.order_outcome(order, client_order_id)
        except Exception as exc:
            raise LookupFailed(f"lookup of {client_order_id} failed: {short(exc)}") from exc
        raise LookupFailed(f"lookup of {client_order_id} gave no answer")  # pragma: no cover

    async def place(
        self, intent: Intent, qty: Decimal, *, order_type: str, price: Decimal | None
    ) -> OrderOutcome:
        cid = intent.client_order_id
        s = self.settings
        delay = s.retry_initial_s
        last_error = "no attempt made"
        for attempt in range(1, s.send_attempts + 1):
            timestamp_ms = self.clock.now_ms()
            try:
                async with self._slots:
                    fenced = self.fence()
                    if fenced is not None:
                        log.warning("order_fenced", follower=self.follower, client_order_id=cid,
                                    reason=fenced)  # fmt: skip
                        return OrderOutcome(cid, OrderStatus.REJECTED, error=ErrorKind.FENCED, reason=fenced)
                    # Signed when it leaves, not when it queued for a slot: each attempt is a new
                    # request with its own window, and its arrival stays close to its timestamp.
                    timestamp_ms = self.clock.now_ms()
                    params = self.adapter.order_params(
                        cid,
                        reduce_only=intent.reduce_only,
                        ioc=order_type == "limit",
                        timestamp_ms=timestamp_ms,
                        recv_window_ms=s.recv_window_ms,
                    )
                    order = await self.client.create_order(
                        intent.symbol,
                        order_type,
                        intent.side.value,
                        str(qty),  # ccxt takes Decimal(str(x)); a str keeps the exact step multiple
                        str(price) if price is not None else None,
                        params,
                    )
                outcome = self.adapter.order_outcome(order, cid)
            except Exception as exc:
                kind = self.adapter.classify(exc, placing=True)
                last_error = short(exc)
                log.warning(
                    "order_error",
                    follower=self.follower,
                    client_order_id=cid,
                    kind=kind.value,
                    attempt=attempt,
                    error=last_error,
                )
                if kind in (ErrorKind.AMBIGUOUS, ErrorKind.DUPLICATE):
                    # A duplicate id is an open order: it is there to be found at once. Anything
                    # else may still be on its way to the matching engine: wait it out first.
                    if kind is ErrorKind.AMBIGUOUS:
                        await self.wait_until_unlandable(timestamp_ms)
                    try:
                        found = await self.lookup(intent.symbol, cid)
                    except LookupFailed as lookup_exc:
                        return OrderOutcome(cid, OrderStatus.UNKNOWN, error=ErrorKind.LOOKUP_FAILED,
                                            reason=f"{kind.value}: {lookup_exc}")  # fmt: skip
                    if found is not None:
                        log.info("order_settled_by_lookup", follower=self.follower, client_order_id=cid)
                        return found
                    if kind is ErrorKind.DUPLICATE:
                        await self.wait_until_unlandable(timestamp_ms)
                        return OrderOutcome(cid, OrderStatus.UNKNOWN, error=kind, reason=last_error)
                    # Not found after it could no longer land: never placed, so the same client id
                    # may go again (a new request, a new timestamp).
                    log.info("order_absent_after_landing_window", follower=self.follower, client_order_id=cid)
                    continue
                if kind in (ErrorKind.RATE_LIMITED, ErrorKind.TEMPORARY):
                    wait = retry_after_s(exc, delay) if kind is ErrorKind.RATE_LIMITED else delay
                    await asyncio.sleep(wait)
                    delay = min(delay * 2, s.retry_max_s)
                    continue
                return OrderOutcome(cid, OrderStatus.REJECTED, error=kind, reason=last_error)
            if outcome.status is OrderStatus.UNKNOWN and outcome.error is None:
                return await self.settle_acknowledged(intent.symbol, outcome)
            return outcome
        return OrderOutcome(cid, OrderStatus.UNKNOWN, error=ErrorKind.RETRIES_EXHAUSTED, reason=last_error)

    async def settle_acknowledged(self, symbol: str, ack: OrderOutcome) -> OrderOutcome:
        """An accepted order whose reply carries no status (some venues answer only the order ids):
        look it up until a final status, so fills, price and lag are known without a resync. Still
        not final after the lookups: UNKNOWN, and the follower resyncs."""
        cid = ack.client_order_id
        delay = self.settings.retry_initial_s
        found: OrderOutcome | None = None
        for _ in range(self.settings.lookup_attempts):
            try:
                found = await self.lookup(symbol, cid)
            except LookupFailed as exc:
                return replace(ack, reason=f"accepted; {exc}")
            if found is not None and found.status.final:
                return found if found.order_id else replace(found, order_id=ack.order_id)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.retry_max_s)
        status = found.status.value if found is not None else "not visible yet"
        return replace(
            ack, reason=f"accepted; not final after {self.settings.lookup_attempts} lookups: {status}"
        )
