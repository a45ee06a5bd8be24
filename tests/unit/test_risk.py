from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import pytest

from bot.core.risk import (
    FollowerRiskState,
    RiskLimits,
    StopTrigger,
    check_stops,
    clip_target,
    entry_price_limit,
    evaluate,
)
from bot.core.trading_state import transition
from bot.core.types import Intent, ReasonCode, Side, TradingState, Verdict
from tests.unit.markets import BTC

ETH = "ETH/USDT:USDT"
A, R, H = TradingState.ACTIVE, TradingState.REDUCE_ONLY, TradingState.HALTED

STATE = FollowerRiskState(
    follower="alice",
    state=A,
    global_state=A,
    kill_switch=False,
    equity=D("10000"),
    peak_equity=D("10000"),
    day_start_equity=D("10000"),
    allocation_base=D("10000"),
    positions={BTC.symbol: D("0"), ETH: D("2")},  # ETH: 2 x 1000 = 2000 exposure
    marks={BTC.symbol: D("2000"), ETH: D("1000")},
)


def intent(side: Side, qty: str, *, reduce_only: bool = False, price: str = "2000") -> Intent:
    return Intent(
        lead="lead1",
        follower="alice",
        symbol=BTC.symbol,
        trigger="t1",
        leg=0,
        side=side,
        qty=D(qty),
        reduce_only=reduce_only,
        ref_price=D(price),
        target=D(0),
        current=D(0),
        client_order_id="cb.x.y.0",
    )


@pytest.mark.parametrize(
    ("limits", "position", "side", "qty", "verdict", "granted", "reason"),
    [
        (RiskLimits(), "0", Side.BUY, "0.6", Verdict.APPROVED, "0.6", None),
        (
            RiskLimits(max_order_notional=D("1000")),
            "0",
            Side.BUY,
            "0.6",
            Verdict.CLIPPED,
            "0.5",
            "max_order_notional: 1200 > 1000; clipped 0.6 -> 0.5",
        ),
        (
            RiskLimits(max_position_notional=D("1500")),
            "0.5",
            Side.BUY,
            "0.6",
            Verdict.CLIPPED,
            "0.25",
            "max_position_notional: 2200 > 1500; clipped 0.6 -> 0.25",
        ),
        # a short: the same cap on |position|
        (
            RiskLimits(max_position_notional=D("1500")),
            "-0.5",
            Side.SELL,
            "0.6",
            Verdict.CLIPPED,
            "0.25",
            "max_position_notional: 2200 > 1500; clipped 0.6 -> 0.25",
        ),
        (
            RiskLimits(max_total_exposure=D("3000")),
            "0",
            Side.BUY,
            "0.6",
            Verdict.CLIPPED,
            "0.5",
            "max_total_exposure: 3200 > 3000; clipped 0.6 -> 0.5",
        ),
        (
            RiskLimits(max_leverage=D("0.25")),
            "0",
            Side.BUY,
            "0.6",
            Verdict.CLIPPED,
            "0.25",
            "max_leverage: 0.32 > 0.25 (exposure 3200, equity 10000); clipped 0.6 -> 0.25",
        ),
        # the symbol's own exposure is replaced, not counted twice: 2000 (ETH) + 1.1 x 2000 = 4200
        (
            RiskLimits(max_total_exposure=D("3500")),
            "0.5",
            Side.BUY,
            "0.6",
            Verdict.CLIPPED,
            "0.25",
            "max_total_exposure: 4200 > 3500; clipped 0.6 -> 0.25",
        ),
        # the tightest cap wins
        (
            RiskLimits(max_order_notional=D("1000"), max_position_notional=D("600")),
            "0",
            Side.BUY,
            "0.6",
            Verdict.CLIPPED,
            "0.3",
            "max_position_notional: 1200 > 600; clipped 0.6 -> 0.3",
        ),
        # already over a cap: no headroom at all
        (
            RiskLimits(max_position_notional=D("1500")),
            "1",
            Side.BUY,
            "0.1",
            Verdict.DENIED,
            "0",
            "max_position_notional: 2200 > 1500; no headroom",
        ),
        # headroom below the venue minimum becomes a denial
        (
            RiskLimits(max_position_notional=D("2004")),
            "1",
            Side.BUY,
            "0.1",
            Verdict.DENIED,
            "0",
            "max_position_notional: 2200 > 2004; headroom 4 < min_notional 5",
        ),
        # an entry against the position (an oversized position shrinking) has room up to the far side
        (RiskLimits(max_position_notional=D("1500")), "1", Side.SELL, "1.5", Verdict.APPROVED, "1.5", None),
    ],
)
def test_entry_caps(
    limits: RiskLimits,
    position: str,
    side: Side,
    qty: str,
    verdict: Verdict,
    granted: str,
    reason: str | None,
) -> None:
    state = replace(STATE, positions={**STATE.positions, BTC.symbol: D(position)})
    decision = evaluate(intent(side, qty), state, limits, BTC)
    assert (decision.verdict, decision.qty, decision.reason) == (verdict, D(granted), reason)


