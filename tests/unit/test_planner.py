from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest

from bot.core.planner import PlanResult, plan_legs
from bot.core.types import Leg, Side
from tests.unit.markets import BTC

BUY, SELL = Side.BUY, Side.SELL


def legs(*spec: tuple[Side, str, bool]) -> tuple[Leg, ...]:
    return tuple(Leg(side, D(qty), ro) for side, qty, ro in spec)


@pytest.mark.parametrize(
    ("target", "current", "price", "expected"),
    [
        # open, add, hold
        ("0.1", "0", "50000", PlanResult(legs((BUY, "0.1", False)))),
        ("-0.1", "0", "50000", PlanResult(legs((SELL, "0.1", False)))),
        ("0.3", "0.1", "50000", PlanResult(legs((BUY, "0.2", False)))),
        ("0.1", "0.1", "50000", PlanResult(())),
        ("0.1004", "0.1", "50000", PlanResult(())),  # |diff| < step: nothing, no reason
        # reduce toward zero: reduce-only and exempt from min notional
        ("0.1", "0.3", "50000", PlanResult(legs((SELL, "0.2", True)))),
        ("0.299", "0.3", "100", PlanResult(legs((SELL, "0.001", True)))),  # 0.1 USDT, still sent
        ("0", "0.3", "50000", PlanResult(legs((SELL, "0.3", True)))),
        ("0", "-0.3", "50000", PlanResult(legs((BUY, "0.3", True)))),
        # flip: close reduce-only, then open
        ("-0.2", "0.3", "50000", PlanResult(legs((SELL, "0.3", True), (SELL, "0.2", False)))),
        ("0.05", "-0.1", "50000", PlanResult(legs((BUY, "0.1", True), (BUY, "0.05", False)))),
        # entries below the minimum wait, with the numbers in the reason
        ("0.001", "0", "3200", PlanResult((), "below_min_notional: 3.2 < 5 USDT")),
        ("0.301", "0.3", "3200", PlanResult((), "below_min_notional: 3.2 < 5 USDT")),
        # a flip whose opening part is below the minimum still closes
        (
            "-0.001",
            "0.3",
            "3200",
            PlanResult(legs((SELL, "0.3", True)), "below_min_notional: 3.2 < 5 USDT"),
        ),
    ],
)
def test_plan_legs_table(target: str, current: str, price: str, expected: PlanResult) -> None:
    assert plan_legs(D(target), D(current), BTC, D(price)) == expected


def test_min_qty_applies_to_entries_and_reduce_only() -> None:
    market = replace(BTC, min_qty=D("0.01"))
    assert plan_legs(D("0.105"), D("0.1"), market, D("50000")) == PlanResult(
        (), "below_min_qty: 0.005 < 0.01"
    )
    reduce = plan_legs(D("0.1"), D("0.105"), market, D("50000"))
    assert reduce == PlanResult((), "below_min_qty: 0.005 < 0.01 (reduce-only)")
    # closing outright sends the whole position even when it is small
    assert plan_legs(D("0"), D("0.02"), market, D("1")).legs == legs((SELL, "0.02", True))


def test_round_up_min_sends_the_smallest_order_the_venue_takes() -> None:
    # 5 USDT at 3200 needs 0.0015625 -> 0.002 BTC
    result = plan_legs(D("0.001"), D("0"), BTC, D("3200"), round_up_min=True)
    assert result == PlanResult(legs((BUY, "0.002", False)))
    market = replace(BTC, min_qty=D("0.01"))
    assert plan_legs(D("-0.004"), D("0"), market, D("50000"), round_up_min=True).legs == legs(
        (SELL, "0.01", False)
    )


def test_partial_fills_accumulate_past_min_notional() -> None:
    # The lead fills one order in pieces; the follower copies 1/10 of it at 3,200 USDT.
    follower, sent = D(0), []
    for lead_position in ["0.01", "0.02", "0.03", "0.04"]:
        target = D(lead_position) / 10
        result = plan_legs(target, follower, BTC, D("3200"))
        for leg in result.legs:
            follower += leg.side.sign * leg.qty
            sent.append(leg.qty)
    # each piece is 0.001 BTC (3.2 USDT): every odd piece waits, the next one sends both together
    assert sent == [D("0.002"), D("0.002")]
    assert follower == D("0.004")


def test_max_qty_splits_into_near_equal_legs() -> None:
    market = replace(BTC, max_qty=D("1"))
    result = plan_legs(D("2.5"), D("0"), market, D("50000"))
    assert [leg.qty for leg in result.legs] == [D("0.834"), D("0.833"), D("0.833")]
    assert all(not leg.reduce_only and leg.side is BUY for leg in result.legs)
    close = plan_legs(D("0"), D("-2"), market, D("50000"))
    assert close.legs == legs((BUY, "1", True), (BUY, "1", True))
    flip = plan_legs(D("-1.5"), D("1.2"), market, D("50000"))
    assert flip.legs == legs(
        (SELL, "0.6", True), (SELL, "0.6", True), (SELL, "0.75", False), (SELL, "0.75", False)
    )


def test_flip_with_close_below_min_qty_crosses_zero_in_one_entry() -> None:
    market = replace(BTC, min_qty=D("0.01"))
    result = plan_legs(D("-0.5"), D("0.005"), market, D("50000"))
    assert result == PlanResult(legs((SELL, "0.505", False)))


def test_no_price_defers_an_entry() -> None:
    result = plan_legs(D("1"), D("0"), BTC, D("0"))
    assert result.legs == ()
    assert result.deferred is not None
    assert result.deferred.startswith("no_price")
