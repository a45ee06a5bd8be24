"""The venue's clock as seen from this host: an offset learnt from the venue's own time.

The same offset turns the venue's timestamps into local time, so the copy lag between a lead on one
venue and a follower on another is measured on each exchange's own clock, not on their difference.

Order timestamps are signed on this clock, and "can this order still land?" is decided on it: the
venue rejects an order whose `timestamp + recvWindow` has passed on ITS clock, so local time alone
would be wrong by the skew between the hosts. Each reading of the venue's time (`observe`) moves the
offset to what that reading implies, taking the middle of the request's round trip.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable


def local_ms() -> float:
    return time.time() * 1000


class VenueClock:
    def __init__(self, now: Callable[[], float] = local_ms) -> None:
        self._now = now
        self.offset_ms = 0.0  # venue minus local
        self.uncertainty_ms = 0.0  # half the round trip of the reading behind the offset
        self.readings = 0

    def now_ms(self) -> int:
        """The venue's clock, estimated."""
        return int(self._now() + self.offset_ms)

    def to_local_ms(self, venue_ms: float) -> float:
        """A time the venue stamped (a fill, an order), on this host's clock: times stamped by two
        venues compare only this way (bot.live.engine, the copy lag per venue pair)."""
        return venue_ms - self.offset_ms

    def observe(self, venue_ms: int, sent_local_ms: float, received_local_ms: float) -> None:
        half = max(0.0, received_local_ms - sent_local_ms) / 2
        self.offset_ms = venue_ms - (sent_local_ms + half)
        self.uncertainty_ms = half
        self.readings += 1

    async def read(self, server_time_ms: Callable[[], Awaitable[int]]) -> int:
        """Read the venue's time once, learn the offset from it, return it."""
        sent = self._now()
        venue_ms = await server_time_ms()
        self.observe(venue_ms, sent, self._now())
        return venue_ms
