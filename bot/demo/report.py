"""What the demo measured: lag on the exchange's own clock, orders, denials, and whether every
follower ended on its targets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bot.core.stats import percentile
from bot.core.types import Decision, Intent, OrderOutcome, Reason, Verdict


@dataclass
class Recorder:
    """An engine observer that keeps what the summary needs."""

    triggers: dict[str, tuple[str, str]] = field(default_factory=dict)  # client id -> (lead, trigger)
    outcomes: Counter[str] = field(default_factory=Counter)
    denials: Counter[str] = field(default_factory=Counter)
    clips: Counter[str] = field(default_factory=Counter)

    def on_decision(self, follower: str, decision: Decision) -> None:
        code = decision.code.value if decision.code is not None else "unknown"
        if decision.verdict is Verdict.DENIED:
            self.denials[code] += 1
        elif decision.verdict is Verdict.CLIPPED:
            self.clips[code] += 1

    def on_denied(self, follower: str, reason: Reason) -> None:
        self.denials[reason.code.value] += 1

    def on_outcome(
        self, follower: str, intent: Intent, outcome: OrderOutcome, sent_ns: int, acked_ns: int
    ) -> None:
        self.triggers[intent.client_order_id] = (intent.lead, intent.trigger)
        self.outcomes[outcome.status.value] += 1


def copy_lags_ms(
    lead_trades: list[dict[str, Any]],
    follower_orders: list[dict[str, Any]],
    recorder: Recorder,
    fill_id: Callable[[int], str] = str,
) -> list[float]:
    """Per follower order copying a lead trade: order arrival at the exchange minus the lead trade's
    execution, both on the exchange's clock. `fill_id` names an exchange trade as the lead's venue
    names its fill (the admin view gives the engine's trade id)."""
    trade_ns = {fill_id(int(t["id"])): int(t["timeNs"]) for t in lead_trades}
    lags = []
    for order in follower_orders:
        link = recorder.triggers.get(order.get("clientOrderId", ""))
        if link is None or link[1] not in trade_ns:
            continue  # reconciliation orders copy no single trade
        lags.append((int(order["recvTimeNs"]) - trade_ns[link[1]]) / 1e6)
    return lags


def lag_summary(lags_ms: list[float]) -> dict[str, Any]:
    p50, p99 = percentile(lags_ms, 0.5), percentile(lags_ms, 0.99)
    return {
        "p50": round(p50, 3) if p50 is not None else None,
        "p99": round(p99, 3) if p99 is not None else None,
        "samples": len(lags_ms),
    }


def follower_match(positions: dict[str, dict[str, Any]]) -> bool:
    return all(p["match"] or p.get("residual_below_min") for p in positions.values())


def summarize(
    *,
    status: dict[str, Any],
    recorder: Recorder,
    lags_ms: list[float],
    seconds: float,
    lead_orders: int,
    reconcile_drifts: int,
) -> dict[str, Any]:
    followers = {}
    for fid, f in status["followers"].items():
        followers[fid] = {
            "state": f["state"],
            "equity": f["equity"],
            "orders": f["orders_sent"],
            "match": follower_match(f["positions"]),
            "positions": f["positions"],
        }
    return {
        "seconds": seconds,
        "lead_orders": lead_orders,
        "lead_fills": sum(lead["fills"] for lead in status["leads"].values()),
        "follower_orders": sum(recorder.outcomes.values()),
        "orders_by_outcome": dict(recorder.outcomes),
        "denials_by_reason": dict(recorder.denials),
        "clips_by_reason": dict(recorder.clips),
        "copy_lag_ms": lag_summary(lags_ms),
        "internal_lag_ms": status["internal_lag_ms"],
        "final_reconcile_drifts": reconcile_drifts,
        "followers": followers,
        "all_match": all(f["match"] for f in followers.values()),
    }
