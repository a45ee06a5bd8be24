"""A follower's equity between two reads of its account: marked to market from its own fills and
the public mark price, so stops see every price move without a REST call per follower
(docs/architecture.md, "Follower equity").

Linear contracts settle PnL as contracts x contract size x price change, so the equity at any time
is the equity last booked plus each position's change in value since its price was last booked.
A fill books its symbol at the fill's price first (the PnL up to then is realized into the booked
equity), then changes the quantity and pays the fee. A read of the account (`rebase`) replaces the
whole book with the venue's figures: the estimate never drifts further than one read apart."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from bot.core.types import ZERO


@dataclass
class Booked:
    qty: Decimal  # contracts, signed
    price: Decimal  # the price up to which this position's PnL is in the booked equity
    contract_size: Decimal = Decimal(1)


@dataclass
class MarkToMarket:
    booked_equity: Decimal = ZERO
    positions: dict[str, Booked] = field(default_factory=dict)
    fees: Decimal = ZERO  # estimated fees since the last rebase (shown; the read corrects them)

    def rebase(
        self,
        equity: Decimal,
        positions: Mapping[str, tuple[Decimal, Decimal, Decimal]],
        marks: Mapping[str, Decimal],
    ) -> None:
        """Adopt the venue's equity and positions (symbol -> qty, entry price, contract size). Each
        position is booked at the current mark, the price the venue's own equity was valued at, to
        the precision of the mark's age; at its entry price when no mark is known."""
        self.booked_equity = equity
        self.fees = ZERO
        self.positions = {
            symbol: Booked(qty, marks.get(symbol) or entry, size)
            for symbol, (qty, entry, size) in positions.items()
            if qty != 0
        }

    def fill(
        self, symbol: str, signed_qty: Decimal, price: Decimal, fee: Decimal, contract_size: Decimal
    ) -> None:
        """One own fill of `signed_qty` contracts at `price`, paying `fee` in the settle currency."""
        held = self.positions.get(symbol)
        if held is not None:
            self.booked_equity += held.qty * held.contract_size * (price - held.price)
            qty = held.qty + signed_qty
        else:
            qty = signed_qty
        self.booked_equity -= fee
        self.fees += fee
        if qty == 0:
            self.positions.pop(symbol, None)
        else:
            self.positions[symbol] = Booked(qty, price, contract_size)

    def equity(self, marks: Mapping[str, Decimal]) -> Decimal:
        total = self.booked_equity
        for symbol, held in self.positions.items():
            mark = marks.get(symbol)
            if mark is not None and mark > 0:
                total += held.qty * held.contract_size * (mark - held.price)
        return total
