"""Instruments that venues list under different names or units, for copying across venues.

Within one venue, and between venues that list an instrument under the same ccxt unified symbol,
nothing needs mapping: quantities convert through each market's contract size. Some instruments
are listed differently: one venue's `1000PEPE/USDT:USDT` (one unit = 1,000 PEPE, priced per 1,000)
is another's `PEPE/USDT:USDT` (one unit = one PEPE). The config's `symbol_map` names each such
instrument once, with its listing per venue and how many instrument units one base unit of that
listing holds (`multiplier`):

    symbol_map:
      PEPE:
        venue-a: {symbol: "1000PEPE/USDT:USDT", multiplier: 1000}
        venue-b: {symbol: "PEPE/USDT:USDT"}            # multiplier 1

A `Conversion` takes a lead's symbol, base quantity and price on its venue to a follower's venue:
quantity x factor, price / factor, factor = lead multiplier / follower multiplier, so that notional
value is the same on both sides. Everything is Decimal; nothing here rounds (the planner rounds to
the follower market's own step).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class Listing:
    symbol: str  # ccxt unified symbol on that venue
    multiplier: Decimal = ONE  # instrument units per one base unit of this symbol


@dataclass(frozen=True, slots=True)
class Conversion:
    """A lead's symbol on its venue as one follower venue lists it."""

    lead_symbol: str
    follower_symbol: str
    factor: Decimal = ONE  # follower base units per lead base unit

    @property
    def identity(self) -> bool:
        return self.lead_symbol == self.follower_symbol and self.factor == ONE

    def qty(self, lead_base_qty: Decimal) -> Decimal:
        return lead_base_qty * self.factor

    def price(self, lead_price: Decimal) -> Decimal:
        return lead_price / self.factor


class SymbolMap:
    """instrument -> venue -> Listing, indexed both ways. Unmapped symbols map to themselves."""

    def __init__(self, instruments: Mapping[str, Mapping[str, Listing]] | None = None) -> None:
        self._by_listing: dict[tuple[str, str], tuple[str, Listing]] = {}
        self._instruments = {name: dict(listings) for name, listings in (instruments or {}).items()}
        for name, listings in self._instruments.items():
            for venue, listing in listings.items():
                if listing.multiplier <= 0:
                    raise ValueError(f"symbol_map.{name}.{venue}.multiplier: must be positive")
                key = (venue, listing.symbol)
                if key in self._by_listing:
                    other = self._by_listing[key][0]
                    raise ValueError(f"symbol_map.{name}.{venue}: {listing.symbol} is already in {other}")
                self._by_listing[key] = (name, listing)

    def __bool__(self) -> bool:
        return bool(self._instruments)

    def _listing(self, venue: str, symbol: str) -> tuple[str, Listing] | None:
        return self._by_listing.get((venue, symbol))

    def to_follower(self, lead_venue: str, lead_symbol: str, follower_venue: str) -> Conversion:
        found = self._listing(lead_venue, lead_symbol)
        if found is None or follower_venue == lead_venue:
            return Conversion(lead_symbol, lead_symbol)
        name, lead = found
        follower = self._instruments[name].get(follower_venue)
        if follower is None:
            return Conversion(lead_symbol, lead_symbol)
        return Conversion(lead_symbol, follower.symbol, lead.multiplier / follower.multiplier)

    def to_lead(self, follower_venue: str, follower_symbol: str, lead_venue: str) -> Conversion:
        """The conversion whose follower side is `follower_symbol` (the inverse lookup)."""
        found = self._listing(follower_venue, follower_symbol)
        if found is None or follower_venue == lead_venue:
            return Conversion(follower_symbol, follower_symbol)
        name, follower = found
        lead = self._instruments[name].get(lead_venue)
        if lead is None:
            return Conversion(follower_symbol, follower_symbol)
        return Conversion(lead.symbol, follower_symbol, lead.multiplier / follower.multiplier)