ALL_CAPS = RiskLimits(
    max_order_notional=D("1"),
    max_position_notional=D("1"),
    max_total_exposure=D("1"),
    max_leverage=D("0.0001"),
    symbols_allow=frozenset({ETH}),
    symbols_deny=frozenset({BTC.symbol}),
    slippage_bps=D("1"),
)


@pytest.mark.parametrize("follower_state", [A, R])
@pytest.mark.parametrize("global_state", [A, R])
def test_exits_pass_every_cap_and_reduce_only(
    follower_state: TradingState, global_state: TradingState
) -> None:
    state = replace(
        STATE,
        state=follower_state,
        global_state=global_state,
        positions={**STATE.positions, BTC.symbol: D(5)},
    )
    decision = evaluate(intent(Side.SELL, "5", reduce_only=True), state, ALL_CAPS, BTC)
    assert (decision.verdict, decision.qty, decision.reason) == (Verdict.APPROVED, D(5), None)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"kill_switch": True}, "halted: kill switch engaged"),
        ({"state": H}, "halted: follower alice is HALTED"),
        ({"global_state": H}, "halted: global state is HALTED"),
    ],
)
@pytest.mark.parametrize("reduce_only", [True, False])
def test_halted_denies_everything(changes: dict[str, object], reason: str, reduce_only: bool) -> None:
    state = replace(STATE, **changes)  # type: ignore[arg-type]
    decision = evaluate(intent(Side.SELL, "0.1", reduce_only=reduce_only), state, RiskLimits(), BTC)
    assert (decision.verdict, decision.qty, decision.reason) == (Verdict.DENIED, D(0), reason)
    assert decision.code in (ReasonCode.HALTED, ReasonCode.KILL_SWITCH)


@pytest.mark.parametrize(
    ("changes", "limits", "reason"),
    [
        ({"state": R}, RiskLimits(), "reduce_only: follower alice is REDUCE_ONLY, entries are denied"),
        ({"global_state": R}, RiskLimits(), "reduce_only: global state is REDUCE_ONLY, entries are denied"),
        (
            {},
            RiskLimits(symbols_allow=frozenset({ETH})),
            f"symbol_not_allowed: {BTC.symbol} is not in symbols_allow",
        ),
        (
            {},
            RiskLimits(symbols_deny=frozenset({BTC.symbol})),
            f"symbol_denied: {BTC.symbol} is in symbols_deny",
        ),
        ({"marks": {ETH: D(1000)}}, RiskLimits(max_position_notional=D(1)), None),
        (
            {"marks": {BTC.symbol: D(2000)}},
            RiskLimits(max_total_exposure=D(10**6)),
            "no_mark: cannot measure",
        ),
        ({"equity": D(0)}, RiskLimits(max_leverage=D(3)), "max_leverage: equity is 0, no leverage headroom"),
    ],
)
def test_entry_denials(changes: dict[str, object], limits: RiskLimits, reason: str | None) -> None:
    state = replace(STATE, **changes)  # type: ignore[arg-type]
    decision = evaluate(intent(Side.BUY, "0.1"), state, limits, BTC)
    assert decision.verdict is Verdict.DENIED
    assert decision.qty == 0
    assert decision.reason is not None
    if reason is None:  # no BTC mark: priced at the intent's reference price
        assert decision.reason.startswith("max_position_notional: 200 > 1")
    else:
        assert decision.reason.startswith(reason)
    # The code is the text's first word: metrics and control flow read the code, never the text.
    assert decision.code is not None
    assert decision.reason.startswith(f"{decision.code.value}: ")


def test_evaluate_refuses_a_market_for_another_symbol() -> None:
    with pytest.raises(ValueError, match="ETH/USDT:USDT"):
        evaluate(intent(Side.BUY, "1"), STATE, RiskLimits(), replace(BTC, symbol=ETH))


