"""AUM flows against performance, as pure arithmetic (docs/aum.md, "Flows and performance").

A lead's AUM moves for two reasons: capital comes and goes (a follower joins or leaves, its
allocation changes, the AUM cap clips it, it is halted or resumed), and the counted capital gains or
loses value (marks, fills, fees, funding). The first are *flows*: each is valued at its own moment,
as the change of the lead's AUM it causes with every equity held at its value then (`capital_flows`:
the follower's contribution under its old parameters and under its new ones, at the same equity).
*Performance* over a period is the rest:

    AUM(t1) - AUM(t0) = net flows in (t0, t1] + performance

where AUM(t) is the last AUM sample at or before t (0 before the first), and a sample is written at
the timestamp of every flow, so AUM(t) includes every flow at or before t. Pure functions over
`Decimal`; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any

from bot.aum.definition import COUNTED_STATES, FollowerCapital, follower_contribution
from bot.core.types import ZERO


class FlowKind(StrEnum):
    JOIN = "join"  # the follower started counting for the lead (added, or present at first start)
    LEAVE = "leave"  # it stopped (removed, leaving by its on_leave, gone from the file)
    ALLOCATION = "allocation"  # its sizing or allocation changed
    CAP = "cap"  # the lead's AUM cap admitted more or less of it
    STATE = "state"  # halted (counts 0) or resumed


@dataclass(frozen=True, slots=True)
class Flow:
    ts: int  # ms
    lead: str
    follower: str
    kind: FlowKind
    amount: Decimal  # the change of the lead's AUM: positive in, negative out
    actor: str = ""  # who caused it: "api:<who>@<addr>", "reload", "start", "daemon"
    detail: Mapping[str, Any] | None = None


Key = tuple[str, str]  # (lead, follower)
# What a follower counted for before: its capital (re-valued at the current equity), or, for the
# baseline read back from the journal at start, only the amount it counted for in the last sample.
Before = FollowerCapital | Decimal


def capital_flows(
    before: Mapping[Key, Before],
    after: Mapping[Key, FollowerCapital],
    equity: Mapping[str, Decimal],
    *,
    capped: Iterable[Key] = (),
) -> list[tuple[Key, FlowKind, Decimal]]:
    """The flows between two observations of the same moment's capital: for each (lead, follower),
    its contribution under the parameters it had before and under those it has now, both at its
    current `equity` (when known; a follower already gone keeps the equity it was last seen with).
    A join or leave is reported even at 0 (retention counts them); other kinds only when they move
    AUM. A baseline amount (a Decimal) cannot be re-valued: against it, only a follower starting or
    stopping to count is a flow, and what changed in between is performance."""
    capped = set(capped)
    out: list[tuple[Key, FlowKind, Decimal]] = []
    for key in sorted(set(before) | set(after)):
        prev, now = before.get(key), after.get(key)
        now_amount = follower_contribution(now) if now is not None else ZERO
        if prev is None:
            out.append((key, FlowKind.JOIN, now_amount))
            continue
        if isinstance(prev, Decimal):
            if now is None:
                out.append((key, FlowKind.LEAVE, -prev))
            elif (prev == 0) != (now_amount == 0):
                out.append((key, FlowKind.STATE, now_amount - prev))
            continue
        prev_amount = follower_contribution(replace(prev, equity=equity.get(key[1], prev.equity)))
        if now is None:
            out.append((key, FlowKind.LEAVE, -prev_amount))
            continue
        amount = now_amount - prev_amount
        if amount == 0:
            continue
        if (prev.state in COUNTED_STATES) != (now.state in COUNTED_STATES) or prev.enabled != now.enabled:
            kind = FlowKind.STATE
        elif key in capped:
            kind = FlowKind.CAP
        else:
            kind = FlowKind.ALLOCATION
        out.append((key, kind, amount))
    return out


def aum_at(samples: Sequence[tuple[int, Decimal]], ts: int) -> Decimal:
    """The last sample at or before `ts` (samples in time order); 0 before the first."""
    value = ZERO
    for sample_ts, aum in samples:
        if sample_ts > ts:
            break
        value = aum
    return value


@dataclass(frozen=True, slots=True)
class PeriodSplit:
    lead: str
    start_ms: int  # exclusive
    end_ms: int  # inclusive
    start_aum: Decimal
    end_aum: Decimal
    inflows: Decimal
    outflows: Decimal  # negative or 0
    performance: Decimal
    joined: int
    left: int

    @property
    def net_flows(self) -> Decimal:
        return self.inflows + self.outflows


def split(
    lead: str, samples: Sequence[tuple[int, Decimal]], flows: Sequence[Flow], start_ms: int, end_ms: int
) -> PeriodSplit:
    """AUM change of `lead` over (start_ms, end_ms] = net flows + performance (the residual).
    `samples` in time order; `flows` of any lead (others are ignored)."""
    inside = [f for f in flows if f.lead == lead and start_ms < f.ts <= end_ms]
    start, end = aum_at(samples, start_ms), aum_at(samples, end_ms)
    inflows = sum((f.amount for f in inside if f.amount > 0), ZERO)
    outflows = sum((f.amount for f in inside if f.amount < 0), ZERO)
    return PeriodSplit(
        lead=lead,
        start_ms=start_ms,
        end_ms=end_ms,
        start_aum=start,
        end_aum=end,
        inflows=inflows,
        outflows=outflows,
        performance=end - start - inflows - outflows,
        joined=sum(1 for f in inside if f.kind is FlowKind.JOIN),
        left=sum(1 for f in inside if f.kind is FlowKind.LEAVE),
    )


def periods(first_ms: int, now_ms: int, period_ms: int, most: int) -> list[tuple[int, int]]:
    """Periods of `period_ms` ending at `now_ms`, going back no further than the one holding
    `first_ms` and at most `most` of them; oldest first, as (start exclusive, end inclusive)."""
    if period_ms <= 0 or most < 1:
        raise ValueError(f"periods: period_ms and most must be positive, got {period_ms} and {most}")
    out: list[tuple[int, int]] = []
    end = now_ms
    while len(out) < most:
        out.append((end - period_ms, end))
        if end - period_ms < first_ms:
            break
        end -= period_ms
    return out[::-1]
