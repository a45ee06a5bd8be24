"""Capacity: the slippage the followers' combined order would pay against today's book, at today's AUM
and at larger multiples of it, and the largest AUM that keeps it under a limit.

Model. Followers copy the lead's fill after it happened, so the lead's own order has already taken
the top of the book: the combined follower order (lead quantity x the sum of the followers' copy
ratios) walks what is left. The sum of ratios scales linearly with AUM, so AUM multiple m means a
combined order of m x that quantity. When the visible depth runs out, the remainder is priced at the
worst visible level moved a further `depth_penalty_bps` against the taker: an explicit, stated guess
rather than an optimistic fill at the last price, flagged as extrapolated.

Pure functions over `Decimal`, no I/O. Book levels are (price, size) for one side in priority
order: asks ascending for a buy, bids descending for a sell.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from statistics import median

from bot.aum.stats import FillLike, PositionBook
from bot.core.types import ZERO, Side

BPS = Decimal(10_000)
DEFAULT_DEPTH_PENALTY_BPS = Decimal(50)
DEFAULT_MULTIPLIERS = (1, 2, 5, 10)

Level = tuple[Decimal, Decimal]


@dataclass(frozen=True, slots=True)
class WalkResult:
    avg_price: Decimal | None  # None when nothing filled
    filled: Decimal
    levels_consumed: int  # levels touched, the last one possibly partly
    exhausted: bool  # the book ran out before `qty` was filled
    worst_price: Decimal | None  # price of the last level touched


@dataclass(frozen=True, slots=True)
class ProjectedPoint:
    multiple: Decimal  # of today's AUM
    qty: Decimal  # combined follower quantity
    avg_price: Decimal
    bps: Decimal  # worse is positive
    extrapolated: bool  # visible depth ran out; the remainder is priced with the penalty
    extrapolated_qty: Decimal


def _check_levels(levels: Sequence[Level], side: Side) -> None:
    for i, (price, size) in enumerate(levels):
        if price <= 0 or size < 0:
            raise ValueError(f"book level {i} must have price > 0 and size >= 0, got ({price}, {size})")
        if i and (price < levels[i - 1][0] if side is Side.BUY else price > levels[i - 1][0]):
            order = "asks ascending" if side is Side.BUY else "bids descending"
            raise ValueError(
                f"book levels for a {side} must be {order}; level {i} at {price} is out of order"
            )


def walk_book(levels: Sequence[Level], qty: Decimal) -> WalkResult:
    """Fill `qty` against levels in the given order; the average price is quantity-weighted."""
    if qty <= 0:
        raise ValueError(f"quantity to walk must be positive, got {qty}")
    remaining = qty
    cost = ZERO
    consumed = 0
    worst: Decimal | None = None
    for price, size in levels:
        if remaining <= 0:
            break
        if size <= 0:
            continue
        take = min(size, remaining)
        cost += take * price
        remaining -= take
        consumed += 1
        worst = price
    filled = qty - remaining
    return WalkResult(
        avg_price=cost / filled if filled > 0 else None,
        filled=filled,
        levels_consumed=consumed,
        exhausted=remaining > 0,
        worst_price=worst,
    )


def slippage_bps(side: Side, ref_price: Decimal, avg_price: Decimal) -> Decimal:
    """Slippage of a fill against a reference price in basis points, worse positive: a buy above the
    reference or a sell below it."""
    if ref_price <= 0:
        raise ValueError(f"reference price must be positive, got {ref_price}")
    return (avg_price - ref_price) / ref_price * BPS * side.sign


def remove_from_top(levels: Sequence[Level], qty: Decimal) -> list[Level]:
    """The levels left after an order of `qty` took the top of the book."""
    left: list[Level] = []
    remaining = qty
    for price, size in levels:
        if remaining >= size:
            remaining -= size
            continue
        left.append((price, size - remaining))
        remaining = ZERO
    return left


def project(
    levels: Sequence[Level],
    ref_price: Decimal,
    side: Side,
    qty: Decimal,
    *,
    depth_penalty_bps: Decimal = DEFAULT_DEPTH_PENALTY_BPS,
    multiple: Decimal = Decimal(1),
) -> ProjectedPoint:
    """Average price and slippage of one order of `qty` against `levels` (already net of the lead)."""
    walk = walk_book(levels, qty)
    cost = (walk.avg_price or ZERO) * walk.filled
    missing = qty - walk.filled
    if missing > 0:
        base = walk.worst_price if walk.worst_price is not None else ref_price
        penalty_price = base * (1 + depth_penalty_bps / BPS * side.sign)
        cost += missing * penalty_price
    avg = cost / qty
    return ProjectedPoint(
        multiple=multiple,
        qty=qty,
        avg_price=avg,
        bps=slippage_bps(side, ref_price, avg),
        extrapolated=missing > 0,
        extrapolated_qty=missing,
    )


def projection(
    book_side_levels: Sequence[Level],
    ref_price: Decimal,
    side: Side,
    lead_qty: Decimal,
    total_ratio: Decimal,
    multipliers: Iterable[int | Decimal] = DEFAULT_MULTIPLIERS,
    *,
    after_lead: bool = True,
    depth_penalty_bps: Decimal = DEFAULT_DEPTH_PENALTY_BPS,
) -> list[ProjectedPoint]:
    """Projected slippage of the combined follower order at each AUM multiple, with the flags."""
    if lead_qty <= 0 or total_ratio <= 0:
        raise ValueError(f"lead quantity and total ratio must be positive, got {lead_qty} and {total_ratio}")
    _check_levels(book_side_levels, side)
    levels = remove_from_top(book_side_levels, lead_qty) if after_lead else list(book_side_levels)
    points = []
    for m in multipliers:
        multiple = Decimal(m)
        if multiple <= 0:
            raise ValueError(f"AUM multiples must be positive, got {m}")
        qty = lead_qty * total_ratio * multiple
        points.append(
            project(levels, ref_price, side, qty, depth_penalty_bps=depth_penalty_bps, multiple=multiple)
        )
    return points


def max_aum_for_slippage(
    book_side_levels: Sequence[Level],
    ref_price: Decimal,
    side: Side,
    lead_qty: Decimal,
    total_ratio: Decimal,
    max_bps: Decimal,
    *,
    after_lead: bool = True,
    depth_penalty_bps: Decimal = DEFAULT_DEPTH_PENALTY_BPS,
    max_multiple: Decimal = Decimal(1000),
    tolerance: Decimal = Decimal("0.001"),
) -> Decimal:
    """The largest multiple of today's AUM whose projected slippage stays at or under `max_bps`,
    found by bisection (slippage never falls as the order grows, since levels are in priority
    order). 0 when even a vanishing order breaks the limit; `max_multiple` when nothing up to it
    does. Multiply by today's AUM for a per-lead AUM cap."""
    if tolerance <= 0 or max_multiple <= 0:
        raise ValueError("tolerance and max_multiple must be positive")

    def bps_at(multiple: Decimal) -> Decimal:
        (point,) = projection(
            book_side_levels,
            ref_price,
            side,
            lead_qty,
            total_ratio,
            (multiple,),
            after_lead=after_lead,
            depth_penalty_bps=depth_penalty_bps,
        )
        return point.bps

    if bps_at(max_multiple) <= max_bps:
        return max_multiple
    if bps_at(tolerance) > max_bps:
        return ZERO
    lo, hi = tolerance, max_multiple
    while hi - lo > tolerance:
        mid = (lo + hi) / 2
        if bps_at(mid) <= max_bps:
            lo = mid
        else:
            hi = mid
    return lo


def typical_entries(fills: Iterable[FillLike], window: int) -> dict[str, Decimal]:
    """Per symbol, the median quantity of the lead's last `window` entries (fills, or the part of a
    flipping fill, that opened or added to a position)."""
    if window <= 0:
        raise ValueError(f"window must be a positive number of entries, got {window}")
    book = PositionBook()
    entries: dict[str, list[Decimal]] = {}
    for fill in fills:
        step = book.apply(fill)
        if step.opened_qty > 0:
            entries.setdefault(fill.symbol, []).append(step.opened_qty)
    return {symbol: Decimal(median(qtys[-window:])) for symbol, qtys in entries.items()}
