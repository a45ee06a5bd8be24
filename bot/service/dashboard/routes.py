"""The dashboard on the daemon's own HTTP server (docs/dashboard.md).

- `GET /dashboard` and `/dashboard/static/<file>`: the page, plain HTML, CSS and JS from the
  package. They carry no data, so they load without the token on any host (the page asks for it).
- `GET /dashboard/state`: the whole document at once (bot.service.dashboard.state).
- `GET /dashboard/events`: server-sent events; `state` when anything shown changed (at most every
  MIN_INTERVAL_S, and at least every REFRESH_S as a heartbeat), `charts` when the series were
  rebuilt. Every `state` event is the complete document, so a page that reconnects is in sync with
  its first event.

The data routes follow the API's rule for the host it listens on: open on loopback, the bearer
token on any other address. Control stays on `/control/<action>` (bot.service.api), token always.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from importlib import resources
from typing import TYPE_CHECKING, Any

import structlog
from aiohttp import web

from bot.service.auth import bearer_ok, is_loopback
from bot.service.dashboard.state import DashboardState

if TYPE_CHECKING:
    from bot.aum.service import AumService
    from bot.journal.store import Journal
    from bot.live.engine import Engine

log = structlog.get_logger("copybot.dashboard")

MIN_INTERVAL_S = 0.25  # at most four state events a second per page, changes coalesced
REFRESH_S = 5.0
# The page runs only its own script and style, talks only to this server and is framed by nobody.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
_STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
STATIC_FILES = ("dashboard.js", "charts.js", "dashboard.css", "icon.svg")


def _asset(name: str) -> bytes:
    return (resources.files(__package__) / "static" / name).read_bytes()


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=str))


def _frame(event: str, seq: int, data: Any) -> bytes:
    # json.dumps escapes newlines inside strings, so the data is one line as SSE requires.
    return f"event: {event}\nid: {seq}\ndata: {json.dumps(data, default=str)}\n\n".encode()


def _signature(doc: dict[str, Any]) -> str:
    """The document without what moves by itself (clocks, stream ages): a change here is news."""
    status = doc["status"]
    leads = {k: {**v, "stream": {**v["stream"], "age_s": None}} for k, v in status["leads"].items()}
    return json.dumps({**doc, "ts_ms": None, "status": {**status, "uptime_s": None, "leads": leads}},
                      default=str)  # fmt: skip


async def add_security_headers(_: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


def install_dashboard(
    app: web.Application, engine: Engine, aum: AumService, journal: Journal, *, token: str | None, host: str
) -> DashboardState:
    state = DashboardState(engine, aum, journal)
    closing = asyncio.Event()  # set when the server shuts down: every open stream ends at once
    reads_need_token = not is_loopback(host)
    page = _asset("index.html")
    assets = {name: _asset(name) for name in STATIC_FILES}

    def refused(request: web.Request, *, data: bool) -> web.Response | None:
        if request.query:
            return _json({"error": f"unknown query field(s) {sorted(request.query)}: this route takes none"},
                         400)  # fmt: skip
        if data and reads_need_token and not bearer_ok(request.headers.get("Authorization", ""), token):
            return _json(
                {"error": "the API listens beyond loopback: send Authorization: Bearer <token>"}, 401
            )
        return None

    async def index(request: web.Request) -> web.Response:
        return refused(request, data=False) or web.Response(body=page, content_type="text/html",
                                                             charset="utf-8")  # fmt: skip

    async def root(request: web.Request) -> web.Response:
        raise web.HTTPFound("/dashboard")

    async def static(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in assets:
            return _json({"error": f"no such file {name!r}"}, 404)
        return refused(request, data=False) or web.Response(
            body=assets[name], content_type=_STATIC_TYPES["." + name.rsplit(".", 1)[-1]], charset="utf-8"
        )

    async def document(request: web.Request) -> web.Response:
        refusal = refused(request, data=True)
        if refusal is not None:
            return refusal
        try:
            body = {**state.document(), "charts": state.charts(), "reads_need_token": reads_need_token}
        except Exception as exc:  # the daemon is stopping (journal closed) or a read failed
            log.warning("dashboard_state_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            return _json({"error": "the dashboard's data is not available now; try again"}, 503)
        return _json(body)

    async def events(request: web.Request) -> web.StreamResponse:
        refusal = refused(request, data=True)
        if refusal is not None:
            return refusal
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        try:
            await _stream(response)
        except ConnectionResetError:  # the page went away
            pass
        except Exception as exc:  # a failed build ends this stream; the page reconnects
            log.warning("dashboard_stream_failed", error=f"{type(exc).__name__}: {exc}"[:300])
        return response

    async def _stream(response: web.StreamResponse) -> None:
        seq, sent_sig, sent_at, charts_ts = 0, "", 0.0, None
        while not closing.is_set():
            doc, now = state.document(), time.monotonic()
            sig = _signature(doc)
            if sig != sent_sig or now - sent_at >= REFRESH_S:
                seq += 1
                await response.write(_frame("state", seq, doc))
                sent_sig, sent_at = sig, now
            charts = state.charts()
            if charts["ts_ms"] != charts_ts:
                seq += 1
                await response.write(_frame("charts", seq, charts))
                charts_ts = charts["ts_ms"]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(closing.wait(), MIN_INTERVAL_S)

    async def on_shutdown(_: web.Application) -> None:
        closing.set()

    app.on_shutdown.append(on_shutdown)
    app.on_response_prepare.append(add_security_headers)
    app.router.add_get("/", root)
    app.router.add_get("/dashboard", index)
    app.router.add_get("/dashboard/static/{name}", static)
    app.router.add_get("/dashboard/state", document)
    app.router.add_get("/dashboard/events", events)
    return state
