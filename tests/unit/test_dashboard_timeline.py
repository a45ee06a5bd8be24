"""The timeline's words for what became of a lead fill for one follower (bot.service.dashboard)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.journal.schema import CopyDisposition, CopyLeg
from bot.service.dashboard.timeline import follower_outcome


def leg(verdict: str = "approved", status: str | None = "filled", filled: str | None = "0.1",
        qty: str = "0.1", reason: str | None = None, error: str | None = None,
        venue_reason: str | None = None) -> CopyLeg:  # fmt: skip
    return CopyLeg("cid", verdict, Decimal(qty), reason, status, None if filled is None else Decimal(filled),
                   Decimal("100") if filled else None, error, venue_reason)  # fmt: skip


@pytest.mark.parametrize(
    ("disposition", "legs", "outcome", "why"),
    [
        ("planned: cid", [leg()], "filled", None),
        ("planned: cid", [leg(verdict="clipped", reason="max_order_notional: 900 > 500")], "clipped",
         "max_order_notional: 900 > 500"),
        ("planned: cid (target clipped: max_position_notional: 3000 > 800)", [leg()], "clipped",
         "max_position_notional: 3000 > 800"),
        ("planned: cid", [leg(verdict="denied", status=None, filled=None, reason="REDUCE_ONLY")], "denied",
         "REDUCE_ONLY"),
        ("planned: cid", [leg(status="expired", filled="0.04")], "partial",
         "0.04 of 0.1 filled, the rest expired"),
        ("planned: cid", [leg(status="expired", filled="0")], "unfilled", "expired"),
        ("planned: cid", [leg(status="rejected", filled="0", error="invalid_order",
                              venue_reason="Order would immediately trigger")], "failed",
         "Order would immediately trigger"),
        ("planned: cid", [leg(status="new", filled="0")], "pending", None),
        ("planned: cid", [], "pending", None),
        ("denied: symbol_denied: THIN/USDT:USDT is in symbols_deny", [], "denied",
         "symbol_denied: THIN/USDT:USDT is in symbols_deny"),
        ("deferred: below_min_notional: 3.1 < 5 USDT", [], "deferred", "below_min_notional: 3.1 < 5 USDT"),
        ("at_target", [], "at_target", None),
    ],
)  # fmt: skip
def test_each_disposition_reads_as_one_outcome_and_why(
    disposition: str, legs: list[CopyLeg], outcome: str, why: str | None
) -> None:
    line = follower_outcome(CopyDisposition("f1", disposition, tuple(legs)))
    assert (line["follower"], line["outcome"], line["why"]) == ("f1", outcome, why)


def test_a_split_order_shows_the_total_filled_at_the_average_price() -> None:
    legs = (
        CopyLeg("a", "approved", Decimal("0.1"), None, "filled", Decimal("0.1"), Decimal("100"), None, None),
        CopyLeg("b", "approved", Decimal("0.3"), None, "filled", Decimal("0.3"), Decimal("104"), None, None),
    )
    line = follower_outcome(CopyDisposition("f1", "planned: a,b", legs))
    assert (line["outcome"], line["filled_qty"], line["avg_price"]) == ("filled", "0.4", "103")
