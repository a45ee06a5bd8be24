"""Mark prices from ccxt tickers: the venue's raw string, never ccxt's float, and only the symbols
asked for from the client's cache."""

from __future__ import annotations

from decimal import Decimal
from types import SimpleNamespace

from bot.venues.ccxt_common import cached_tickers, marks_from_tickers


def test_the_raw_string_wins_over_the_float() -> None:
    tickers = {
        "BTC/USDT:USDT": {"markPrice": 60000.1, "info": {"p": "60000.10000000"}},
        "PEPE/USDT:USDT": {"markPrice": 1.25e-05, "info": {"markPrice": "0.0000125"}},
    }
    binance = marks_from_tickers(tickers, "p")
    assert str(binance["BTC/USDT:USDT"]) == "60000.10000000"
    assert binance["PEPE/USDT:USDT"] == Decimal("0.0000125")  # no raw field: ccxt's value, via repr
    pepe = marks_from_tickers(tickers, "markPrice")
    assert pepe["PEPE/USDT:USDT"] == Decimal("0.0000125")
    # Without a raw field (a venue without an adapter folder) ccxt's float goes through repr.
    assert marks_from_tickers(tickers, None)["BTC/USDT:USDT"] == Decimal("60000.1")


def test_missing_empty_or_zero_marks_are_left_out() -> None:
    tickers = {
        "A/USDT:USDT": {"markPrice": None, "info": {"markPrice": ""}},
        "B/USDT:USDT": {"markPrice": None, "info": {"markPrice": "0"}},
        "C/USDT:USDT": {"info": {}},
    }
    assert marks_from_tickers(tickers, "markPrice") == {}


def test_cached_tickers_are_those_asked_for() -> None:
    client = SimpleNamespace(tickers={"A": {"info": {}}, "B": {"info": {}}})
    assert set(cached_tickers(client, ["A", "C"])) == {"A"}
    assert cached_tickers(SimpleNamespace(), ["A"]) == {}
