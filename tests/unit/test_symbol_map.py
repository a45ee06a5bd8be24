"""Cross-venue symbol mapping: the config key, its validation (errors name the key), the Decimal
conversions, and a follower's view of its lead through them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from bot.config.models import ConfigError, parse_config
from bot.core.symbols import Conversion, Listing, SymbolMap
from bot.core.types import LeadFill, Side
from bot.live.lead_view import LeadView
from bot.live.work import FillWork
from tests.unit.test_config import base

PEPE = {
    "binance": {"symbol": "1000PEPE/USDT:USDT", "multiplier": 1000},
    "bybit": {"symbol": "PEPE/USDT:USDT"},
}


def two_venues(symbol_map: Any) -> dict[str, Any]:
    data = base()
    local = data["venues"]["local"]
    data["venues"] = {"binance": dict(local), "bybit": {**local, "exchange": "bybit"}}
    data["leads"][0]["venue"] = "binance"
    data["followers"][0]["venue"] = "bybit"
    data["symbol_map"] = symbol_map
    return data


def errors_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "cfg.yaml")
    return str(info.value).splitlines()


def test_symbol_map_loads_and_converts_both_ways() -> None:
    symbols = parse_config(two_venues({"PEPE": PEPE}), "cfg.yaml").symbols()
    there = symbols.to_follower("binance", "1000PEPE/USDT:USDT", "bybit")
    assert there == Conversion("1000PEPE/USDT:USDT", "PEPE/USDT:USDT", Decimal(1000))
    assert there.qty(Decimal("5000")) == Decimal(5_000_000)
    assert there.price(Decimal("0.0120000")) == Decimal("0.000012")
    back = symbols.to_follower("bybit", "PEPE/USDT:USDT", "binance")
    assert back.follower_symbol == "1000PEPE/USDT:USDT"
    assert back.qty(Decimal(3_000_000)) == Decimal(3000)
    assert symbols.to_lead("bybit", "PEPE/USDT:USDT", "binance") == there
    assert symbols.to_follower("binance", "BTC/USDT:USDT", "bybit").identity  # same name everywhere
    assert symbols.to_follower("binance", "1000PEPE/USDT:USDT", "binance").identity  # same venue


SECOND = {"binance": {"symbol": "1000PEPE/USDT:USDT"}, "bybit": {"symbol": "X/USDT:USDT"}}
BAD_MAPS = [
    ({"PEPE": {"binance": PEPE["binance"]}}, "symbol_map.PEPE: list the instrument on at least two"),
    ({"PEPE": {**PEPE, "okx": {"symbol": "PEPE/USDT:USDT"}}}, "symbol_map.PEPE.okx: unknown venue 'okx'"),
    ({"PEPE": {**PEPE, "bybit": {"symbol": "PEPEUSDT"}}}, "symbol_map.PEPE.bybit.symbol: 'PEPEUSDT' is not"),
    (
        {"PEPE": {**PEPE, "bybit": {"symbol": "PEPE/USDT:USDT", "multiplier": 0}}},
        "symbol_map.PEPE.bybit.multiplier:",
    ),
    (
        {"PEPE": PEPE, "PEPE2": SECOND},
        "symbol_map.PEPE2.binance.symbol: 1000PEPE/USDT:USDT on binance is already",
    ),
]


@pytest.mark.parametrize(("symbol_map", "expected"), BAD_MAPS)
def test_symbol_map_errors_name_the_key(symbol_map: Any, expected: str) -> None:
    errors = errors_of(two_venues(symbol_map))
    assert any(e.startswith(f"cfg.yaml: {expected}") for e in errors), errors


class Engine:
    """The engine as a follower's LeadView reads it."""

    def __init__(self) -> None:
        self.cfg = parse_config(two_venues({"PEPE": PEPE}), "cfg.yaml")
        self.positions = {
            ("alpha", "1000PEPE/USDT:USDT"): Decimal(3766),
            ("alpha", "BTC/USDT:USDT"): Decimal("0.1"),
        }
        self.marks = {"1000PEPE/USDT:USDT": Decimal("0.012"), "BTC/USDT:USDT": Decimal(60_000)}

    def lead_position(self, lead: str, symbol: str) -> Decimal:
        return self.positions.get((lead, symbol), Decimal(0))

    def lead_contract_size(self, lead: str, symbol: str) -> Decimal:
        return Decimal(1)

    def mark(self, symbol: str) -> Decimal | None:
        return self.marks.get(symbol)


def test_a_bybit_follower_sees_a_binance_lead_in_its_own_symbols_and_units() -> None:
    view = LeadView.of(Engine(), "bybit")
    assert view.lead_position("alpha", "PEPE/USDT:USDT") == Decimal(3_766_000)
    assert view.lead_position("alpha", "BTC/USDT:USDT") == Decimal("0.1")
    assert view.lead_contract_size("alpha", "PEPE/USDT:USDT") == 1
    assert view.mark("PEPE/USDT:USDT") == Decimal("0.000012")
    assert view.mark("BTC/USDT:USDT") == Decimal(60_000)
    assert view.follower_symbols("alpha", ["1000PEPE/USDT:USDT", "BTC/USDT:USDT"]) == {
        "PEPE/USDT:USDT",
        "BTC/USDT:USDT",
    }
    fill = LeadFill("alpha", "t1", "o1", "1000PEPE/USDT:USDT", Side.SELL, Decimal(1234), Decimal("0.0121"), 1)
    work = view.work(FillWork(fill, Decimal(5000), Decimal(3766), False, Decimal(100_000)))
    assert (work.fill.symbol, work.fill.qty, work.fill.price) == (
        "PEPE/USDT:USDT",
        Decimal(1_234_000),
        Decimal("0.0000121"),
    )
    assert (work.lead_before, work.lead_after) == (Decimal(5_000_000), Decimal(3_766_000))
    assert work.fill.trade_id == "t1"
    btc = FillWork(LeadFill("alpha", "t2", "o2", "BTC/USDT:USDT", Side.BUY, Decimal("0.1"), Decimal(6e4), 1),
                   Decimal(0), Decimal("0.1"), True, Decimal(1))  # fmt: skip
    assert view.work(btc) is btc  # nothing to convert: the same object, no copy per follower


def test_unmapped_symbols_and_an_empty_map_are_the_identity() -> None:
    symbols = SymbolMap()
    assert not symbols
    assert symbols.to_follower("a", "X/USDT:USDT", "b").identity
    with pytest.raises(ValueError, match="multiplier"):
        SymbolMap({"X": {"a": Listing("X/USDT:USDT", Decimal(0))}})
