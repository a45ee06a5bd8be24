"""What a follower gets of the lead's positions when it joins or leaves while the daemon runs, as
pure arithmetic (docs/config.md, "Followers joining and leaving").

Targets, not copies of fills (docs/architecture.md, "Planner notes"): a policy is a rule on the
follower's target for one symbol. `new_only` holds the target of a position the lead held at the
join at zero until the lead closes or reopens it; `follow_exits` lets the target only move toward
zero from what the follower holds; `close` makes it zero."""

from __future__ import annotations

from decimal import Decimal

from bot.core.types import ZERO


def exits_only(target: Decimal, current: Decimal) -> Decimal:
    """The target a leaving follower with `follow_exits` plans to: never further from zero than the
    position it holds, never on the other side (a lead's flip closes the copy, it does not reopen)."""
    if current == 0 or target == 0 or (target > 0) != (current > 0):
        return ZERO
    return target if abs(target) < abs(current) else current


def reopened(before: Decimal, after: Decimal) -> bool:
    """A lead fill that closed, opened or flipped the position: a held-out position ends there."""
    return after == 0 or before == 0 or (before > 0) != (after > 0)


def adverse_bps(lead_qty: Decimal, entry: Decimal, price: Decimal) -> Decimal:
    """How far the current price is past the lead's entry against a copier entering now, in basis
    points: for a long, above the entry; for a short, below it. Negative when it is better."""
    if entry <= 0 or lead_qty == 0:
        return ZERO
    move = (price - entry) / entry * 10_000
    return move if lead_qty > 0 else -move


def join_refusal(
    lead_qty: Decimal, entry: Decimal, price: Decimal | None, max_adverse_bps: Decimal | None
) -> str | None:
    """Why `copy_open` does not copy this position (None: copy it)."""
    if max_adverse_bps is None:
        return None
    if price is None or price <= 0 or entry <= 0:
        return "price guard: no current price or lead entry to compare"
    worse = adverse_bps(lead_qty, entry, price)
    if worse > max_adverse_bps:
        return (
            f"price guard: current price {price} is {worse:.1f} bps worse than the lead's entry {entry}"
            f" (join_max_adverse_bps {max_adverse_bps})"
        )
    return None
