"""One PNG of AUM over time per lead, of realized slippage against AUM, and of each period's AUM
change split into net flows and performance (stacked bars; docs/aum.md, "Flows and performance").

matplotlib is an optional dependency (the `plot` extra) and slow to import, so it is imported
inside the function, with the Agg backend so that no display is needed on a server.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


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


# (period end ms, period length ms, net flows, performance) per period of one lead
FlowBars = Sequence[tuple[int, int, Decimal, Decimal]]


def stacked(flows: Decimal, performance: Decimal) -> tuple[Decimal, Decimal]:
    """Where the performance bar starts: on top of the flows bar when both go the same way, else at
    0 (a gain above the axis, a loss below it); the flows bar always starts at 0."""
    same_way = (flows >= 0) == (performance >= 0)
    return Decimal(0), flows if same_way else Decimal(0)


def plot_aum(
    history: Sequence[tuple[int, str, Decimal]],
    slippage_points: Sequence[tuple[Decimal, Decimal]],
    path: str,
    flows: Mapping[str, FlowBars] | None = None,
) -> None:
    """Write a PNG to `path`: AUM over time per lead (ts_ms, lead, aum), realized slippage in bps
    against the AUM at the time (scatter with a least-squares trend line), and with `flows` each
    period's AUM change per lead as net flows and performance stacked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[int, Decimal]]] = defaultdict(list)
    for ts_ms, lead, aum in sorted(history):
        series[lead].append((ts_ms, aum))

    panels = 3 if flows is not None else 2
    fig, axes = plt.subplots(panels, 1, figsize=(10, 4 * panels))
    ax_aum, ax_slip = axes[0], axes[1]
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
        if flows is not None:
            _flow_bars(axes[2], flows)
        fig.tight_layout()
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)


def _flow_bars(ax_: Any, flows: Mapping[str, FlowBars]) -> None:
    """Per period, one pair of stacked bars per lead, side by side."""
    import matplotlib.dates as mdates

    leads = sorted(flows)
    for i, lead in enumerate(leads):
        rows = flows[lead]
        if not rows:
            continue
        width = rows[0][1] / 86_400_000 * 0.8 / len(leads)  # in days, as matplotlib dates count
        # each bar over the middle of its period
        times = [datetime.fromtimestamp((end - length / 2) / 1000, tz=UTC) for end, length, _, _ in rows]
        xs = [float(mdates.date2num(t)) - (len(leads) - 1 - 2 * i) * width / 2 for t in times]  # type: ignore[no-untyped-call]
        bottoms = [stacked(f, p) for _, _, f, p in rows]
        ax_.bar(xs, [float(f) for _, _, f, _ in rows], width=width, label=f"{lead}: net flows",
                bottom=[float(b[0]) for b in bottoms])  # fmt: skip
        ax_.bar(xs, [float(p) for _, _, _, p in rows], width=width, label=f"{lead}: performance",
                bottom=[float(b[1]) for b in bottoms], hatch="//", alpha=0.7)  # fmt: skip
    ax_.axhline(0, color="black", linewidth=0.8)
    ax_.xaxis_date()
    ax_.set_title("AUM change per period: net flows + performance")
    ax_.set_ylabel("quote currency")
    if any(flows.values()):
        ax_.legend(loc="best")
    else:
        ax_.text(0.5, 0.5, "no AUM history", ha="center", va="center", transform=ax_.transAxes)
