"""The daemon's /aum endpoint: the lead table, capacity projections, refused capital, slippage and
AUM history as one JSON report (what `copybot aum` shows). Amounts are decimal strings, so that
nothing is rounded through float on the way out.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from aiohttp import web

from bot.aum.definition import RANK_COLUMNS, rank
from bot.aum.flow_report import DEFAULT_PERIOD, DEFAULT_PERIODS, MAX_PERIODS, flows_json, parse_period
from bot.aum.report import history_json, jsonable, row_json
from bot.aum.service import AumService


def aum_report(
    aum: AumService,
    *,
    by: str = "aum",
    now_ms: int | None = None,
    period: str = DEFAULT_PERIOD,
    periods: int = DEFAULT_PERIODS,
) -> dict[str, Any]:
    """Everything `copybot aum` shows, JSON-ready (amounts as decimal strings)."""
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    ranked = rank(aum.lead_rows(now_ms=now_ms), by)
    projections = {
        lead: [
            {"symbol": c.symbol, "lead_qty": jsonable(c.lead_qty), "total_ratio": jsonable(c.total_ratio),
             "ref_price": jsonable(c.ref_price), "derived_cap": jsonable(c.cap),
             "points": {side.value: [jsonable(asdict(p)) for p in pts] for side, pts in c.points.items()}}
            for c in caps.values()
        ]
        for lead, caps in aum.capacity.items()
    }  # fmt: skip
    book = aum.slippage
    fairness = book.fairness()
    history = aum.journal.aum_history()
    return {
        "ts_ms": now_ms,
        "by": by,
        "leads": [{**row_json(r), "cap": jsonable(aum.effective_cap(r.lead))} for r in ranked],
        "projections": projections,
        "refused": [jsonable(asdict(a)) for a in aum.refused()],
        "slippage": {
            "by_lead": {k: jsonable(asdict(v)) for k, v in book.by_lead().items()},
            "by_follower": {k: jsonable(asdict(v)) for k, v in book.by_follower().items()},
            "by_symbol": {k: jsonable(asdict(v)) for k, v in book.by_symbol().items()},
        },
        "fairness": {
            "spread_bps": jsonable(fairness.spread_bps),
            "followers": [jsonable(asdict(f)) for f in fairness.followers],
        },
        "history": history_json(history)[-10_000:],
        "flows": flows_report(aum, now_ms, period, periods, {r.lead: r.aum for r in ranked}),
    }


def flows_report(
    aum: AumService, now_ms: int, period: str, periods: int, live_aum: dict[str, Any]
) -> dict[str, Any]:
    """Flows vs performance and retention per lead (bot.aum.flow_report), with the followers
    counting now and each lead's AUM now."""
    present = {lead: [f.id for f in aum.view.followers_of.get(lead, ())] for lead in aum.view.leads}
    return flows_json(aum.journal, now_ms=now_ms, period=period, most=periods, present=present,
                      live_aum=live_aum)  # fmt: skip


def aum_routes(
    aum: AumService,
    *,
    pnl: Callable[[], dict[str, Any]] | None = None,
    cluster: Callable[[], Awaitable[dict[str, Any]]] | None = None,
) -> list[web.RouteDef]:
    """`pnl`: the followers' results per lead (bot.service.status.pnl_by_lead), added as "pnl".
    `cluster`: in a cluster role, the follower capital of every shard per lead (through Redis,
    bot.service.cluster_role.cluster_aum), added as "cluster"; this process's own report stays
    beside it."""

    async def aum_handler(request: web.Request) -> web.Response:
        unknown = sorted(set(request.query) - {"by", "period", "periods"})
        if unknown:
            return web.json_response({"error": f"{unknown[0]}: unknown field; allowed: by, period, periods"},
                                     status=400)  # fmt: skip
        by = request.query.get("by", "aum")
        if by not in RANK_COLUMNS:
            return web.json_response({"error": f"unknown column {by!r}; use one of {list(RANK_COLUMNS)}"},
                                     status=400)  # fmt: skip
        period = request.query.get("period", DEFAULT_PERIOD)
        try:
            parse_period(period)
            periods = int(request.query.get("periods", DEFAULT_PERIODS))
            if not 1 <= periods <= MAX_PERIODS:
                raise ValueError
        except ValueError as exc:
            text = str(exc) or f"periods: a whole number from 1 to {MAX_PERIODS}"
            return web.json_response({"error": text}, status=400)
        await aum.journal.aflush()  # the flows of a change made a moment ago are still queued
        report = aum_report(aum, by=by, period=period, periods=periods)
        if pnl is not None:
            report["pnl"] = pnl()  # per lead: the sum over its followers, and each follower's part
        if cluster is not None:
            report["cluster"] = await cluster()
        return web.json_response(report)

    return [web.get("/aum", aum_handler)]
