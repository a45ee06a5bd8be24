"""One PNG of AUM over time per lead, and of realized slippage against AUM.

matplotlib is an optional dependency (the `plot` extra) and slow to import, so it is imported
inside the function, with the Agg backend so that no display is needed on a server.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal


def trend_line(points: Sequence[tuple[Decimal, Decimal]]) -> tuple[Decimal, Decimal] | None:
    """Least-squares (slope, intercept) of y on x; None with fewer than two distinct x."""
    n = len(points)
    if n < 2:
        return None
    mean_x = sum((x for x, _ in points), Decimal(0)) / n
    mean_y = sum((y for _, y in points), Decimal(0)) / n
    sxx = sum(((x - mean_x) ** 2 for x, _ in points), Decimal(0))
    if sxx == 0:
        return None
    sxy = sum(((x - mean_x) * (y - mean_y) for x, y in points), Decimal(0))
    slope = sxy / sxx
    return slope, mean_y - slope * mean_x


def plot_aum(
    history: Sequence[tuple[int, str, Decimal]],
    slippage_points: Sequence[tuple[Decimal, Decimal]],
    path: str,
) -> None:
    """Write a PNG to `path`: AUM over time per lead (ts_ms, lead, aum), and realized slippage in bps
    against the AUM at the time (scatter with a least-squares trend line)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[int, Decimal]]] = defaultdict(list)
    for ts_ms, lead, aum in sorted(history):
        series[lead].append((ts_ms, aum))

    fig, (ax_aum, ax_slip) = plt.subplots(2, 1, figsize=(10, 8))
    try:
        # Floats only from here on: they are pixel positions, not amounts.
        for lead, rows in sorted(series.items()):
            times = [datetime.fromtimestamp(ts / 1000, tz=UTC) for ts, _ in rows]
            ax_aum.plot(times, [float(a) for _, a in rows], label=lead)
        ax_aum.set_title("AUM per lead")
        ax_aum.set_ylabel("AUM (quote currency)")
        if series:
            ax_aum.legend(loc="best")
        else:
            ax_aum.text(0.5, 0.5, "no AUM history", ha="center", va="center", transform=ax_aum.transAxes)

        xs = [float(a) for a, _ in slippage_points]
        ax_slip.scatter(xs, [float(b) for _, b in slippage_points], s=10, alpha=0.6, label="follower fills")
        fit = trend_line(slippage_points)
        if fit is not None:
            slope, intercept = fit
            lo = min(a for a, _ in slippage_points)
            hi = max(a for a, _ in slippage_points)
            ax_slip.plot(
                [float(lo), float(hi)],
                [float(intercept + slope * lo), float(intercept + slope * hi)],
                color="red",
                label=f"trend: {float(slope * 1_000_000):.3g} bps per 1M AUM",
            )
        ax_slip.set_title("Realized slippage against AUM")
        ax_slip.set_xlabel("lead AUM at the fill")
        ax_slip.set_ylabel("slippage (bps, worse positive)")
        if slippage_points:
            ax_slip.legend(loc="best")
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
