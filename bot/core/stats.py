"""The one percentile of the project: nearest rank.

The q-percentile of n samples is the smallest sample with at least q of the samples at or below it,
the ceil(q x n)-th in ascending order: always an observed value, never a blend of two. The demo's
summary, the status endpoint, the benchmark report, the local exchange's benchmark script and the
realized-slippage aggregates all use it, so that a p99 means the same thing everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from decimal import Decimal
from typing import TypeVar

N = TypeVar("N", float, Decimal)


def percentile(values: Iterable[N], q: float | Decimal) -> N | None:
    """Nearest-rank percentile of `values` (any order) for q in (0, 1]; None when there are none."""
    if not 0 < q <= 1:
        raise ValueError(f"percentile: q must be in (0, 1], got {q}")
    ordered = sorted(values)
    if not ordered:
        return None
    # q through its decimal text, so that 0.29 x 100 is 29, not 28.999...
    rank = math.ceil(Decimal(str(q)) * len(ordered))
    return ordered[max(0, rank - 1)]
