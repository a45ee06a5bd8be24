"""The AUM cap on hand-made values: admission in config order, the rewritten sizings, the cap derived
from a slippage limit, and a cap pass over a stand-in engine (growth clipped, events recorded)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from bot.aum.cap import Admission, admit, capped_sizing, slippage_cap
from bot.aum.capacity import project, remove_from_top
from bot.aum.definition import FollowerCapital
from bot.aum.service import AumService, AumSettings
from bot.core.sizing import Sizing, SizingMode, base_ratio
from bot.core.types import Side, TradingState

D = Decimal


def cap_row(fid: str, equity: str, allocation: str | None = None, state: TradingState = TradingState.ACTIVE):
    return FollowerCapital(fid, "L", D(allocation) if allocation else None, D(equity), state)


def test_followers_are_admitted_in_config_order_until_the_cap() -> None:
    rows = [cap_row("a", "50000", "10000"), cap_row("b", "50000", "10000"), cap_row("c", "50000", "10000")]
    a, b, c = admit("L", rows, D(25000))
    assert (a.admitted, a.fraction, a.reason) == (D(10000), D(1), None)
    assert (b.admitted, b.fraction) == (D(10000), D(1))
    assert c.fraction == D("0.5")
    assert c.admitted == D(5000)
    assert c.refused == D(5000)
    assert c.reason is not None
    assert "refused 5000.00" in c.reason
    assert "cap 25000" in c.reason
    assert sum(x.admitted for x in (a, b, c)) <= D(25000)


def test_fraction_rounds_down_so_the_sum_never_exceeds_the_cap() -> None:
    rows = [cap_row("a", "3"), cap_row("b", "3"), cap_row("c", "3")]
    out = admit("L", rows, D(7))
    assert out[2].fraction == D("0.3333")
    assert sum(x.admitted for x in out) <= D(7)


def test_no_cap_admits_everything_and_halted_followers_take_no_room() -> None:
    rows = [cap_row("a", "8000", state=TradingState.HALTED), cap_row("b", "8000")]
    assert all(x.fraction == 1 for x in admit("L", rows, None))
    halted, b = admit("L", rows, D(5000))
    assert halted.requested == 0
    assert halted.fraction == 1
    assert b.admitted == D(5000)


def test_the_leads_own_equity_is_counted_first() -> None:
    (a,) = admit("L", [cap_row("a", "10000")], D(30000), lead_equity=D(25000))
    assert a.admitted == D(5000)
    (b,) = admit("L", [cap_row("b", "10000")], D(20000), lead_equity=D(25000))
    assert b.admitted == 0
    assert b.fraction == 0


def _adm(fraction: str, requested: str = "10000") -> Admission:
    return Admission("f", "L", D(requested), D(requested) * D(fraction), D(fraction), D(1), "r")


@pytest.mark.parametrize(
    ("sizing", "expected"),
    [
        (
            Sizing(SizingMode.MULTIPLIER, multiplier=D("0.2")),
            {"multiplier": D("0.05"), "allocation": D(2500)},
        ),
        (Sizing(SizingMode.EQUITY_RATIO), {"multiplier": D("0.25"), "allocation": D(2500)}),
        (Sizing(SizingMode.ALLOCATION, allocation=D(10000)), {"multiplier": D(1), "allocation": D(2500)}),
        (Sizing(SizingMode.FIXED_NOTIONAL, notional=D(800)), {"notional": D(200), "allocation": D(2500)}),
    ],
)
def test_capped_sizing_trades_the_admitted_fraction(sizing: Sizing, expected: dict[str, Decimal]) -> None:
    capped = capped_sizing(sizing, _adm("0.25"))
    for name, value in expected.items():
        assert getattr(capped, name) == value, name
    # The copy ratio taken at the next open is a quarter of the configured one.
    kwargs: dict[str, Any] = {"lead_after": D(2), "price": D(100), "follower_equity": D(10000),
                              "lead_equity": D(40000)}  # fmt: skip
    assert base_ratio(capped, **kwargs) == base_ratio(sizing, **kwargs) * D("0.25")


def test_uncapped_sizing_is_untouched_and_a_refused_one_rounds_to_nothing() -> None:
    sizing = Sizing(SizingMode.MULTIPLIER, multiplier=D("0.5"))
    assert capped_sizing(sizing, _adm("1")) is sizing
    refused = capped_sizing(sizing, _adm("0"))
    assert refused.multiplier < D("1e-9")
    assert refused.allocation is not None
    assert refused.allocation < D("1e-9")


ASKS = [(D(100), D(10)), (D(101), D(10)), (D(102), D(10)), (D(105), D(100))]


def test_slippage_cap_is_the_aum_multiple_at_the_limit() -> None:
    # Lead buys 5 at 100; followers (ratio sum 1 at AUM 10,000) copy 5 more: 5 at 100 = 0 bps.
    # At 3x (15 units): 5 at 100, 10 at 101 -> avg 100.667 = 66.7 bps; the limit of 50 bps lies
    # between 1x and 3x.
    cap = slippage_cap({Side.BUY: ASKS}, D(5), D(1), D(10000), D(50))
    assert cap is not None
    assert D(10000) < cap < D(30000)
    multiple = cap / D(10000)
    at_cap = project(remove_from_top(ASKS, D(5)), D(100), Side.BUY, D(5) * multiple)
    assert at_cap.bps <= D(50)
    beyond = project(remove_from_top(ASKS, D(5)), D(100), Side.BUY, D(5) * (multiple + D("0.01")))
    assert beyond.bps > D(50)


def test_slippage_cap_takes_the_worse_side_and_needs_inputs() -> None:
    bids = [(D(99), D(100))]  # deep: the buy side binds
    both = slippage_cap({Side.BUY: ASKS, Side.SELL: bids}, D(5), D(1), D(10000), D(50))
    assert both == slippage_cap({Side.BUY: ASKS}, D(5), D(1), D(10000), D(50))
    assert slippage_cap({Side.BUY: ASKS}, D(5), D(0), D(10000), D(50)) is None
    assert slippage_cap({Side.BUY: []}, D(5), D(1), D(10000), D(50)) is None


# -- a cap pass over a stand-in engine (plain objects, no exchange) ---------------------------------


@dataclass
class FakeJournal:
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def record_event(self, kind: str, subject: str, detail: dict[str, Any]) -> None:
        self.events.append((kind, subject, detail))

    def lead_fills(self, lead: str, since: int | None = None) -> list[Any]:
        return []

    def record_aum(self, ts: int, lead: str, aum: Decimal, followers: int, detail: dict[str, Any]) -> None:
        pass


def fake_service(equities: dict[str, str], cap: str) -> Any:
    """An AUM service over a plain object with the engine's attributes the cap pass reads."""
    followers = {
        fid: SimpleNamespace(
            id=fid,
            settings=SimpleNamespace(sizings={"L": Sizing(SizingMode.EQUITY_RATIO)}),
            balance=SimpleNamespace(equity=D(eq)),
            state=TradingState.ACTIVE,
        )
        for fid, eq in equities.items()
    }
    engine = SimpleNamespace(
        followers=followers,
        followers_of={"L": list(reversed(followers.values()))},  # config order must still win
        leads={"L": SimpleNamespace(equity=D(100000))},
        marks={},
    )
    settings = AumSettings(cap=D(cap), follower_order=tuple(equities))
    return AumService(engine, FakeJournal(), settings)


