"""What the engine does with each follower's risk decisions and order outcomes: metrics, copy lag,
realized slippage, the stops a fill can trip, and the observers (the demo, the benchmark, tests)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from bot.core.types import Decision, Intent, OrderOutcome, Reason
from bot.live.copy_lag import CopyLags
from bot.live.follower import FollowerRuntime
from bot.live.metrics import Metrics
from bot.live.pnl import FollowerPnl
from bot.live.ports import SlippagePort
from bot.live.supervisor import Supervisor


class Observer(Protocol):
    """Sees every risk decision and order outcome (the demo, the benchmark, tests)."""

    def on_decision(self, follower: str, decision: Decision) -> None: ...
    def on_denied(self, follower: str, reason: Reason) -> None: ...
    def on_outcome(
        self, follower: str, intent: Intent, outcome: OrderOutcome, sent_ns: int, acked_ns: int
    ) -> None: ...


class FollowerEvents:
    def __init__(
        self,
        metrics: Metrics,
        lags: CopyLags,
        slippage: SlippagePort,
        supervisor: Supervisor,
        venue_of: Callable[[str], str],  # follower id -> its venue
        after_fill: Callable[[FollowerRuntime], None],  # its equity moved: the stops look again
        pnl: FollowerPnl,
    ) -> None:
        self.metrics = metrics
        self.lags = lags
        self.slippage = slippage
        self.supervisor = supervisor
        self.venue_of = venue_of
        self.after_fill = after_fill
        self.pnl = pnl
        self.observers: list[Observer] = []

    def outcome(
        self, follower: FollowerRuntime, intent: Intent, outcome: OrderOutcome, sent_ns: int, acked_ns: int
    ) -> None:
        self.metrics.orders.labels(outcome.status).inc()
        self.lags.order_done(intent, outcome, self.venue_of(follower.id), sent_ns, acked_ns)
        if outcome.filled_qty > 0 and outcome.avg_price is not None and intent.ref_price > 0:
            record = self.slippage.record_fill(
                lead=intent.lead,
                trigger=intent.trigger,
                follower=follower.id,
                symbol=intent.symbol,
                side=intent.side,
                lead_price=intent.ref_price,
                avg_price=outcome.avg_price,
                qty=outcome.filled_qty,
                rank=follower.fanout_rank.get(intent.trigger, 0),
            )
            self.metrics.slippage.labels(intent.lead).observe(float(record.bps))
        if outcome.filled_qty > 0:
            self.pnl.on_outcome(follower, intent, outcome)
            self.after_fill(follower)
        for observer in self.observers:
            observer.on_outcome(follower.id, intent, outcome, sent_ns, acked_ns)

    def decision(self, follower: FollowerRuntime, decision: Decision) -> None:
        if decision.code is not None:
            self.metrics.denials.labels(decision.code.value).inc()
        for observer in self.observers:
            observer.on_decision(follower.id, decision)

    def denied(self, follower: FollowerRuntime, reason: Reason) -> None:
        self.metrics.denials.labels(reason.code.value).inc()
        for observer in self.observers:
            observer.on_denied(follower.id, reason)

    def batch_failed(self, follower: FollowerRuntime, exc: BaseException, symbols: list[str]) -> None:
        self.supervisor.failed(f"follower:{follower.id}", exc, follower=follower.id, symbols=symbols)
