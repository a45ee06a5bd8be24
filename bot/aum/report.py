"""The AUM report as JSON-ready data: amounts as decimal strings, so that nothing is rounded through
float on the way out. The running daemon's /aum (bot.service.aum_routes) and the offline report of
`copybot aum --journal` (below, from the journal file of a stopped daemon) have the same shape.

Offline, what only the running process knows is missing: the lead's equity series (returns,
drawdown), copier PnL, live projections and the realized-slippage aggregates. AUM comes from the
journal's AUM history, statistics from the lead fills it recorded, and one slippage point per filled
follower order (the lead's AUM at that time, its realized slippage).
"""

from __future__ import annotations

from dataclasses import asdict
from decimal import Decimal
from typing import Any

from bot.aum.definition import LeadRow, rank
from bot.aum.flow_report import DEFAULT_PERIOD, DEFAULT_PERIODS, flows_json
from bot.aum.slippage import realized_slippage_bps
from bot.aum.stats import lead_stats, lead_trades
from bot.journal.schema import AumPoint, SettledFill
from bot.journal.store import Journal


def jsonable(value: Any) -> Any:
    """Decimals as strings (exact), recursively; everything else as is."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def row_json(row: LeadRow) -> dict[str, Any]:
    return {k: jsonable(v) for k, v in asdict(row).items()}


def history_json(points: list[AumPoint]) -> list[list[Any]]:
    """[ts_ms, lead, aum] per history point, in time order."""
    return [[p.ts, p.lead, str(p.aum)] for p in sorted(points, key=lambda p: (p.ts, p.lead))]


def journal_report(
    journal: Journal,
    by: str,
    *,
    now_ms: int,
    source: str,
    period: str = DEFAULT_PERIOD,
    periods: int = DEFAULT_PERIODS,
) -> dict[str, Any]:
    """What `copybot aum --journal` shows, from a journal the daemon no longer writes."""
    history = journal.aum_history()
    latest: dict[str, AumPoint] = {}
    for point in sorted(history, key=lambda p: (p.ts, p.lead)):
        latest[point.lead] = point
    rows = []
    for lead, point in latest.items():
        stats = lead_stats(lead_trades(journal.lead_fills(lead)), [], now_ms)
        rows.append(LeadRow(lead=lead, aum=point.aum, followers=point.followers,
                            pnl_realized=stats.pnl_realized, win_rate=stats.win_rate,
                            trades=stats.trades))  # fmt: skip
    return {
        "ts_ms": now_ms,
        "by": by,
        "source": source,
        "leads": [{**row_json(r), "cap": None} for r in rank(rows, by)],
        "history": history_json(history),
        "slippage_points": slippage_points(journal.filled_orders(), history),
        "flows": flows_json(journal, now_ms=now_ms, period=period, most=periods),
    }


def slippage_points(fills: list[SettledFill], history: list[AumPoint]) -> list[list[str]]:
    """[lead AUM at the time, realized bps] for every filled follower order whose lead has an AUM
    history: the order's average price against its intent's reference (the lead fill price)."""
    by_lead: dict[str, list[tuple[int, Decimal]]] = {}
    for p in sorted(history, key=lambda p: (p.ts, p.lead)):
        by_lead.setdefault(p.lead, []).append((p.ts, p.aum))
    points = []
    for fill in fills:
        series = by_lead.get(fill.lead)
        if not series or fill.ref_price <= 0:
            continue
        aum = next((a for t, a in reversed(series) if t <= fill.ts), series[0][1])
        bps = realized_slippage_bps(fill.side, fill.ref_price, fill.avg_price)
        points.append([str(aum), str(bps)])
    return points
