"""The request budget of one source address: the venue's request weight per minute, shared by every
account behind that address (Binance counts REQUEST_WEIGHT per IP, not per key).

What is used comes from two sides: the published weight of each call, counted here before it goes
out, and the venue's own count (`X-MBX-USED-WEIGHT-1M` on every response), which also includes
what this process did not send (another process behind the same address) and wins when higher.
The window is the venue's clock minute, as Binance aligns it.

- Background reads (balances, positions, the lead's checks) go out only while the minute's weight
  stays within `background_share` of the limit (default 50%), waiting for the next minute otherwise.
- Start-up reads may use up to `ESSENTIAL_SHARE` of it.
- A 429 or 418 pauses every paced read of the address for the venue's `Retry-After` (a ban's whole
  length for a 418). Order placement is never paced here: new orders weigh 0 on the IP limit and
  count on the account's own order limits, so they go on while background reads wait.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import structlog

from bot.core.errors import ErrorKind, short
from bot.venues import VenueAdapter
from bot.venues.errors import retry_after_s

log = structlog.get_logger("copybot.budget")

T = TypeVar("T")

ESSENTIAL_SHARE = 0.9  # start-up reads: most of the limit, a little kept for lookups and the feed
DEFAULT_PAUSE_S = 60.0  # a 429 without Retry-After: the rest of a minute
# A read counted here just before a minute ends may reach the venue in the next one: what was sent
# this close to the boundary is carried into the new minute (measured: without it, the steady
# state of 1,000 followers overshot its share by about two reads a minute; docs/benchmark.md).
CARRY_S = 2.0


class RequestBudget:
    def __init__(
        self,
        limit_1m: int | None,
        *,
        background_share: float = 0.5,
        window_s: float = 60.0,
        clock_s: Callable[[], float] = time.time,
    ) -> None:
        self.limit_1m = limit_1m
        self.background_share = background_share
        self.window_s = window_s
        self._clock_s = clock_s
        self._window = self._window_of(clock_s())
        self.used = 0  # weight used in the current window, as far as known
        self.paused_until = 0.0  # clock seconds
        self.peak_1m = 0  # the highest minute seen
        self.rate_limited = 0  # 429 answers
        self.banned = 0  # 418 answers
        self.waits = 0  # reads that waited (or are waiting) for room or the end of a pause
        self.charged = 0  # weight counted here since start
        self._recent: deque[tuple[float, int]] = deque()  # (clock s, weight) charged within CARRY_S

    def _window_of(self, now: float) -> int:
        return int(now // self.window_s)

    def _roll(self) -> float:
        now = self._clock_s()
        window = self._window_of(now)
        if window != self._window:
            start = window * self.window_s
            carried = sum(w for t, w in self._recent if t >= start - CARRY_S)
            self._window, self.used = window, carried
        return now

    def charge(self, weight: int) -> None:
        now = self._roll()
        self.used += weight
        self.charged += weight
        self.peak_1m = max(self.peak_1m, self.used)
        self._recent.append((now, weight))
        while self._recent and self._recent[0][0] < now - CARRY_S:
            self._recent.popleft()

    def observe(self, used: int | None) -> None:
        """The venue's count for this window (a response header)."""
        if used is None:
            return
        self._roll()
        self.used = max(self.used, used)
        self.peak_1m = max(self.peak_1m, self.used)

    def pause(self, seconds: float, *, banned: bool) -> None:
        now = self._roll()
        if banned:
            self.banned += 1
        else:
            self.rate_limited += 1
        until = now + max(seconds, 0.0)
        if until > self.paused_until:
            self.paused_until = until
            log.warning("request_budget_paused", seconds=round(seconds, 1), banned=banned, used=self.used)

    def pause_left_s(self) -> float:
        return max(0.0, self.paused_until - self._clock_s())

    def room(self, weight: int, share: float) -> bool:
        return self.limit_1m is None or self.used + weight <= self.limit_1m * share

    async def acquire(self, weight: int, *, share: float | None = None) -> None:
        """Wait until `weight` fits in this minute within `share` of the limit and no pause holds,
        then count it."""
        share = self.background_share if share is None else share
        waited = False
        while True:
            now = self._roll()
            if now < self.paused_until:
                delay = self.paused_until - now
            elif self.room(weight, share) or (self.used == 0):
                break
            else:
                delay = (self._window + 1) * self.window_s - now + 0.05
            if not waited:
                waited = True
                self.waits += 1
            await asyncio.sleep(delay)
        self.charge(weight)

    def snapshot(self) -> dict[str, Any]:
        self._roll()
        return {
            "limit_1m": self.limit_1m,
            "background_share": self.background_share,
            "used_1m": self.used,
            "peak_1m": self.peak_1m,
            "rate_limited": self.rate_limited,
            "banned": self.banned,
            "waits": self.waits,
            "paused_s": round(self.pause_left_s(), 1),
        }


def _header(headers: Mapping[str, Any] | None, name: str | None) -> str | None:
    if not headers or not name:
        return None
    lowered = name.lower()
    for key, value in headers.items():
        if str(key).lower() == lowered:
            return str(value)
    return None


def used_weight(adapter: VenueAdapter, client: Any) -> int | None:
    raw = _header(getattr(client, "last_response_headers", None), adapter.used_weight_header)
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def note_error(budget: RequestBudget, adapter: VenueAdapter, client: Any, exc: BaseException) -> bool:
    """A 429/418 pauses the address for the venue's Retry-After; True when it was one."""
    if adapter.classify(exc) is not ErrorKind.RATE_LIMITED:
        return False
    if "-1015" in str(exc):  # the account's order count, not the address's weight: no pause
        return True
    raw = _header(getattr(client, "last_response_headers", None), "Retry-After")
    try:
        seconds = float(raw) if raw is not None else retry_after_s(exc, DEFAULT_PAUSE_S)
    except ValueError:
        seconds = DEFAULT_PAUSE_S
    budget.pause(seconds, banned=" 418 " in f" {exc} " or "banned" in str(exc))
    budget.observe(used_weight(adapter, client))
    return True


async def paced(
    budget: RequestBudget,
    adapter: VenueAdapter,
    client: Any,
    weight: int,
    call: Callable[[], Awaitable[T]],
    *,
    share: float | None = None,
) -> T:
    """One paced read (or a few under one weight): waits for room, counts it, learns the venue's
    count from the response, and turns a 429/418 into a pause of the address before re-raising."""
    await budget.acquire(weight, share=share)
    try:
        result = await call()
    except Exception as exc:
        note_error(budget, adapter, client, exc)
        raise
    budget.observe(used_weight(adapter, client))
    return result


async def essential(
    budget: RequestBudget,
    adapter: VenueAdapter,
    client: Any,
    weight: int,
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
) -> T:
    """A read start-up cannot do without: paced within ESSENTIAL_SHARE, and retried after every
    429/418 pause instead of failing the start."""
    while True:
        try:
            return await paced(budget, adapter, client, weight, call, share=ESSENTIAL_SHARE)
        except Exception as exc:
            if adapter.classify(exc) is not ErrorKind.RATE_LIMITED:
                raise
            log.warning("start_read_rate_limited", what=what, error=short(exc),
                        retry_in_s=round(budget.pause_left_s(), 1))  # fmt: skip
