"""What the dashboard shows, as one JSON document: /status as is (so the page's numbers are the
API's), the lead table ranked by AUM, each follower's allocation, last copy lag and realized
slippage, the timeline of recent lead fills, recent alerts, and the chart series.

Built on demand and cached briefly, so that several open pages share the work. The lead table and
the charts read more of the journal and are rebuilt less often. Copy lag and the slippage-vs-AUM
points are seen live by an engine observer and kept in memory (the slippage points are seeded once
from the journal; the lag series starts empty after a restart).
"""

from __future__ import annotations

import time
from collections import deque
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bot.aum.definition import rank
from bot.aum.flow_report import flows_json
from bot.aum.report import history_json, jsonable, row_json, slippage_points
from bot.aum.slippage import realized_slippage_bps
from bot.core.types import Decision, Intent, OrderOutcome, Reason
from bot.service.dashboard.timeline import timeline_json
from bot.service.status import snapshot

if TYPE_CHECKING:
    from bot.aum.service import AumService
    from bot.journal.store import Journal
    from bot.live.engine import Engine

STATE_TTL_S = 0.2  # pages polling together share one build
TABLE_TTL_S = 2.0  # the lead table reads every lead fill of the journal: not at the event rate
CHARTS_TTL_S = 5.0
TIMELINE_FILLS = 40
ALERTS = 30
SERIES_POINTS = 500
HISTORY_WINDOW_MS = 7 * 24 * 3600 * 1000
FLOWS_PERIOD = "1d"  # the flows block: the last day's AUM change as net flows and performance


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _thin(points: list[Any], most: int) -> list[Any]:
    """At most `most` points, evenly spread, the last one kept."""
    if len(points) <= most:
        return points
    step = len(points) / most
    return [points[int(i * step)] for i in range(most - 1)] + [points[-1]]


class DashboardState:
    """The engine observer and the builder of the dashboard's document."""

    def __init__(self, engine: Engine, aum: AumService, journal: Journal) -> None:
        self.engine = engine
        self.aum = aum
        self.journal = journal
        self.last_lag_ms: dict[str, float] = {}
        self.lags: deque[tuple[int, str, float]] = deque(maxlen=SERIES_POINTS)
        self.slippage: deque[tuple[int, str, str, str]] = deque(maxlen=SERIES_POINTS)  # ts, lead, aum, bps
        self._current_aum: dict[str, Decimal] = {}
        self._cache: dict[str, tuple[float, Any]] = {}
        self._seed()
        engine.observers.append(self)

    # -- engine observer ----------------------------------------------------------------------

    def on_decision(self, follower: str, decision: Decision) -> None:
        pass  # the timeline reads decisions from the journal

    def on_denied(self, follower: str, reason: Reason) -> None:
        pass

    def on_outcome(
        self, follower: str, intent: Intent, outcome: OrderOutcome, sent_ns: int, acked_ns: int
    ) -> None:
        now = _now_ms()
        lag = self.engine.last_copy_lag_ms  # the engine has just set it for this order
        if lag is not None:
            self.last_lag_ms[follower] = round(lag, 3)
            self.lags.append((now, follower, round(lag, 3)))
        if outcome.filled_qty > 0 and outcome.avg_price is not None and intent.ref_price > 0:
            aum = self._current_aum.get(intent.lead)
            if aum is not None:
                bps = realized_slippage_bps(intent.side, intent.ref_price, outcome.avg_price)
                self.slippage.append((now, intent.lead, str(aum), str(bps)))

    # -- the document -------------------------------------------------------------------------

    def _cached(self, key: str, ttl: float, build: Any) -> Any:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and now - hit[0] < ttl:
            return hit[1]
        value = build()
        self._cache[key] = (now, value)
        return value

    def document(self) -> dict[str, Any]:
        return dict(self._cached("state", STATE_TTL_S, self._build))

    def charts(self) -> dict[str, Any]:
        return dict(self._cached("charts", CHARTS_TTL_S, self._build_charts))

    def _followers_of(self) -> dict[str, list[str]]:
        return {lead: [f.id for f in fs] for lead, fs in self.engine.followers_of.items()}

    def _lead_table(self) -> list[dict[str, Any]]:
        now = _now_ms()
        rows = rank(self.aum.lead_rows(now_ms=now), "aum")
        self._current_aum = {r.lead: r.aum for r in rows}
        return [
            {**row_json(r), "cap": jsonable(self.aum.effective_cap(r.lead)),
             "allocations": jsonable(self.aum.allocations(r.lead))}
            for r in rows
        ]  # fmt: skip

    def _build(self) -> dict[str, Any]:
        engine = self.engine
        slippage = self.aum.slippage.by_follower()
        followers = {}
        for fid, f in engine.followers.items():
            s = slippage.get(fid)
            followers[fid] = {
                "leads": sorted(f.settings.sizings),
                "last_lag_ms": self.last_lag_ms.get(fid),
                "slippage_bps": None if s is None else {"count": s.count, "mean": str(s.mean),
                                                        "p90": str(s.p90), "max": str(s.max)},
            }  # fmt: skip
        journal = self.journal
        return {
            "ts_ms": _now_ms(),
            "status": snapshot(engine),
            "leads": self._cached("table", TABLE_TTL_S, self._lead_table),
            "flows": self._cached("flows", TABLE_TTL_S, self._flows),
            "followers": followers,
            "timeline": timeline_json(journal.copy_timeline(self._followers_of(), TIMELINE_FILLS)),
            "alerts": [{"ts": e.ts, "kind": e.kind, "subject": e.subject, "detail": e.detail}
                       for e in journal.events(limit=ALERTS) if e.kind != "stream_live"],
        }  # fmt: skip

    def _flows(self) -> dict[str, Any]:
        """Per lead: the last day's AUM change split into net flows and performance, with joins,
        leaves and churn, the retention and the latest flows (bot.aum.flow_report, as /aum)."""
        engine = self.engine
        present = {lead: [f.id for f in engine.followers_of.get(lead, ())] for lead in engine.leads}
        report = flows_json(self.journal, now_ms=_now_ms(), period=FLOWS_PERIOD, most=1, present=present,
                            live_aum=self._current_aum)  # fmt: skip
        return {lead: {"period": r["periods"][-1], "retention": r["retention"], "recent": r["recent"][-8:]}
                for lead, r in report["leads"].items()}  # fmt: skip

    def _seed(self) -> None:
        """The slippage points the journal holds when the dashboard starts; the observer adds the
        new ones."""
        journal = self.journal
        history = journal.aum_history(since=_now_ms() - HISTORY_WINDOW_MS)
        for aum, bps in slippage_points(journal.filled_orders(), history)[-SERIES_POINTS:]:
            self.slippage.append((0, "", aum, bps))

    def _build_charts(self) -> dict[str, Any]:
        now = _now_ms()
        history = history_json(self.journal.aum_history(since=now - HISTORY_WINDOW_MS))
        series: dict[str, list[list[Any]]] = {}
        for ts, lead, value in history:
            series.setdefault(lead, []).append([ts, value])
        for lead, value in self._current_aum.items():  # the live point, between history samples
            series.setdefault(lead, []).append([now, str(value)])
        return {
            "ts_ms": now,
            "aum": {lead: _thin(points, SERIES_POINTS) for lead, points in sorted(series.items())},
            "slippage_vs_aum": [[aum, bps] for _, _, aum, bps in self.slippage],
            "copy_lag": [[ts, fid, lag] for ts, fid, lag in self.lags],
        }
