"""Venues: the seam (base.VenueAdapter) and one folder per venue. `adapter_for` maps a ccxt
exchange id to its adapter; ids without a folder of their own get the generic ccxt adapter."""

from __future__ import annotations

from bot.venues.base import VenueAdapter, VenueMode
from bot.venues.binance.adapter import BINANCE
from bot.venues.bybit.adapter import BYBIT
from bot.venues.clients import make_pro, make_rest
from bot.venues.generic import GENERIC

_BY_EXCHANGE: dict[str, VenueAdapter] = {
    "binanceusdm": BINANCE,
    "bybit": BYBIT,
}


def adapter_for(exchange_id: str) -> VenueAdapter:
    return _BY_EXCHANGE.get(exchange_id, GENERIC)


__all__ = ["VenueAdapter", "VenueMode", "adapter_for", "make_pro", "make_rest"]
