"""The flows-vs-performance and retention block of the AUM report, JSON-ready (amounts as decimal
strings): per lead and period, start AUM, inflows, outflows, net flows, performance, end AUM,
followers joined and left, churn; per lead, the median time followed and the latest flows. The
daemon's /aum, `copybot aum --journal`, the dashboard and the demo show this same block
(docs/aum.md, "Flows and performance", "Retention")."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, Protocol

from bot.aum.flow_tracker import flow_from_row
from bot.aum.flows import Flow, FlowKind, periods, split
from bot.aum.retention import churn, following_at, retention, spells
from bot.journal.flows import FlowRow
from bot.journal.schema import AumPoint

DEFAULT_PERIOD = "1d"
DEFAULT_PERIODS = 7
MAX_PERIODS = 366  # a year of days at most per report
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
    def aum_flows(
        self, lead: str | None = None, since: int | None = None, kinds: tuple[str, ...] | None = None
    ) -> list[FlowRow]: ...
    def aum_leads(self) -> list[str]: ...
    def aum_sample_before(self, lead: str, ts: int) -> AumPoint | None: ...
    def aum_origin(self, lead: str) -> int | None: ...


MEMBERSHIP = (FlowKind.JOIN.value, FlowKind.LEAVE.value)


def flows_json(
    journal: FlowSource,
    *,
    now_ms: int,
    period: str = DEFAULT_PERIOD,
    most: int = DEFAULT_PERIODS,
    present: Mapping[str, Iterable[str]] | None = None,
    live_aum: Mapping[str, Decimal] | None = None,
) -> dict[str, Any]:
    """Per lead (those of `present`, else every lead the journal knows): the last `most` periods of
    `period` ending now. `present` are the followers following each lead now (the running daemon;
    offline, the journal's open spells stand for them); `live_aum` each lead's AUM now, a sample at
    `now_ms` after the journal's. Reads only the window, the sample before it and the joins and
    leaves (retention), so that it stays cheap on a long journal."""
    period_ms = parse_period(period)
    earliest = now_ms - period_ms * most
    leads = sorted(present) if present is not None else journal.aum_leads()
    out: dict[str, Any] = {}
    for lead in leads:
        before = journal.aum_sample_before(lead, earliest)
        series = [(before.ts, before.aum)] if before is not None else []
        series += [(p.ts, p.aum) for p in journal.aum_history(lead, since=earliest + 1)]
        if live_aum is not None and lead in live_aum:
            series.append((now_ms, live_aum[lead]))
        window = [flow_from_row(r) for r in journal.aum_flows(lead, since=earliest + 1)]
        members = [flow_from_row(r) for r in journal.aum_flows(lead, kinds=MEMBERSHIP)]
        origin = min(journal.aum_origin(lead) or now_ms, now_ms)
        lead_spells = spells(lead, members, (present or {}).get(lead, ()), origin)
        rows = []
        for start, end in periods(origin, now_ms, period_ms, most):
            s = split(lead, series, window, start, end)
            rate = churn(lead_spells, start, end)
            then = retention(lead_spells, end).median_followed_ms
            rows.append({
                "start_ms": start, "end_ms": end, "start_aum": str(s.start_aum),
                "inflows": str(s.inflows), "outflows": str(s.outflows), "net_flows": str(s.net_flows),
                "performance": str(s.performance), "end_aum": str(s.end_aum), "joined": s.joined,
                "left": s.left, "followers_at_start": following_at(lead_spells, start),
                "churn": None if rate is None else str(rate),
                "median_followed_s": None if then is None else round(then / 1000, 1),
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
            "recent": [_flow_json(f) for f in window[-RECENT_FLOWS:]],  # the latest within the periods
        }
    return {"period": period, "period_s": period_ms // 1000, "leads": out}


def _flow_json(flow: Flow) -> dict[str, Any]:
    return {"ts_ms": flow.ts, "follower": flow.follower, "kind": flow.kind.value,
            "amount": str(flow.amount), "actor": flow.actor}  # fmt: skip