@pytest.mark.parametrize(
    ("target", "expected", "reason"),
    [
        ("0.5", "0.5", None),
        ("0.75", "0.75", None),
        ("1", "0.75", "max_position_notional: 2000 > 1500; target 1 -> 0.75"),
        ("-1", "-0.75", "max_position_notional: 2000 > 1500; target -1 -> -0.75"),
    ],
)
def test_clip_target(target: str, expected: str, reason: str | None) -> None:
    clipped = clip_target(D(target), BTC.symbol, STATE, RiskLimits(max_position_notional=D(1500)), BTC)
    assert clipped == (D(expected), reason)


def test_clip_target_rounds_down_to_step_and_passes_without_cap_or_price() -> None:
    limits = RiskLimits(max_position_notional=D(1000))
    assert clip_target(D(1), BTC.symbol, replace(STATE, marks={BTC.symbol: D(3000)}), limits, BTC)[0] == D(
        "0.333"
    )
    assert clip_target(D(9), BTC.symbol, STATE, RiskLimits(), BTC) == (D(9), None)
    assert clip_target(D(9), BTC.symbol, replace(STATE, marks={}), limits, BTC) == (D(9), None)
    assert clip_target(D(9), BTC.symbol, replace(STATE, marks={}), limits, BTC, ref_price=D(500))[0] == D(2)


@pytest.mark.parametrize(
    ("side", "ref", "bps", "tick", "expected"),
    [
        (Side.BUY, "50000", "10", "0.1", "50050"),
        (Side.SELL, "50000", "10", "0.1", "49950"),
        (Side.BUY, "123.45", "7", "0.01", "123.53"),  # 123.5364... rounds down for a buy
        (Side.SELL, "123.45", "7", "0.01", "123.37"),  # 123.3635... rounds up for a sell
        (Side.BUY, "100", "0", "0.1", "100"),
    ],
)
def test_entry_price_limit(side: Side, ref: str, bps: str, tick: str, expected: str) -> None:
    assert entry_price_limit(side, D(ref), D(bps), D(tick)) == D(expected)


@pytest.mark.parametrize(
    ("equity", "peak", "day_start", "expected"),
    [
        ("9000", "10000", "9400", []),
        (
            "4000",
            "4000",
            "4400",
            [StopTrigger("portfolio_stop", H, "portfolio_stop: equity 4000 < 0.5 x 10000 = 5000")],
        ),
        (
            "9000",
            "10000",
            "9600",
            [StopTrigger("daily_loss", R, "daily_loss: lost 600 >= 500 since 9600")],
        ),
        (
            "8000",
            "10000",
            "8100",
            [StopTrigger("max_drawdown", R, "max_drawdown: 0.2 >= 0.2 (equity 8000, peak 10000)")],
        ),
    ],
)
def test_check_stops(equity: str, peak: str, day_start: str, expected: list[StopTrigger]) -> None:
    limits = RiskLimits(portfolio_stop=D("0.5"), daily_loss_limit=D(500), max_drawdown=D("0.2"))
    state = replace(STATE, equity=D(equity), peak_equity=D(peak), day_start_equity=D(day_start))
    assert check_stops(state, limits) == expected


def test_no_stops_configured_never_fire() -> None:
    assert check_stops(replace(STATE, equity=D(1), day_start_equity=D(10**6)), RiskLimits()) == []


@pytest.mark.parametrize(
    ("current", "requested", "by_operator", "expected"),
    [
        (A, R, False, R),
        (A, H, False, H),
        (R, H, False, H),
        (R, A, False, R),  # a stop never resumes
        (H, A, False, H),
        (H, R, False, H),
        (R, A, True, A),  # only an operator does
        (H, A, True, A),
        (H, R, True, R),
        (A, A, False, A),
        (H, H, True, H),
    ],
)
def test_transition(
    current: TradingState, requested: TradingState, by_operator: bool, expected: TradingState
) -> None:
    assert transition(current, requested, by_operator=by_operator) is expected


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_order_notional": D(-1)}, "RiskLimits.max_order_notional"),
        ({"max_leverage": 3.0}, "RiskLimits.max_leverage"),
        ({"portfolio_stop": D("1.5")}, "RiskLimits.portfolio_stop"),
    ],
)
def test_limits_validation_names_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        RiskLimits(**kwargs)  # type: ignore[arg-type]
