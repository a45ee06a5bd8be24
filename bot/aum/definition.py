"""Assets under management per lead and the ranking of leads (the per-lead cap is bot.aum.cap).

Definition (also in docs/aum.md). For a lead L:

    AUM(L) = sum over followers F of L in state ACTIVE or REDUCE_ONLY of
                 min(allocation(F, L), equity(F))
             [+ the lead's own equity, when include_lead]

- equity(F) is wallet balance plus unrealized PnL at the mark (`mark_to_market`), floored at 0;
- allocation(F, L) is the follower's configured allocation to L (the `allocation` sizing mode, or an
  explicit allocation under any other mode); without one, the follower's equity split evenly among
  the leads it follows;
- HALTED or disabled followers contribute 0: their capital is not being traded by the lead.

Capping by equity marked to market means a follower that lost money counts for what it has, not for
what it once promised (the OKX definition); counting REDUCE_ONLY followers keeps a lead's AUM from
collapsing while their exits are still being copied.

Pure functions over `Decimal`; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from decimal import Decimal

from bot.core.types import ZERO, TradingState

COUNTED_STATES = frozenset({TradingState.ACTIVE, TradingState.REDUCE_ONLY})


@dataclass(frozen=True, slots=True)
class FollowerCapital:
    """One follower's capital as seen by one lead."""

    follower: str
    lead: str
    allocation: Decimal | None  # configured allocation to this lead; None = equity split evenly
    equity: Decimal  # wallet + unrealized PnL, marked to market
    state: TradingState
    leads_followed: int = 1
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class AumSnapshot:
    lead: str
    aum: Decimal
    followers: int  # followers contributing more than 0
    contributions: tuple[tuple[str, Decimal], ...]  # (follower, amount), every follower of the lead
    lead_equity: Decimal  # the lead's own equity counted (0 unless include_lead)

    def contribution(self, follower: str) -> Decimal:
        return dict(self.contributions).get(follower, ZERO)


def follower_contribution(capital: FollowerCapital) -> Decimal:
    """What one follower adds to its lead's AUM under the definition above."""
    if not capital.enabled or capital.state not in COUNTED_STATES:
        return ZERO
    equity = max(capital.equity, ZERO)
    if capital.allocation is not None:
        if capital.allocation < 0:
            raise ValueError(
                f"allocation of follower {capital.follower} to lead {capital.lead} is negative: "
                f"{capital.allocation}"
            )
        return min(capital.allocation, equity)
    if capital.leads_followed < 1:
        raise ValueError(
            f"follower {capital.follower} follows lead {capital.lead} but leads_followed is "
            f"{capital.leads_followed}"
        )
    return equity / capital.leads_followed


def lead_aum(
    lead: str,
    followers: Iterable[FollowerCapital],
    *,
    lead_equity: Decimal | None,
    include_lead: bool,
) -> AumSnapshot:
    """AUM of `lead`. Rows of other leads are ignored, so all rows may be passed at once."""
    contributions: list[tuple[str, Decimal]] = []
    seen: set[str] = set()
    for capital in followers:
        if capital.lead != lead:
            continue
        if capital.follower in seen:
            raise ValueError(f"follower {capital.follower} appears twice for lead {lead}")
        seen.add(capital.follower)
        contributions.append((capital.follower, follower_contribution(capital)))
    if include_lead and lead_equity is None:
        raise ValueError(f"include_lead is set but no equity was given for lead {lead}")
    own = max(lead_equity or ZERO, ZERO) if include_lead else ZERO
    contributions.sort()
    return AumSnapshot(
        lead=lead,
        aum=sum((amount for _, amount in contributions), own),
        followers=sum(1 for _, amount in contributions if amount > 0),
        contributions=tuple(contributions),
        lead_equity=own,
    )


def mark_to_market(
    wallet: Decimal,
    positions: Mapping[str, tuple[Decimal, Decimal]],
    marks: Mapping[str, Decimal],
) -> Decimal:
    """Wallet balance plus unrealized PnL: positions are symbol -> (signed qty in base units, entry)."""
    equity = wallet
    for symbol, (qty, entry) in positions.items():
        if qty == 0:
            continue
        mark = marks.get(symbol)
        if mark is None:
            raise ValueError(f"no mark price for {symbol}, needed to value a position of {qty}")
        equity += qty * (mark - entry)
    return equity


@dataclass(frozen=True, slots=True)
class LeadRow:
    """One line of the lead table; statistics are None when there is not enough history."""

    lead: str
    aum: Decimal
    followers: int
    return_7d: Decimal | None = None
    return_30d: Decimal | None = None
    return_90d: Decimal | None = None
    return_all: Decimal | None = None
    pnl_realized: Decimal | None = None
    pnl_unrealized: Decimal | None = None
    max_drawdown: Decimal | None = None
    win_rate: Decimal | None = None
    trades: int | None = None
    copier_pnl: Decimal | None = None
    projected_slippage_bps: Decimal | None = None


RANK_COLUMNS = tuple(f.name for f in fields(LeadRow) if f.name != "lead")
# Columns where less is better: ranked ascending so that the best lead always comes first.
ASCENDING_COLUMNS = frozenset({"max_drawdown", "projected_slippage_bps"})


def rank(rows: Sequence[LeadRow], by: str = "aum") -> list[LeadRow]:
    """Leads best first by one column: descending, except drawdown and projected slippage which rank
    ascending. Rows without a value for the column go last; ties are broken by lead id."""
    if by not in RANK_COLUMNS:
        raise ValueError(f"cannot rank leads by {by!r}; valid columns: {', '.join(RANK_COLUMNS)}")
    ascending = by in ASCENDING_COLUMNS

    def key(row: LeadRow) -> tuple[bool, Decimal, str]:
        value = getattr(row, by)
        if value is None:
            return (True, ZERO, row.lead)
        number = Decimal(value)
        return (False, number if ascending else -number, row.lead)

    return sorted(rows, key=key)
