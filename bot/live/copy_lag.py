"""The copy lag of every follower order, measured two ways.

- Internal (stage send / ack): from the lead fill reaching this process to the follower order leaving
  it or being answered, on the process's monotonic clock.
- Per venue pair (stage venue): from the lead fill's time, as the lead's venue stamped it, to the
  follower order's time, as the follower's venue stamped it. Two venues' clocks differ (by seconds,
  sometimes), so each stamp is first turned into local time with the clock offset copybot measures
  for its venue (bot.live.venue_clock); subtracting the raw stamps would report the clocks' skew as
  lag, or a negative lag. An order whose answer carries no time (a rejection, a Bybit create
  reply settled without one) counts from the moment it left this process.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from bot.core.stats import percentile
from bot.core.types import Intent, LeadFill, OrderOutcome
from bot.live.metrics import Metrics
from bot.live.venue_clock import VenueClock

_KEEP_FILLS = 100_000
_KEEP_SAMPLES = 10_000


def wall_ms(perf_ns: int) -> float:
    """A `time.perf_counter_ns()` reading of a moment just past, on the wall clock (ms)."""
    return time.time() * 1000 - (time.perf_counter_ns() - perf_ns) / 1e6


class CopyLags:
    def __init__(self, metrics: Metrics, clock_of: Callable[[str], VenueClock]) -> None:
        self.metrics = metrics
        self._clock_of = clock_of  # config venue name -> its clock
        # (lead, trade id) -> (received_ns, fill time on the lead venue's clock, lead venue)
        self._fills: dict[tuple[str, str], tuple[int, int, str]] = {}
        self._first_sent: dict[str, int] = {}
        self.last_ms: float | None = None
        self.internal_ms: deque[float] = deque(maxlen=_KEEP_SAMPLES)
        self.by_pair: dict[tuple[str, str], deque[float]] = {}

    def fill_seen(self, fill: LeadFill, lead_venue: str) -> None:
        self._fills[(fill.lead, fill.trade_id)] = (fill.received_ns, fill.ts_ms, lead_venue)
        if len(self._fills) > _KEEP_FILLS:
            self._fills.pop(next(iter(self._fills)))

    def order_done(
        self, intent: Intent, outcome: OrderOutcome, follower_venue: str, sent_ns: int, acked_ns: int
    ) -> None:
        seen = self._fills.get((intent.lead, intent.trigger))
        if seen is None:
            return  # a reconciliation or retry order copies no fill this process saw
        received, fill_ms, lead_venue = seen
        if received:
            self.last_ms = (sent_ns - received) / 1e6
            if intent.trigger not in self._first_sent:
                # The fill's first order out: the process's own part of the copy lag.
                self._first_sent[intent.trigger] = sent_ns
                self.internal_ms.append(self.last_ms)
                if len(self._first_sent) > _KEEP_SAMPLES:
                    self._first_sent.pop(next(iter(self._first_sent)))
            self.metrics.copy_lag.labels("send", lead_venue, follower_venue).observe(
                (sent_ns - received) / 1e9
            )
            self.metrics.copy_lag.labels("ack", lead_venue, follower_venue).observe(
                (acked_ns - received) / 1e9
            )
        if fill_ms:
            lag = venue_lag_ms(
                fill_ms,
                self._clock_of(lead_venue),
                outcome.exchange_ts_ms,
                self._clock_of(follower_venue),
                sent_wall_ms=wall_ms(sent_ns),
            )
            pair = self.by_pair.get((lead_venue, follower_venue))
            if pair is None:
                pair = self.by_pair[(lead_venue, follower_venue)] = deque(maxlen=_KEEP_SAMPLES)
            pair.append(lag)
            self.metrics.copy_lag.labels("venue", lead_venue, follower_venue).observe(lag / 1000)

    def pair_summary(self) -> dict[str, dict[str, float | int | None]]:
        """p50 / p99 / max per "lead venue->follower venue", in ms (for /status and the demo)."""
        out: dict[str, dict[str, float | int | None]] = {}
        for (lead_venue, follower_venue), samples in self.by_pair.items():
            values = list(samples)

            def pct(q: float, values: list[float] = values) -> float | None:
                value = percentile(values, q)
                return None if value is None else round(value, 3)

            out[f"{lead_venue}->{follower_venue}"] = {
                "p50": pct(0.5),
                "p99": pct(0.99),
                "max": pct(1.0),
                "samples": len(values),
            }
        return out


def venue_lag_ms(
    fill_ms: int,
    lead_clock: VenueClock,
    order_ms: int | None,
    follower_clock: VenueClock,
    *,
    sent_wall_ms: float,
) -> float:
    """Lead fill (lead venue's stamp) to follower order (follower venue's stamp, or when it left
    this host), both on this host's clock."""
    follower_local = follower_clock.to_local_ms(order_ms) if order_ms else sent_wall_ms
    return follower_local - lead_clock.to_local_ms(fill_ms)
