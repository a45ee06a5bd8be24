"""The owner's manual quantity and copybot's own quantity (bot.core.manual), computed by hand."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.commands.follower import parse_changes
from bot.config.models import ConfigError, parse_config
from bot.core import clientid
from bot.core.clientid import ClientIdFormat
from bot.core.manual import (
    AccountOrder,
    ManualPolicy,
    account_reduces,
    apply_manual_fill,
    apply_manual_fills,
    is_copybot_order,
    own_quantity,
)
from bot.core.types import Side
from bot.journal.store import Journal
from bot.live import manual_trades
from bot.service import roster
from bot.service.roster import RosterError
from bot.service.wiring import follower_settings

D = Decimal


@pytest.mark.parametrize(
    ("own", "manual", "qty", "expected"),
    [
        # The owner buys beside copybot's long: his, and copybot keeps its 1.
        ("1", "0", "0.5", ("1", "0.5")),
        # He sells what he bought: his quantity goes back to zero, copybot's is untouched.
        ("1", "0.5", "-0.5", ("1", "0")),
        # He sells more than his: the rest comes out of copybot's quantity (short of its target).
        ("1", "0.5", "-0.8", ("0.7", "0")),
        # He closes everything: both parts at zero (a liquidation looks the same).
        ("1", "0.5", "-1.5", ("0", "0")),
        # He sells past zero: copybot's quantity stops at zero, the rest is his short.
        ("1", "0", "-3", ("0", "-2")),
        # Short side, mirrored.
        ("-2", "-1", "3", ("0", "0")),
        ("-2", "0", "-1", ("-2", "-1")),
        # Copybot holds nothing: every hand trade is the owner's.
        ("0", "0", "0.3", ("0", "0.3")),
        ("0", "0.3", "-0.5", ("0", "-0.2")),
        # He adds to a short of his own while copybot is long: copybot's long untouched.
        ("1", "-2", "-1", ("1", "-3")),
        # He buys back part of his short: his short shrinks first.
        ("1", "-2", "1.5", ("1", "-0.5")),
        # He buys back more than his short: the rest is his long, copybot's long stays.
        ("1", "-2", "3", ("1", "1")),
    ],
)
def test_one_manual_fill(own: str, manual: str, qty: str, expected: tuple[str, str]) -> None:
    new_own, new_manual = apply_manual_fill(D(own), D(manual), D(qty))
    assert (new_own, new_manual) == (D(expected[0]), D(expected[1]))
    # Nothing is lost: the account's position moved by exactly the hand trade.
    assert new_own + new_manual == D(own) + D(manual) + D(qty)


def test_fills_of_a_pass_against_the_position_read_after_them() -> None:
    # copybot held 0.020 (its copy); the owner bought 0.010, then sold 0.004 by hand; the account
    # now holds 0.026: the owner's 0.006, copybot's 0.020.
    manual = apply_manual_fills(D("0.026"), D("0"), [D("0.010"), D("-0.004")])
    assert manual == D("0.006")
    assert own_quantity(D("0.026"), manual) == D("0.020")


def test_copybot_fills_in_the_same_span_stay_copybots() -> None:
    # Own 0.020 before; copybot bought 0.010 more (lead added) and the owner bought 0.005: the
    # account holds 0.035; copybot's part is its 0.030.
    manual = apply_manual_fills(D("0.035"), D("0"), [D("0.005")])
    assert (manual, own_quantity(D("0.035"), manual)) == (D("0.005"), D("0.030"))


def test_the_owner_selling_copybots_quantity_leaves_it_short_of_target() -> None:
    # Own 0.020; the owner sold 0.015 by hand: 0.005 left, all copybot's; the reconciler restores.
    manual = apply_manual_fills(D("0.005"), D("0"), [D("-0.015")])
    assert (manual, own_quantity(D("0.005"), manual)) == (D("0"), D("0.005"))


def test_no_fills_changes_nothing() -> None:
    assert apply_manual_fills(D("0.5"), D("0.2"), []) == D("0.2")


@pytest.mark.parametrize(
    ("position", "qty", "reduces"),
    [
        ("1.5", "-1", True),  # copybot closes its 1 beside the owner's 0.5
        ("1", "-1", True),
        ("1", "-1.5", False),  # would cross zero
        ("-1", "-1", False),  # the owner's short: copybot's sell adds to the account's exposure
        ("0", "-1", False),
        ("-2", "1", True),
    ],
)
def test_reduce_only_only_when_the_account_is_reduced(position: str, qty: str, reduces: bool) -> None:
    assert account_reduces(D(position), D(qty)) is reduces


def test_copybot_orders_are_told_apart_by_client_id() -> None:
    for fmt in (ClientIdFormat("."), ClientIdFormat("-")):
        ours = clientid.client_order_id("lead", "t1", "f", "BTC/USDT:USDT", 0, fmt)
        assert is_copybot_order(ours)
    assert is_copybot_order("cb.tp.abc")  # any order copybot places under its prefix
    for foreign in ("", "web_12345", "x-abc", "cbx.1", "autoclose-123", "CB.abc"):
        assert not is_copybot_order(foreign)


def test_signed_filled() -> None:
    buy = AccountOrder("1", "", "BTC/USDT:USDT", Side.BUY, D("0.5"), 0)
    sell = AccountOrder("2", "", "BTC/USDT:USDT", Side.SELL, D("0.5"), 0)
    assert (buy.signed_filled, sell.signed_filled) == (D("0.5"), D("-0.5"))


def test_the_policy_is_validated_at_start_and_at_run_time() -> None:
    cfg = _config()
    assert cfg.follower("a").manual_trades == "leave"  # the default
    assert follower_settings(cfg)["a"].manual_trades is ManualPolicy.LEAVE
    assert follower_settings(_config(manual_trades="alert"))["a"].manual_trades is ManualPolicy.ALERT
    with pytest.raises(ConfigError, match=r"followers\[0\]\.manual_trades: .*'leave', 'adopt' or 'alert'"):
        _config(manual_trades="ignore")
    changed = roster.with_changed(cfg, "a", parse_changes(["manual_trades=adopt"]))
    assert follower_settings(changed)["a"].manual_trades is ManualPolicy.ADOPT
    with pytest.raises(RosterError, match=r"changes\.manual_trades: .*'leave', 'adopt' or 'alert'"):
        roster.with_changed(cfg, "a", {"manual_trades": "sell_it"})


def test_the_journal_keeps_quantities_and_applied_orders(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j.sqlite")
    try:
        order = AccountOrder("77", "web_1", "BTC/USDT:USDT", Side.BUY, D("0.010"), 1_000)
        journal.record_manual_trade("f", order, "leave")
        journal.save_manual_quantity("f", "BTC/USDT:USDT", D("0.010"), 2_000)
        journal.save_manual_quantity("f", "*", D(0), 3_000)
        more = AccountOrder("77", "web_1", "BTC/USDT:USDT", Side.BUY, D("0.012"), 1_500)
        journal.record_manual_trade("f", more, "leave")  # the same order, filled further
        journal.flush()
        assert journal.manual_trades_applied("f") == {"77": D("0.012")}
        assert journal.manual_trades_applied("g") == {}
        book = manual_trades.load(journal, "f")
        assert (book.qty, book.watermark_ms, book.applied, book.accounted) == (
            {"BTC/USDT:USDT": D("0.010")},
            3_000,
            {"77": D("0.012")},
            None,
        )
    finally:
        journal.close()


def _config(**follower_changes: Any) -> Any:
    creds = {"api_key_env": "K", "secret_env": "S"}
    risk = {"max_order_notional": 1000, "max_position_notional": 1000, "max_total_exposure": 1000,
            "max_leverage": 5}  # fmt: skip
    row = {"id": "a", "venue": "v", "credentials": creds, "risk": risk,
           "follows": [{"lead": "lead", "sizing": {"mode": "multiplier"}}], **follower_changes}  # fmt: skip
    data = {"venues": {"v": {"mode": "live"}}, "leads": [{"id": "lead", "venue": "v", "credentials": creds}],
            "followers": [row]}  # fmt: skip
    return parse_config(data, "file.yaml", env={})
