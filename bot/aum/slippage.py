"""Realized slippage of follower fills against the lead fill they copy, its aggregates, and fairness
of the fan-out.

Slippage is (follower average price vs lead fill price) in basis points, worse positive, as in
`bot.aum.capacity.slippage_bps`. Followers of one lead fill are sent one after another, and later ones
meet a book the earlier ones already took from: a fixed send order would make the same follower pay
the most every time. `bot.core.fanout.fanout_order` draws a fresh permutation per lead fill, and the
fairness report shows whether anyone is still systematically last.

Pure accounting in memory, `Decimal` throughout; persistence is the journal's job.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from bot.aum.capacity import slippage_bps
from bot.core.stats import percentile
from bot.core.types import ZERO, Side


@dataclass(frozen=True, slots=True)
class SlippageRecord:
    lead: str
    trigger: str  # the lead trade id the follower fill copies
    follower: str
    symbol: str
    bps: Decimal  # worse positive
    notional: Decimal  # |qty| x follower average price
    rank: int  # 1-based position in the fan-out order of this lead fill


@dataclass(frozen=True, slots=True)
class SlippageStats:
    count: int
    mean: Decimal
    weighted_mean: Decimal  # by notional; equals mean when every notional is 0
    p50: Decimal
    p90: Decimal
    max: Decimal


@dataclass(frozen=True, slots=True)
class FollowerFairness:
    follower: str
    fills: int  # lead fills shared with at least one other follower
    mean_rank: Decimal  # of its slippage among followers of the same lead fill; 1 = best
    mean_bps: Decimal
    mean_send_rank: Decimal


@dataclass(frozen=True, slots=True)
class FairnessReport:
    followers: tuple[FollowerFairness, ...]  # sorted by follower id
    spread_bps: Decimal  # max - min of per-follower mean bps


def realized_slippage_bps(side: Side, lead_price: Decimal, follower_avg_price: Decimal) -> Decimal:
    return slippage_bps(side, lead_price, follower_avg_price)


def _observed(value: Decimal | None) -> Decimal:
    assert value is not None  # summarize refuses an empty window first
    return value


def summarize(records: Iterable[SlippageRecord]) -> SlippageStats:
    rows = list(records)
    if not rows:
        raise ValueError("no slippage records to summarize")
    values = sorted(r.bps for r in rows)
    total_notional = sum((r.notional for r in rows), ZERO)
    mean = sum(values, ZERO) / len(values)
    weighted = sum((r.bps * r.notional for r in rows), ZERO) / total_notional if total_notional else mean
    return SlippageStats(
        count=len(values),
        mean=mean,
        weighted_mean=weighted,
        p50=_observed(percentile(values, Decimal("0.5"))),
        p90=_observed(percentile(values, Decimal("0.9"))),
        max=values[-1],
    )


def _ranks(values: Sequence[Decimal]) -> list[Decimal]:
    """1-based ranks, ascending; ties share the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [ZERO] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        shared = Decimal(i + j + 2) / 2
        for k in range(i, j + 1):
            ranks[order[k]] = shared
        i = j + 1
    return ranks


class SlippageBook:
    """Realized slippage records, kept in a bounded window (the most recent `max_records`)."""

    def __init__(self, max_records: int | None = 100_000) -> None:
        self._records: deque[SlippageRecord] = deque(maxlen=max_records)

    def __len__(self) -> int:
        return len(self._records)

    def add(self, record: SlippageRecord) -> None:
        self._records.append(record)

    def record_fill(
        self,
        *,
        lead: str,
        trigger: str,
        follower: str,
        symbol: str,
        side: Side,
        lead_price: Decimal,
        avg_price: Decimal,
        qty: Decimal,
        rank: int,
    ) -> SlippageRecord:
        """Record one follower fill copying the lead fill `trigger`."""
        record = SlippageRecord(
            lead=lead,
            trigger=trigger,
            follower=follower,
            symbol=symbol,
            bps=realized_slippage_bps(side, lead_price, avg_price),
            notional=abs(qty) * avg_price,
            rank=rank,
        )
        self.add(record)
        return record

    def _by(self, key: Callable[[SlippageRecord], str]) -> dict[str, SlippageStats]:
        groups: dict[str, list[SlippageRecord]] = defaultdict(list)
        for r in self._records:
            groups[key(r)].append(r)
        return {k: summarize(v) for k, v in sorted(groups.items())}

    def by_lead(self) -> dict[str, SlippageStats]:
        return self._by(lambda r: r.lead)

    def by_follower(self) -> dict[str, SlippageStats]:
        return self._by(lambda r: r.follower)

    def by_symbol(self) -> dict[str, SlippageStats]:
        return self._by(lambda r: r.symbol)

    def fairness(self, lead: str | None = None) -> FairnessReport:
        """Per follower: mean rank of its slippage among the followers of the same lead fill (fills
        with a single follower tell nothing and are skipped), mean bps and mean send position."""
        fills: dict[tuple[str, str], list[SlippageRecord]] = defaultdict(list)
        for r in self._records:
            if lead is None or r.lead == lead:
                fills[(r.lead, r.trigger)].append(r)
        rank_sum: dict[str, Decimal] = defaultdict(Decimal)
        shared: dict[str, int] = defaultdict(int)
        bps: dict[str, list[Decimal]] = defaultdict(list)
        send: dict[str, list[int]] = defaultdict(list)
        for group in fills.values():
            for r in group:
                bps[r.follower].append(r.bps)
                send[r.follower].append(r.rank)
            if len(group) < 2:
                continue
            for r, rank in zip(group, _ranks([r.bps for r in group]), strict=True):
                rank_sum[r.follower] += rank
                shared[r.follower] += 1
        rows = tuple(
            FollowerFairness(
                follower=f,
                fills=shared[f],
                mean_rank=rank_sum[f] / shared[f] if shared[f] else Decimal(1),
                mean_bps=sum(bps[f], ZERO) / len(bps[f]),
                mean_send_rank=Decimal(sum(send[f])) / len(send[f]),
            )
            for f in sorted(bps)
        )
        means = [row.mean_bps for row in rows]
        return FairnessReport(followers=rows, spread_bps=max(means) - min(means) if means else ZERO)
