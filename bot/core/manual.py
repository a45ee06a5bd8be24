"""Trades the account's owner makes by hand in a follower's account, and the quantity copybot owns.

A follower's position on a symbol is two parts: copybot's own quantity and the owner's manual
quantity (`position = own + manual`). copybot stores only the manual part; its own quantity is the
account's position minus it, so every fill copybot makes (copy orders, and any order carrying a
copybot client id, such as a resting take-profit or stop-loss) lands in its own part without being
counted. A fill whose order does not carry a copybot client id is the owner's, and moves the parts
by the rule of `apply_manual_fills` (docs/config.md, "Manual trades in a follower's account").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from bot.core.clientid import PREFIX
from bot.core.types import ZERO, Side


class ManualPolicy(StrEnum):
    LEAVE = "leave"  # the owner's quantity is his: copybot measures drift on its own quantity
    ADOPT = "adopt"  # the owner's quantity becomes copybot's, reconciled to the copy target
    ALERT = "alert"  # as leave, and an alert for each manual trade seen


@dataclass(frozen=True, slots=True)
class AccountOrder:
    """One order of a follower's account as the venue lists it (decoded at the adapter)."""

    order_id: str
    client_order_id: str  # "" when the order has none
    symbol: str
    side: Side
    filled: Decimal  # executed so far, unsigned
    ts_ms: int

    @property
    def signed_filled(self) -> Decimal:
        return self.filled if self.side is Side.BUY else -self.filled


def is_copybot_order(client_order_id: str) -> bool:
    """An order copybot placed: its client id starts with copybot's prefix and a separator (copy
    orders, bot.core.clientid, and any other order copybot places under that prefix)."""
    return client_order_id.startswith((f"{PREFIX}.", f"{PREFIX}-"))


def own_quantity(position: Decimal, manual: Decimal) -> Decimal:
    return position - manual


def _sign(value: Decimal) -> int:
    return (value > 0) - (value < 0)


def apply_manual_fill(own: Decimal, manual: Decimal, qty: Decimal) -> tuple[Decimal, Decimal]:
    """(own, manual) after one manual fill of signed `qty`.

    A hand trade on the side of the owner's own quantity adds to it. One against it first takes
    from it (he sells what he bought by hand); what is left, when it goes against copybot's
    quantity, takes from copybot's (he sold what copybot bought: copybot's quantity is short of
    its target and the reconciler buys it back), down to zero; the rest is the owner's again. So
    copybot's quantity is never turned to the other side by a hand trade, and a liquidation (a
    venue order without our client id) that closes the whole position leaves both parts at zero."""
    if _sign(qty) == _sign(manual):
        return own, manual + qty
    rest = qty
    if _sign(rest) == -_sign(manual):
        taken = min(abs(rest), abs(manual)) * _sign(rest)
        manual += taken
        rest -= taken
    if _sign(rest) == -_sign(own):
        taken = min(abs(rest), abs(own)) * _sign(rest)
        own += taken
        rest -= taken
    return own, manual + rest


def apply_manual_fills(position: Decimal, manual: Decimal, fills: Iterable[Decimal]) -> Decimal:
    """The owner's manual quantity after `fills` (signed, oldest first), given the account's
    `position` after all of them and his `manual` quantity before them. Fills of copybot's own
    orders in the same span count as made before the manual ones (their order is not known)."""
    fills = list(fills)
    own = position - manual - sum(fills, ZERO)
    for qty in fills:
        own, manual = apply_manual_fill(own, manual, qty)
    return manual


def account_reduces(position: Decimal, signed_qty: Decimal) -> bool:
    """Whether an order of `signed_qty` reduces the account's position without crossing zero:
    only then may it go to the venue reduce-only. A leg that reduces copybot's own quantity need
    not (the owner may hold the other side)."""
    return _sign(signed_qty) == -_sign(position) and abs(signed_qty) <= abs(position)


@dataclass
class ManualBook:
    """One follower's view of its owner's hand trades (kept by bot/live/manual_trades.py)."""

    qty: dict[str, Decimal] = field(default_factory=dict)  # symbol -> the owner's manual quantity
    # When the account was last checked (ms): the next read starts a little before it. None: never.
    watermark_ms: int | None = None
    saved_ms: int = 0  # when the watermark was last journaled
    applied: dict[str, Decimal] = field(default_factory=dict)  # order id -> filled qty applied
    # symbol -> the account position copybot can explain (its own fills and the manual ones seen);
    # None until the first check after start, which reads every symbol held.
    accounted: dict[str, Decimal] | None = None
    pending: set[str] = field(default_factory=set)  # symbols whose read failed: read next pass

    def manual(self, symbol: str) -> Decimal:
        return self.qty.get(symbol, ZERO)
