"""HTTP status, metrics and control API (aiohttp), bound to loopback by default, and the
dashboard (bot.service.dashboard, docs/dashboard.md).

Control (halt, reduce-only, resume) needs `Authorization: Bearer <token>` with the token from a
credential; without a configured token the control endpoints refuse everything with 403 (control
disabled), distinct from the 401 of a missing or wrong token. Reads are open on loopback; beyond it
every route needs the token too (bot.service.auth.reads_need_token)."""

from __future__ import annotations

import asyncio
import json
from functools import partial
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from bot.core.errors import short
from bot.core.redaction import redact_text
from bot.core.types import TradingState
from bot.live import budget_metrics
from bot.service.aum_routes import aum_routes
from bot.service.auth import bearer_ok, reads_need_token
from bot.service.dashboard import install_dashboard
from bot.service.membership_routes import membership_routes
from bot.service.status import follower_mark, pnl_by_lead, snapshot

if TYPE_CHECKING:
    from bot.aum.service import AumService
    from bot.journal.store import Journal
    from bot.live.engine import Engine
    from bot.service.cluster_role import ClusterRole
    from bot.service.membership import Membership

log = structlog.get_logger("copybot.api")

_ACTIONS = {
    "halt": TradingState.HALTED,
    "reduce-only": TradingState.REDUCE_ONLY,
    "resume": TradingState.ACTIVE,
}


CONTROL_DISABLED = (
    "control is disabled: the daemon has no api.token configured (docs/config.md, api); "
    "set one and restart it to use halt, reduce-only and resume"
)
_CONTROL_FIELDS = frozenset({"follower", "reason"})


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=str))


def build_app(
    engine: Engine,
    aum: AumService,
    token: str | None,
    *,
    journal: Journal,
    host: str = "127.0.0.1",
    membership: Membership | None = None,
    cluster: ClusterRole | None = None,
) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return _json({"ok": True})

    async def readyz(_: web.Request) -> web.Response:
        stale = [lead for lead, feed in engine.feeds.items() if not feed.is_fresh()]
        dead, failing = engine.supervisor.dead(), engine.supervisor.failing()
        ready = engine.ready.is_set() and not stale and not engine.stopping and not dead and not failing
        body: dict[str, Any] = {
            "ready": ready,
            "stale_streams": stale,
            "dead_workers": dead,
            "failing_workers": failing,
            "stopping": engine.stopping,
        }
        if cluster is not None:
            body["role"] = cluster.role
            try:
                await asyncio.wait_for(cluster.client.ping(), 1.0)
            except Exception as exc:  # Redis unreachable: nothing is published or consumed
                body["ready"] = ready = False
                body["redis_error"] = redact_text(short(exc))
        return _json(body, 200 if ready else 503)

    async def metrics(_: web.Request) -> web.Response:
        for lead, feed in engine.feeds.items():
            age = feed.freshness_s()
            engine.metrics.stream_fresh.labels(lead).set(age if age is not None else float("inf"))
        for fid, f in engine.followers.items():
            for state in TradingState:
                engine.metrics.follower_state.labels(fid, state.value).set(1 if f.state is state else 0)
            engine.pnl.refresh_metrics(f, follower_mark(engine, fid))  # unrealized PnL at the marks
        if cluster is not None:
            await _cluster_view(cluster)  # updates the cluster gauges
        return web.Response(body=engine.metrics.render(), content_type="text/plain", charset="utf-8")

    async def status(_: web.Request) -> web.Response:
        body = snapshot(engine)
        if cluster is not None:
            body["cluster"] = await _cluster_view(cluster)
        return _json(body)

    async def control(request: web.Request) -> web.Response:
        action = request.match_info["action"]
        if action not in _ACTIONS:
            return _json({"error": f"unknown action {action!r}; use one of {sorted(_ACTIONS)}"}, 404)
        if not token:
            log.warning("control_refused", action=action, remote=request.remote, why="no api.token")
            return _json({"error": CONTROL_DISABLED}, 403)
        if not bearer_ok(request.headers.get("Authorization", ""), token):
            log.warning("control_refused", action=action, remote=request.remote)
            return _json({"error": "missing or wrong bearer token"}, 401)
        try:
            body = await request.json() if request.can_read_body else {}
        except json.JSONDecodeError:
            return _json({"error": "body must be JSON"}, 400)
        if not isinstance(body, dict):
            return _json({"error": "body must be a JSON object"}, 400)
        if unknown := sorted(set(body) - _CONTROL_FIELDS):
            return _json({"error": f"unknown field(s) {unknown}: use {sorted(_CONTROL_FIELDS)}"}, 400)
        if any(body.get(k) is not None and not isinstance(body[k], str) for k in _CONTROL_FIELDS):
            return _json({"error": "follower and reason must be strings"}, 400)
        follower = body.get("follower")
        reason = body.get("reason") or f"operator: {action}"
        if follower is not None and follower not in engine.followers:
            return _json({"error": f"unknown follower {follower!r}"}, 404)
        engine.set_state(_ACTIONS[action], f"operator: {reason}", follower)
        return _json({"ok": True, "action": action, "follower": follower, "state": _ACTIONS[action].value})

    app = web.Application(middlewares=[reads_need_token(token, host)])
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    budget_metrics.install(engine.metrics.registry, lambda: engine.venues)
    app.router.add_get("/status", status)
    app.router.add_post("/control/{action}", control)
    shards_aum = None if cluster is None else partial(_cluster_aum, cluster)
    app.router.add_routes(aum_routes(aum, pnl=lambda: pnl_by_lead(engine), cluster=shards_aum))
    install_dashboard(app, engine, aum, journal, token=token, host=host)
    if membership is not None:  # followers joining and leaving at run time (same token)
        role = "all" if cluster is None else cluster.role
        app.router.add_routes(membership_routes(membership, token, role=role))
    return app


async def start_api(
    engine: Engine,
    aum: AumService,
    host: str,
    port: int,
    token: str | None,
    *,
    journal: Journal,
    membership: Membership | None = None,
    cluster: ClusterRole | None = None,
) -> web.AppRunner:
    app = build_app(engine, aum, token, journal=journal, host=host, membership=membership, cluster=cluster)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner


async def _cluster_view(cluster: ClusterRole) -> dict[str, Any]:
    """The cluster view, or what kept Redis from answering (status must answer either way)."""
    try:
        return await cluster.view()
    except Exception as exc:
        return {"role": cluster.role, "error": redact_text(short(exc))}


async def _cluster_aum(cluster: ClusterRole) -> dict[str, Any]:
    view = await _cluster_view(cluster)
    return {"error": view["error"]} if "error" in view else {"aum": view.get("aum", {})}


def bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:  # (host, port) for TCP sites, (host, port, flow, scope) on IPv6
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("API not listening")
