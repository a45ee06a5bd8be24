"""The flows-vs-performance and retention block of the AUM report, JSON-ready (amounts as decimal
strings): per lead and period, start AUM, inflows, outflows, net flows, performance, end AUM,
followers joined and left, churn; per lead, the median time followed and the latest flows. The
daemon's /aum, `copybot aum --journal`, the dashboard and the demo show this same block
(docs/aum.md, "Flows and performance", "Retention")."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from bot.aum.flow_tracker import flow_from_row
from bot.aum.flows import Flow, periods, split
from bot.aum.retention import churn, following_at, retention, spells
from bot.journal.flows import FlowRow
from bot.journal.schema import AumPoint

DEFAULT_PERIOD = "1d"
DEFAULT_PERIODS = 7
RECENT_FLOWS = 20
_UNITS_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
_PERIOD = re.compile(r"^([1-9][0-9]{0,5})([smhdw])$")


def parse_period(text: str) -> int:
    """A period as "30s", "15m", "4h", "1d", "7d" or "2w", in milliseconds; ValueError otherwise."""
    match = _PERIOD.match(text.strip())
    if match is None:
        raise ValueError(f"period {text!r}: use a number and a unit, s m h d or w (e.g. 1d, 7d, 4h)")
    return int(match.group(1)) * _UNITS_S[match.group(2)] * 1000


class FlowSource(Protocol):
    def aum_history(self, lead: str | None = None, since: int | None = None) -> list[AumPoint]: ...
    def aum_flows(self, lead: str | None = None, since: int | None = None) -> list[FlowRow]: ...


def flows_json(
    journal: FlowSource,
    *,
    now_ms: int,
    period: str = DEFAULT_PERIOD,
    most: int = DEFAULT_PERIODS,
    present: Mapping[str, Iterable[str]] | None = None,
    live_aum: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Per lead (those with a history or flows, and those of `present`): the last `most` periods of
    `period` ending now. `present` are the followers following each lead now (the running daemon;
    offline, the journal's open spells stand for them); `live_aum` each lead's AUM now, a sample at
    `now_ms` after the journal's."""
    period_ms = parse_period(period)
    history = journal.aum_history()
    flows = [flow_from_row(r) for r in journal.aum_flows()]
    samples: dict[str, list[tuple[int, Any]]] = {}
    for p in history:
        samples.setdefault(p.lead, []).append((p.ts, p.aum))
    for lead, value in (live_aum or {}).items():
        samples.setdefault(lead, []).append((now_ms, value))
    leads = sorted(set(samples) | {f.lead for f in flows} | set(present or {}))
    out: dict[str, Any] = {}
    for lead in leads:
        lead_flows = [f for f in flows if f.lead == lead]
        series = samples.get(lead, [])
        origin = min([t for t, _ in series[:1]] + [f.ts for f in lead_flows[:1]] + [now_ms])
        lead_spells = spells(lead, lead_flows, (present or {}).get(lead, ()), origin)
        rows = []
        for start, end in periods(origin, now_ms, period_ms, most):
            s = split(lead, series, lead_flows, start, end)
            rate = churn(lead_spells, start, end)
            rows.append({
                "start_ms": start, "end_ms": end, "start_aum": str(s.start_aum),
                "inflows": str(s.inflows), "outflows": str(s.outflows), "net_flows": str(s.net_flows),
                "performance": str(s.performance), "end_aum": str(s.end_aum), "joined": s.joined,
                "left": s.left, "followers_at_start": following_at(lead_spells, start),
                "churn": None if rate is None else str(rate),
            })  # fmt: skip
        kept = retention(lead_spells, now_ms)
        median = kept.median_followed_ms
        out[lead] = {
            "periods": rows,
            "retention": {
                "following": kept.following,
                "spells": kept.spells,
                "censored": kept.censored,
                "median_followed_s": None if median is None else round(median / 1000, 1),
            },
            "recent": [_flow_json(f) for f in lead_flows[-RECENT_FLOWS:]],
        }
    return {"period": period, "period_s": period_ms // 1000, "leads": out}


def _flow_json(flow: Flow) -> dict[str, Any]:
    return {"ts_ms": flow.ts, "follower": flow.follower, "kind": flow.kind.value,
            "amount": str(flow.amount), "actor": flow.actor}  # fmt: skip
