from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest

from bot.core.sizing import Sizing, SizingMode, next_ratio, target_position
from tests.unit.markets import BTC


def ratio(
    sizing: Sizing, prev: str, before: str, after: str, *, new_entry: bool = True, price: str = "100"
) -> D:
    return next_ratio(
        sizing,
        prev_ratio=D(prev),
        lead_before=D(before),
        lead_after=D(after),
        price=D(price),
        follower_equity=D("2000"),
        lead_equity=D("10000"),
        new_entry=new_entry,
    )


EQ = Sizing(SizingMode.EQUITY_RATIO)
MULT = Sizing(SizingMode.MULTIPLIER, multiplier=D("0.5"))
ALLOC = Sizing(SizingMode.ALLOCATION, allocation=D("5000"), multiplier=D("2"))
FIXED = Sizing(SizingMode.FIXED_NOTIONAL, notional=D("1000"))


@pytest.mark.parametrize(
    ("sizing", "prev", "before", "after", "new_entry", "expected"),
    [
        # opening: the base ratio of each mode (follower 2,000 / lead 10,000)
        (EQ, "0", "0", "0.5", True, D("0.2")),
        (MULT, "0", "0", "0.5", True, D("0.5")),
        (ALLOC, "0", "0", "0.5", True, D("1")),  # 5000 / 10000 x 2
        (FIXED, "0", "0", "2", True, D("5")),  # 1000 / (2 x 100)
        # increasing keeps the ratio fixed at the open (equity moves do not matter)
        (EQ, "0.3", "0.5", "1", True, D("0.3")),
        (MULT, "0.5", "1", "2", True, D("0.5")),
        # reducing keeps the ratio: exits are proportional
        (EQ, "0.3", "1", "0.4", True, D("0.3")),
        (FIXED, "5", "2", "1", True, D("5")),
        # a flip takes the base ratio again, a close resets it
        (EQ, "0.3", "1", "-0.5", True, D("0.2")),
        (FIXED, "5", "2", "-10", True, D("1")),
        (EQ, "0.3", "1", "0", True, D("0")),
        (FIXED, "5", "-2", "0", True, D("0")),
        # fixed_notional: a new lead order adds notional / price to the follower's target
        (FIXED, "5", "2", "4", True, D("5")),  # (5 x 2 + 1000 / 100) / 4
        (FIXED, "5", "2", "3", True, D("20") / D("3")),
        # a later partial fill of the same lead order adds nothing: its notional was committed
        (FIXED, "5", "2", "4", False, D("2.5")),
    ],
)
def test_next_ratio_table(
    sizing: Sizing, prev: str, before: str, after: str, new_entry: bool, expected: D
) -> None:
    assert ratio(sizing, prev, before, after, new_entry=new_entry) == expected


def test_equity_ratio_hand_computed() -> None:
    # follower 2,000 / lead 10,000 equity copying 0.5 BTC -> 0.1 BTC
    r = ratio(EQ, "0", "0", "0.5")
    assert target_position([(r, D("0.5"))], BTC) == D("0.1")


def test_fixed_notional_partials_of_one_order_keep_one_notional() -> None:
    # lead buys 1 BTC at 100 in 4 partial fills; follower target stays 1000 / 100 = 10 BTC
    r, pos = D(0), D(0)
    for i, fill in enumerate(["0.1", "0.4", "0.3", "0.2"]):
        after = pos + D(fill)
        r = ratio(FIXED, str(r), str(pos), str(after), new_entry=i == 0)
        pos = after
        assert target_position([(r, pos)], BTC) == D("10")
    # a second lead order adds another 1000 of notional at its price
    r = ratio(FIXED, str(r), str(pos), str(pos + D("1")), new_entry=True, price="200")
    assert target_position([(r, pos + D("1"))], BTC) == D("15")


def test_zero_equity_or_price_copies_nothing() -> None:
    no_equity = next_ratio(
        EQ,
        prev_ratio=D(0),
        lead_before=D(0),
        lead_after=D(1),
        price=D(100),
        follower_equity=D(1000),
        lead_equity=D(0),
        new_entry=True,
    )
    assert no_equity == 0
    assert ratio(FIXED, "0", "0", "1", price="0") == 0


def test_lost_ratio_is_rederived_as_at_open() -> None:
    assert ratio(EQ, "0", "1", "2") == D("0.2")


@pytest.mark.parametrize(
    ("parts", "lead_cs", "follower_cs", "expected"),
    [
        ([(D("0.2"), D("0.5"))], D(1), D(1), D("0.1")),
        ([(D("0.2"), D("0.5")), (D("1"), D("-0.3"))], D(1), D(1), D("-0.2")),  # two leads net
        ([(D("0.33"), D("1"))], D(1), D(1), D("0.33")),
        ([(D("0.3333"), D("1"))], D(1), D(1), D("0.333")),  # toward zero
        ([(D("0.3333"), D("-1"))], D(1), D(1), D("-0.333")),
        ([(D("1"), D("5"))], D("0.01"), D("0.001"), D("50")),  # contract sizes differ by venue
        ([], D(1), D(1), D("0")),
    ],
)
def test_target_position(parts: list[tuple[D, D]], lead_cs: D, follower_cs: D, expected: D) -> None:
    market = replace(BTC, contract_size=follower_cs)
    assert target_position(parts, market, lead_contract_size=lead_cs) == expected


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"mode": "bogus"}, "Sizing.mode"),
        ({"mode": SizingMode.MULTIPLIER, "multiplier": D(0)}, "Sizing.multiplier"),
        ({"mode": SizingMode.MULTIPLIER, "multiplier": 0.5}, "Sizing.multiplier"),
        ({"mode": SizingMode.FIXED_NOTIONAL}, "Sizing.notional"),
        ({"mode": SizingMode.FIXED_NOTIONAL, "notional": D(-5)}, "Sizing.notional"),
        ({"mode": SizingMode.ALLOCATION}, "Sizing.allocation"),
    ],
)
def test_sizing_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Sizing(**kwargs)  # type: ignore[arg-type]


def test_sizing_accepts_mode_string_and_int() -> None:
    s = Sizing("multiplier", multiplier=2)  # type: ignore[arg-type]
    assert s.mode is SizingMode.MULTIPLIER
    assert s.multiplier == D(2)
    assert isinstance(s.multiplier, D)
