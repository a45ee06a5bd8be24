"""Take-profit / stop-loss arithmetic (bot.core.protect), its config keys and its journal rows."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path

import pytest

from bot.config.models import parse_config
from bot.core import clientid
from bot.core.clientid import DOTTED, ClientIdFormat
from bot.core.protect import Protection, desired, next_entry, protect_order_id, trigger_price
from bot.core.types import Side
from bot.journal.store import Journal
from bot.service.wiring import follower_settings
from tests.unit.markets import BTC
from tests.unit.test_config import base, errors_of


@pytest.mark.parametrize(
    ("kind", "position", "pct", "expected"),
    [
        ("tp", "0.5", "2", "61200.1"),  # long: above the entry, rounded up to the tick
        ("sl", "0.5", "1", "59400.0"),  # long: below, rounded down (59,400.0495)
        ("tp", "-0.5", "2", "58800.0"),  # short: below, rounded down (58,800.049)
        ("sl", "-0.5", "1", "60600.1"),  # short: above, rounded up (60,600.0505)
    ],
)
def test_trigger_is_the_percent_of_the_entry_rounded_away_from_it(
    kind: str, position: str, pct: str, expected: str
) -> None:
    assert trigger_price(kind, D(position), D("60000.05"), D(pct), D("0.1")) == D(expected)


def test_entry_averages_in_keeps_on_reduce_restarts_on_flip() -> None:
    assert next_entry(D(0), D(0), D("0.1"), D(100)) == D(100)
    assert next_entry(D("0.1"), D(100), D("0.1"), D(110)) == D(105)
    assert next_entry(D("0.2"), D(105), D("-0.05"), D(200)) == D(105)  # reduced: unchanged
    assert next_entry(D("0.15"), D(105), D("-0.25"), D(90)) == D(90)  # flipped short at 90
    assert next_entry(D("-0.1"), D(90), D("0.1"), D(80)) == D(0)  # closed


def test_desired_orders_cover_the_whole_position_with_copybot_ids() -> None:
    prot = Protection(take_profit_pct=D(5), stop_loss_pct=D(2))
    orders = desired(prot, "f", BTC.symbol, D("-0.3"), D(60000), BTC, {"tp": 7, "sl": 7}, DOTTED)
    assert set(orders) == {"tp", "sl"}
    for order in orders.values():
        assert order.side is Side.BUY
        assert order.qty == D("0.3")
        assert clientid.parse(order.client_order_id) is not None  # counts as copybot's own order
    assert orders["tp"].trigger_price == D(57000)
    assert orders["sl"].trigger_price == D(61200)
    assert orders["tp"].client_order_id != orders["sl"].client_order_id
    assert desired(prot, "f", BTC.symbol, D(0), D(60000), BTC, {}, DOTTED) == {}
    assert desired(Protection(), "f", BTC.symbol, D(1), D(60000), BTC, {}, DOTTED) == {}
    only_sl = desired(Protection(stop_loss_pct=D(1)), "f", BTC.symbol, D(1), D(60000), BTC, {}, DOTTED)
    assert set(only_sl) == {"sl"}


def test_ids_differ_by_sequence_kind_symbol_and_follower_and_fit_every_venue() -> None:
    ids = {
        protect_order_id(f, s, k, n, fmt)
        for f in ("f", "g")
        for s in ("BTC/USDT:USDT", "ETH/USDT:USDT")
        for k in ("tp", "sl")
        for n in (1, 2)
        for fmt in (DOTTED, ClientIdFormat("-"))
    }
    assert len(ids) == 32
    assert all(len(cid) <= 36 for cid in ids)
    assert protect_order_id("f", "X", "tp", 3, DOTTED) == protect_order_id("f", "X", "tp", 3, DOTTED)


def test_config_keys_are_validated_and_mapped() -> None:
    data = base()
    data["followers"][0]["risk"].update(take_profit_pct="0", stop_loss_pct=100)
    lines = errors_of(data)
    assert "cfg.yaml: followers[0].risk.take_profit_pct: must be greater than 0" in lines
    assert "cfg.yaml: followers[0].risk.stop_loss_pct: must be less than 100" in lines
    data["followers"][0]["risk"].update(take_profit_pct="12.5", stop_loss_pct=4)
    settings = follower_settings(parse_config(data))["f1"]
    assert settings.protect == Protection(D("12.5"), D(4))
    assert follower_settings(parse_config(base()))["f1"].protect is None


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal.open(tmp_path / "journal.sqlite")
    try:
        yield j
    finally:
        j.close()


def test_journal_keeps_the_last_order_of_each_kind_and_whether_it_is_active(journal: Journal) -> None:
    prot = Protection(D(2), D(1))
    orders = desired(prot, "f", BTC.symbol, D("0.1"), D(60000), BTC, {"tp": 5, "sl": 6}, DOTTED)
    journal.save_protect("f", BTC.symbol, orders["tp"])
    journal.save_protect("f", BTC.symbol, orders["sl"], active=False)
    journal.flush()
    rows = journal.protects("f")[BTC.symbol]
    assert rows["tp"] == (orders["tp"], True)
    assert rows["sl"] == (orders["sl"], False)
    assert journal.protects("g") == {}


def test_a_mark_past_a_trigger_asks_for_an_account_read_at_most_every_few_seconds() -> None:
    from types import SimpleNamespace

    from bot.live import protect

    orders = desired(Protection(D(2), D(1)), "f", BTC.symbol, D("0.1"), D(60000), BTC, {}, DOTTED)
    marks = {BTC.symbol: D(60000)}
    follower = SimpleNamespace(
        protected={BTC.symbol: orders}, protect_poked={}, engine=SimpleNamespace(mark=marks.get)
    )
    assert protect.crossed(follower, 100.0) is None  # between the stop (59,400) and the TP (61,200)
    marks[BTC.symbol] = D("59400")
    assert protect.crossed(follower, 100.0) == BTC.symbol  # the long's stop, from above
    assert protect.crossed(follower, 101.0) is None  # asked a second ago
    marks[BTC.symbol] = D("61200")
    assert protect.crossed(follower, 105.0) == BTC.symbol  # the long's take-profit, from below
    short = desired(Protection(D(2), D(1)), "f", BTC.symbol, D("-0.1"), D(60000), BTC, {}, DOTTED)
    follower.protected = {BTC.symbol: short}
    marks[BTC.symbol] = D("59000")
    assert protect.crossed(follower, 200.0) is None  # between the short's TP (58,800) and SL (60,600)
    marks[BTC.symbol] = D("58800")
    assert protect.crossed(follower, 200.0) == BTC.symbol
    marks[BTC.symbol] = D("60600")
    assert protect.crossed(follower, 210.0) == BTC.symbol
