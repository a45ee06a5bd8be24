"""Entries that did not fill completely, tried again soon instead of at the next reconcile.

An IOC entry inside the slippage band expires unfilled, or fills in part, when the book within the
band is thin (other followers and the lead took it). The book refills within seconds, the next
reconcile may be 30 s away. So a short entry is re-planned against the target (the same path as a
reconcile: a SyncWork into the follower's own queue) after a short backoff, a bounded number of
times. The reference price stays the lead's fill price, so every retry keeps to the same slippage
band: the follower never chases the price past it. A retry of an order that did fill what was
missing plans nothing ("at_target").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from bot.core.types import Intent, OrderOutcome, OrderStatus

RETRY_MARK = ".r"  # trigger of the n-th retry: "<trigger>.r<n>", a fresh client order id


@dataclass(frozen=True, slots=True)
class EntryRetrySettings:
    delays_s: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0)  # about 4 s in all, then the reconciler's


def base_trigger(trigger: str) -> str:
    head, mark, tail = trigger.rpartition(RETRY_MARK)
    return head if mark and tail.isdigit() else trigger


@dataclass
class EntryRetry:
    settings: EntryRetrySettings = field(default_factory=EntryRetrySettings)
    # (symbol, base trigger) -> retries scheduled so far
    attempts: dict[tuple[str, str], int] = field(default_factory=dict)
    scheduled: int = 0
    exhausted: int = 0

    def after(
        self, intent: Intent, qty: Decimal, outcome: OrderOutcome, *, limit: bool
    ) -> tuple[float, str] | None:
        """(delay, trigger) of the next try when this entry came back short, else None."""
        base = base_trigger(intent.trigger)
        key = (intent.symbol, base)
        short = (
            limit
            and not intent.reduce_only
            and outcome.status in (OrderStatus.EXPIRED, OrderStatus.CANCELED)
            and outcome.filled_qty < qty
        )
        if not short:
            self.attempts.pop(key, None)
            return None
        done = self.attempts.get(key, 0)
        if done >= len(self.settings.delays_s):
            self.attempts.pop(key, None)
            self.exhausted += 1
            return None
        self.attempts[key] = done + 1
        self.scheduled += 1
        return self.settings.delays_s[done], f"{base}{RETRY_MARK}{done + 1}"