def test_cap_pass_rewrites_sizings_and_clips_growth() -> None:
    aum = fake_service({"a": "6000", "b": "6000"}, cap="10000")
    engine = aum.view
    reasons = aum.apply_cap()
    b_sizing = engine.followers["b"].settings.sizings["L"]
    assert engine.followers["a"].settings.sizings["L"] == Sizing(SizingMode.EQUITY_RATIO)
    assert b_sizing.allocation == D("3999.6")
    assert b_sizing.multiplier == D("0.6666")
    assert len(reasons) == 1
    assert reasons[0].startswith("b: ")
    assert [(k, s, d["admitted"]) for k, s, d in aum.journal.events] == [("aum_cap", "b", "3999.6000")]
    (row,) = aum.lead_rows(now_ms=0)
    assert row.aum <= D(10000)

    # Same equities: the pass changes nothing and records nothing.
    assert aum.apply_cap() == []
    # a grows: b is clipped further, and the total still fits.
    engine.followers["a"].balance.equity = D(9000)
    reasons = aum.apply_cap()
    assert len(reasons) == 1
    assert "admitted 999.60 of 6000.00" in reasons[0]
    (row,) = aum.lead_rows(now_ms=0)
    assert row.aum <= D(10000)
    # a shrinks below the cap's share: b fits again and gets its configured sizing back.
    engine.followers["a"].balance.equity = D(1000)
    reasons = aum.apply_cap()
    assert reasons == ["b: lead L AUM cap 10000: all 6000.00 admitted"]
    assert engine.followers["b"].settings.sizings["L"] == Sizing(SizingMode.EQUITY_RATIO)
