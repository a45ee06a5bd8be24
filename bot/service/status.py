"""The engine's state as plain JSON-able data: the /status endpoint, the demo and the tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bot.core.planner import plan_legs
from bot.core.rounding import shown
from bot.core.stats import percentile
from bot.core.types import ZERO
from bot.live.lead_view import follower_symbols

if TYPE_CHECKING:
    from bot.live.engine import Engine


def follower_positions(engine: Engine, follower_id: str) -> dict[str, dict[str, Any]]:
    follower = engine.followers[follower_id]
    symbols = set(follower.confirmed)
    for lead in follower.settings.sizings:
        symbols |= follower_symbols(follower, lead, engine.leads[lead].positions)
    out: dict[str, dict[str, Any]] = {}
    for symbol in sorted(symbols):
        market = follower.markets.get(symbol)
        if market is None:
            continue
        target, clip = follower.target(symbol)
        position = follower.own(symbol)  # copybot's own quantity: the owner's is not its target's
        manual = follower.manual.manual(symbol)
        match = abs(target - position) < market.step
        residual = None
        if not match:
            # An entry difference below the venue minimum cannot be placed; it waits (planner).
            plan = plan_legs(target, position, market, follower.engine.mark(symbol) or ZERO)
            residual = plan.deferred if not plan.legs else None
        out[symbol] = {
            # The account's position; "own" is copybot's part of it, "manual" the owner's
            # (docs/config.md, "Manual trades in a follower's account").
            "position": shown(position + manual, market.step),  # the venue's lot precision, never "-0"
            "own": shown(position, market.step),
            "manual": shown(manual, market.step),
            "target": shown(target, market.step),
            "match": match,
            "residual_below_min": residual,
            "clipped": clip.text if clip else None,
        }
    return out


def follower_mark(engine: Engine, follower_id: str) -> Callable[[str], Decimal | None]:
    """A follower symbol's mark: its own venue's feed first, then the shared price."""
    venue = engine.cfg.follower(follower_id).venue
    return lambda symbol: engine.venue_mark(venue, symbol) or engine.mark(symbol)


def snapshot(engine: Engine) -> dict[str, Any]:
    leads = {}
    for lead_id, lead in engine.leads.items():
        feed = engine.feeds.get(lead_id)
        age = feed.freshness_s() if feed else None
        leads[lead_id] = {
            "equity": str(lead.equity),
            "positions": {s: str(q) for s, q in sorted(lead.positions.items())},
            "fills": lead.fills,
            "stream": {
                "live": bool(feed and feed.live),
                "age_s": round(age, 3) if age is not None else None,
                "fresh": bool(feed and feed.is_fresh()),
                "sessions": feed.sessions if feed else 0,
                "reconnects": feed.reconnects if feed else 0,
                "last_error": feed.last_error if feed else None,
            },
            "followers": [f.id for f in engine.followers_of.get(lead_id, [])],
        }
    followers = {}
    now = time.time()
    for follower_id, f in engine.followers.items():
        followers[follower_id] = {
            "state": f.state.value,
            "state_code": f.standing.code.value,
            "reason": f.state_reason or None,
            "equity": str(f.balance.equity),
            # equity is marked to market between account reads (bot.live.work.Balance): how old the read is
            "equity_read_age_s": round(now - f.balance.read_ms / 1000, 1) if f.balance.read_ms else None,
            "queue": f.queue.qsize(),
            "busy": f.busy,
            "orders_sent": f.orders_sent,
            "needs_resync": f.needs_resync,
            "positions": follower_positions(engine, follower_id),
            # its own results per lead and window (bot.live.pnl, docs/pnl.md)
            "pnl": engine.pnl.report(f, follower_mark(engine, follower_id)),
            # take-profit / stop-loss orders resting at the venue (bot/live/protect.py)
            "tpsl": {
                symbol: {
                    k: {
                        "trigger_price": str(o.trigger_price),
                        "qty": str(o.qty),
                        "client_order_id": o.client_order_id,
                    }
                    for k, o in sorted(kinds.items())
                }
                for symbol, kinds in sorted(f.protected.items())
            },
        }
    marks = {
        venue: feed.status() | {"marks": {s: str(p) for s, p in sorted(feed.marks.items())}}
        for venue, feed in engine.mark_feeds.items()
    }
    lags = list(engine.internal_lag_ms)

    def pct(q: float) -> float | None:
        value = percentile(lags, q)
        return None if value is None else round(value, 3)

    return {
        "internal_lag_ms": {"p50": pct(0.5), "p99": pct(0.99), "max": pct(1.0), "samples": len(lags)},
        # lead fill -> follower order per "lead venue->follower venue", each venue's time turned
        # into local time by its measured clock offset (bot.live.copy_lag)
        "copy_lag_ms_by_venue": engine.lags.pair_summary(),
        "state": engine.state.value,
        "state_code": engine.states.global_standing.code.value,
        "state_reason": engine.state_reason or None,
        "workers": engine.supervisor.report(),
        "kill_switch": engine.kill_switch(),
        "ready": engine.ready.is_set(),
        "uptime_s": round(time.time() - engine.started_at, 1),
        "leads": leads,
        "followers": followers,
        "marks": marks,
        # Request weight per source address, one per venue (`source_address`: null when the system
        # chooses it), as bot.live.budget counts it.
        "venues": {
            name: {"source_address": v.source_address, "request_budget": v.budget.snapshot()}
            for name, v in engine.venues.items()
        },
    }


def pnl_by_lead(engine: Engine) -> dict[str, Any]:
    """/aum's results block: per lead, each follower's results with that lead and their sum, per
    window (realized, fees, funding, slippage, net) and unrealized now (docs/pnl.md)."""
    out: dict[str, Any] = {}
    for lead_id in engine.leads:
        per_follower: dict[str, Any] = {}
        for follower in engine.followers_of.get(lead_id, []):
            report = engine.pnl.report(follower, follower_mark(engine, follower.id))
            part = report["leads"].get(lead_id)
            if part is not None:
                per_follower[follower.id] = part
        windows: dict[str, dict[str, Any]] = {}
        for part in per_follower.values():
            for span, totals in part["windows"].items():
                into = windows.setdefault(span, {})
                for key, value in totals.items():
                    into[key] = _add(into.get(key), value)
        unrealized = sum((Decimal(p["unrealized"]) for p in per_follower.values()), ZERO)
        out[lead_id] = {"unrealized": str(unrealized), "windows": windows, "followers": per_follower}
    return out


def _add(total: Any, value: Any) -> Any:
    if isinstance(value, int):
        return (total or 0) + value
    return str(Decimal(total or "0") + Decimal(value))
