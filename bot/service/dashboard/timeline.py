"""The dashboard's timeline: each recent lead fill with one outcome per follower, in words a person
reads (filled, clipped, denied and why, ...), from the journal's dispositions and order outcomes.

A follower's disposition of a lead fill is "<kind>: <text>" (bot.live.work.Disposition); "planned"
brings the orders, whose risk verdict and venue status decide what the page shows.
"""

from __future__ import annotations

from typing import Any

from bot.core.types import ZERO, OrderStatus
from bot.journal.schema import CopiedFill, CopyDisposition, CopyLeg

# What the page shows, worst first where a follower's orders disagree.
OUTCOMES = (
    "failed", "denied", "unfilled", "pending", "deferred", "clipped", "partial", "filled", "at_target",
)  # fmt: skip

_FAILED = {OrderStatus.REJECTED.value, OrderStatus.NOT_PLACED.value, OrderStatus.CANCELED.value}
_OPEN = {None, OrderStatus.NEW.value, OrderStatus.UNKNOWN.value, OrderStatus.PARTIALLY_FILLED.value}


def _leg_outcome(leg: CopyLeg) -> tuple[str, str | None]:
    if leg.verdict == "denied":
        return "denied", leg.reason
    if leg.status in _OPEN:
        return "pending", None
    filled = leg.filled_qty or ZERO
    if filled == 0:  # refused by the venue, or an IOC that found nothing inside its price band
        if leg.status in _FAILED:
            return "failed", leg.venue_reason or leg.error or leg.status
        return "unfilled", leg.status
    if leg.verdict == "clipped":
        return "clipped", leg.reason
    if leg.status == OrderStatus.EXPIRED.value and leg.qty is not None and filled < leg.qty:
        return "partial", f"{filled} of {leg.qty} filled, the rest expired"
    return "filled", None


def follower_outcome(d: CopyDisposition) -> dict[str, Any]:
    """One follower's line under a lead fill."""
    kind, _, text = d.disposition.partition(": ")
    line: dict[str, Any] = {"follower": d.follower, "outcome": kind, "why": text or None,
                            "filled_qty": None, "avg_price": None}  # fmt: skip
    if kind != "planned":
        return line
    if not d.legs:
        return {**line, "outcome": "pending", "why": None}
    outcomes = [_leg_outcome(leg) for leg in d.legs]
    worst = min(outcomes, key=lambda o: OUTCOMES.index(o[0]))
    filled = sum((leg.filled_qty or ZERO for leg in d.legs), ZERO)
    notional = sum(((leg.filled_qty or ZERO) * (leg.avg_price or ZERO) for leg in d.legs), ZERO)
    outcome, why = worst
    if outcome == "filled" and "(target clipped: " in text:
        outcome, why = "clipped", text.split("(target clipped: ", 1)[1].rstrip(")")
    return {
        **line,
        "outcome": outcome,
        "why": why,
        "filled_qty": str(filled) if filled else None,
        "avg_price": str((notional / filled).normalize()) if filled else None,
    }


def timeline_json(fills: list[CopiedFill]) -> list[dict[str, Any]]:
    out = []
    for c in fills:
        f = c.fill
        out.append({
            "lead": f.lead, "trade_id": f.trade_id, "symbol": f.symbol, "side": f.side.value,
            "qty": str(f.qty), "price": str(f.price), "ts_ms": f.ts_ms, "recorded_ts": c.recorded_ts,
            "source": f.source, "status": c.status,
            "followers": [follower_outcome(d) for d in sorted(c.followers, key=lambda d: d.follower)],
        })  # fmt: skip
    return out
