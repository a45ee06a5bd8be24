"""The market the unit tests plan against: Binance's BTCUSDT perpetual filters, simplified."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

from bot.core.types import MarketSpec

BTC = MarketSpec(
    symbol="BTC/USDT:USDT",
    venue_symbol="BTCUSDT",
    base="BTC",
    quote="USDT",
    settle="USDT",
    step=D("0.001"),
    min_qty=D("0.001"),
    max_qty=D("100"),
    tick=D("0.1"),
    min_notional=D("5"),
)


def with_max_qty(market: MarketSpec, max_qty: str) -> MarketSpec:
    return replace(market, max_qty=D(max_qty))
