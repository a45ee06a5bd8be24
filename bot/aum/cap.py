"""The per-lead AUM cap as pure arithmetic: which part of each follower's capital a cap admits, the
sizing that trades only that part, and the cap derived from a slippage limit against a book.

Followers are admitted in config order; the part of a follower's capital above the cap is refused
by rewriting its sizing for that lead (`capped_sizing`): the copy ratio is scaled by the admitted
fraction and the admitted capital becomes the sizing's explicit allocation, so that the AUM
definition (bot.aum.definition) counts exactly what was admitted. Pure functions over `Decimal`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal

from bot.aum.capacity import Level, max_aum_for_slippage, walk_book
from bot.aum.definition import FollowerCapital, follower_contribution
from bot.core.sizing import Sizing, SizingMode
from bot.core.types import ZERO, Side

FRACTION_STEP = Decimal("0.0001")
# Sizing refuses zero amounts. A fully refused follower keeps its sizing entry for the lead (so that
# what it already copied is still exited with the lead) with this factor, which rounds every new
# target to zero lots.
REFUSED_FACTOR = Decimal("1e-12")


@dataclass(frozen=True, slots=True)
class Admission:
    """How much of one follower's capital a lead's AUM cap admits."""

    follower: str
    lead: str
    requested: Decimal  # its contribution under the configured sizing
    admitted: Decimal  # requested x fraction, never more than the room left under the cap
    fraction: Decimal  # admitted / requested, rounded down to FRACTION_STEP; 1 when uncapped
    cap: Decimal | None
    reason: str | None = None  # set when part of the capital is refused

    @property
    def refused(self) -> Decimal:
        return self.requested - self.admitted


def admit(
    lead: str, capitals: Sequence[FollowerCapital], cap: Decimal | None, *, lead_equity: Decimal = ZERO
) -> list[Admission]:
    """Admit followers of `lead` in the given (config) order until the cap is used up. The lead's
    own counted equity (include_lead) takes its room first: it cannot be refused."""
    room = None if cap is None else max(cap - lead_equity, ZERO)
    out: list[Admission] = []
    for capital in capitals:
        if capital.lead != lead:
            continue
        requested = follower_contribution(capital)
        if room is None or requested <= room:
            fraction = Decimal(1)
        else:
            fraction = (room / requested).quantize(FRACTION_STEP, rounding=ROUND_DOWN)
        admitted = requested * fraction
        if room is not None:
            room -= admitted
        reason = None
        if fraction < 1:
            reason = (
                f"lead {lead} AUM cap {cap}: admitted {admitted:.2f} of {requested:.2f}, refused "
                f"{requested - admitted:.2f} (followers are admitted in config order)"
            )
        out.append(Admission(capital.follower, lead, requested, admitted, fraction, cap, reason))
    return out


def capped_sizing(configured: Sizing, admission: Admission) -> Sizing:
    """The sizing that trades only the admitted capital. In allocation mode the allocation itself is
    the capital; in the other modes the multiplier (or the fixed notional) is scaled by the admitted
    fraction and the admitted capital is recorded as the explicit allocation that AUM counts."""
    if admission.fraction >= 1:
        return configured
    factor = admission.fraction if admission.fraction > 0 else REFUSED_FACTOR
    amount = admission.admitted if admission.admitted > 0 else REFUSED_FACTOR
    if configured.mode is SizingMode.ALLOCATION:
        return replace(configured, allocation=amount)
    if configured.mode is SizingMode.FIXED_NOTIONAL:
        assert configured.notional is not None  # Sizing checks it for this mode
        return replace(configured, notional=configured.notional * factor, allocation=amount)
    return replace(configured, multiplier=configured.multiplier * factor, allocation=amount)


def slippage_cap(
    sides: Mapping[Side, Sequence[Level]],
    lead_qty: Decimal,
    total_ratio: Decimal,
    followers_aum: Decimal,
    max_bps: Decimal,
    *,
    lead_equity: Decimal = ZERO,
) -> Decimal | None:
    """The AUM at which the combined follower order for one lead entry of `lead_qty` would pay
    `max_bps` against these book sides (the worse side wins). The reference is the lead's own
    average price on that book; None when no side has depth or nobody copies."""
    if lead_qty <= 0 or total_ratio <= 0 or followers_aum <= 0:
        return None
    caps = []
    for side, levels in sides.items():
        lead_walk = walk_book(levels, lead_qty)
        if lead_walk.avg_price is None:
            continue
        multiple = max_aum_for_slippage(levels, lead_walk.avg_price, side, lead_qty, total_ratio, max_bps)
        caps.append(lead_equity + followers_aum * multiple)
    return min(caps) if caps else None
