"""Take-profit and stop-loss on a copied position, as pure arithmetic (docs/config.md, "Take-profit
and stop-loss").

The percentages are of the follower's own average entry price, as a price move: a long with
`take_profit_pct: 5` takes profit when the mark reaches entry x 1.05, a short when it falls to
entry x 0.95. The venues' position TP/SL screens show the same trigger as a return on margin
(ROI %), which is this price move times the position's leverage (Binance and Bybit compute
unrealized ROI as PnL / initial margin, initial margin = notional / leverage); copybot keeps the
price reference because the leverage a follower runs at may change while the position is open,
and the trigger must not move with it.

Trigger prices round away from the entry to the market's tick, so a trigger is never nearer than
the percentage asked. The entry follows the venue's rule for one-way positions: a fill that adds
averages in, a fill that reduces leaves it, a flip restarts it at the fill price.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

from bot.core import clientid
from bot.core.clientid import ClientIdFormat
from bot.core.types import ZERO, MarketSpec, Side

HUNDRED = Decimal(100)
KINDS = ("tp", "sl")
_PROTECT_LEAD = "#protect"  # no lead id can contain '#': these ids never meet a copy order's


class ProtectStatus(StrEnum):
    """What became of a TP/SL order at the venue, as the venue adapter decodes it."""

    OPEN = "open"  # waiting for its trigger
    TRIGGERED = "triggered"  # triggered: the position was (being) closed by it
    GONE = "gone"  # cancelled, expired, rejected without a fill, or never placed


@dataclass(frozen=True, slots=True)
class Protection:
    """A follower's TP/SL percentages (None: that side is not used)."""

    take_profit_pct: Decimal | None = None
    stop_loss_pct: Decimal | None = None

    @property
    def enabled(self) -> bool:
        return self.take_profit_pct is not None or self.stop_loss_pct is not None


@dataclass(frozen=True, slots=True)
class ProtectOrder:
    """One resting reduce-only trigger order for the whole copied position."""

    kind: str  # "tp" | "sl"
    side: Side  # the side that reduces the position
    qty: Decimal
    trigger_price: Decimal
    client_order_id: str
    seq: int


def next_entry(qty: Decimal, entry: Decimal, signed_fill: Decimal, price: Decimal) -> Decimal:
    """The average entry after a fill of `signed_fill` at `price` on a position `qty` @ `entry`."""
    after = qty + signed_fill
    if after == 0:
        return ZERO
    if qty == 0 or (qty > 0) != (after > 0):
        return price  # opened, or flipped: the rest opened at this price
    if (qty > 0) == (signed_fill > 0):
        return (abs(qty) * entry + abs(signed_fill) * price) / abs(after)
    return entry  # reduced


def trigger_price(kind: str, position: Decimal, entry: Decimal, pct: Decimal, tick: Decimal) -> Decimal:
    """The trigger `pct` percent away from `entry`, on the side `kind` means for this position,
    rounded away from the entry to the tick."""
    gain = kind == "tp"
    up = (position > 0) == gain  # a long's TP and a short's SL are above the entry
    raw = entry * (1 + pct / HUNDRED) if up else entry * (1 - pct / HUNDRED)
    steps = (raw / tick).to_integral_value(rounding=ROUND_CEILING if up else ROUND_FLOOR)
    return steps * tick


def protect_order_id(follower: str, symbol: str, kind: str, seq: int, fmt: ClientIdFormat) -> str:
    """A copybot client id (bot.core.clientid: it parses as ours) for the seq-th order of this
    kind on this follower's symbol; the journal keeps seq, so a restart finds the order it placed."""
    return clientid.client_order_id(_PROTECT_LEAD, f"{kind}{seq}", follower, symbol, 0, fmt)


def desired(
    prot: Protection,
    follower: str,
    symbol: str,
    position: Decimal,
    entry: Decimal,
    market: MarketSpec,
    seqs: dict[str, int],
    fmt: ClientIdFormat,
) -> dict[str, ProtectOrder]:
    """The TP and SL orders a position should have (none when flat or without an entry); `seqs`
    are the sequence numbers to use for each kind (the caller bumps them on replacement)."""
    if position == 0 or entry <= 0 or not prot.enabled:
        return {}
    side = Side.SELL if position > 0 else Side.BUY
    out = {}
    for kind, pct in (("tp", prot.take_profit_pct), ("sl", prot.stop_loss_pct)):
        if pct is None:
            continue
        price = trigger_price(kind, position, entry, pct, market.tick)
        if price <= 0:
            continue
        seq = seqs.get(kind, 1)
        cid = protect_order_id(follower, symbol, kind, seq, fmt)
        out[kind] = ProtectOrder(kind, side, abs(position), price, cid, seq)
    return out
