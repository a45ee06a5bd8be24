"""Follower retention per lead, from the join and leave flows (bot.aum.flows): how long followers
stay, and how many of them leave per period (docs/aum.md, "Retention").

- A *spell* is one stretch of following: from a join to the next leave. A leave with no join before
  it in the flows (the follower was there before flows were recorded) starts at `origin_ms`, the
  first thing the journal knows of the lead; so does a follower following now with no join.
- Median time followed: the nearest-rank median (bot.core.stats) of the spells' lengths, an open
  spell (a follower still following) counted up to now. Such a spell is right-censored: its true
  length is at least that, so while followers are still following the median is a lower bound; the
  number of censored spells is reported beside it.
- Churn of a period (t0, t1]: leaves in the period over the followers following at t0; undefined
  (None) when nobody followed at t0. Every leave counts, that of a follower who joined within the
  period too, so churn can exceed 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from bot.aum.flows import Flow, FlowKind
from bot.core.stats import percentile


@dataclass(frozen=True, slots=True)
class Spell:
    follower: str
    start_ms: int
    end_ms: int | None  # None: still following


def spells(lead: str, flows: Sequence[Flow], present: Iterable[str], origin_ms: int) -> list[Spell]:
    """The spells of `lead`'s followers from its flows in time order; `present` are the followers
    following it now (an open spell is made for any that has none)."""
    open_: dict[str, int] = {}
    out: list[Spell] = []
    for flow in sorted((f for f in flows if f.lead == lead), key=lambda f: f.ts):
        if flow.kind is FlowKind.JOIN:
            open_.setdefault(flow.follower, flow.ts)
        elif flow.kind is FlowKind.LEAVE:
            out.append(Spell(flow.follower, open_.pop(flow.follower, origin_ms), flow.ts))
    for follower in present:
        open_.setdefault(follower, origin_ms)
    out += [Spell(f, start, None) for f, start in sorted(open_.items())]
    return out


@dataclass(frozen=True, slots=True)
class Retention:
    following: int  # open spells now
    spells: int
    censored: int  # open spells: counted up to now
    median_followed_ms: int | None


def retention(all_spells: Sequence[Spell], now_ms: int) -> Retention:
    """Retention as of `now_ms` (the end of a period, or now): spells started later are not
    counted, those ending later are open then (censored at `now_ms`)."""
    known = [s for s in all_spells if s.start_ms <= now_ms]
    open_then = [s.end_ms is None or s.end_ms > now_ms for s in known]
    lengths = [
        Decimal((now_ms if still else s.end_ms or now_ms) - s.start_ms)
        for s, still in zip(known, open_then, strict=True)
    ]
    censored = sum(open_then)
    median = percentile(lengths, 0.5)
    return Retention(censored, len(known), censored, None if median is None else int(median))


def following_at(all_spells: Sequence[Spell], ts: int) -> int:
    """Followers following at `ts`: joined at or before it, not left by then."""
    return sum(1 for s in all_spells if s.start_ms <= ts and (s.end_ms is None or s.end_ms > ts))


def churn(all_spells: Sequence[Spell], start_ms: int, end_ms: int) -> Decimal | None:
    """Leaves in (start_ms, end_ms] over the followers following at start_ms."""
    at_start = following_at(all_spells, start_ms)
    if at_start == 0:
        return None
    leaves = sum(1 for s in all_spells if s.end_ms is not None and start_ms < s.end_ms <= end_ms)
    return Decimal(leaves) / Decimal(at_start)
