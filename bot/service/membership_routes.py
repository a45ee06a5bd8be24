"""Control routes for followers joining and leaving at run time (bot/service/membership.py), with
the same bearer token as /control (bot/service/api.py):

    POST   /followers                  {"follower": {...a followers[] entry...}, "actor": "..."}
    PATCH  /followers/{id}             {"changes": {...keys to change...}, "actor": "..."}
    POST   /followers/{id}/pause       {"reason": "...", "actor": "..."}
    POST   /followers/{id}/resume      {"reason": "...", "actor": "..."}
    DELETE /followers/{id}             {"on_leave": "close|keep|follow_exits", "actor": "..."}
    POST   /reload                     {"actor": "..."}
    GET    /followers/changes          the journal of membership changes, who is leaving, and the
                                       lead positions each follower does not copy (open, like /status)

A refused change answers 4xx with the key path; unknown fields are refused.

In a cluster (docs/cluster.md, "Changing followers") the config file is the membership of every
shard: a shard answers 409 to the changes (add, set, pause, resume, remove) with what to do
instead, and serves `POST /reload` (what SIGHUP does, for that shard) and the journal of changes;
a feed, which serves no follower, answers 409 to all of them."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from aiohttp import web

from bot.service.auth import bearer_ok
from bot.service.membership import Membership
from bot.service.roster import RosterError

log = structlog.get_logger("copybot.api")

SHARD_REFUSAL = (
    "this is a cluster shard: its followers come from the config file, the same file in every "
    "shard, so a change through the API would hold on this shard only. Edit the file, then reload "
    "every shard: systemctl reload 'copybot-shard@*' on each host (SIGHUP; docs/cluster.md, "
    '"Changing followers")'
)
FEED_REFUSAL = (
    "this is a cluster feed: it serves no follower. Followers come from the config file of the "
    "shards: edit it, then reload every shard: systemctl reload 'copybot-shard@*' on each host "
    '(docs/cluster.md, "Changing followers")'
)

Handler = Callable[[web.Request], Awaitable[web.Response]]


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(d, default=str))


async def _body(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except json.JSONDecodeError:
        raise RosterError("body: must be JSON") from None
    if not isinstance(body, dict):
        raise RosterError("body: must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise RosterError(f"{unknown[0]}: unknown field; allowed: {', '.join(sorted(allowed))}")
    for key in ("actor", "reason", "on_leave"):
        if key in body and body[key] is not None and not isinstance(body[key], str):
            raise RosterError(f"{key}: must be a string")
    return body


def _actor(request: web.Request, body: dict[str, Any]) -> str:
    return f"api:{body.get('actor') or 'operator'}@{request.remote or '?'}"[:120]


def membership_routes(membership: Membership, token: str | None, *, role: str = "all") -> list[web.RouteDef]:
    """`role`: "all" (one process), "shard" or "feed" (a cluster role: see the module's text)."""

    def refused(why: str) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            raise RosterError(why, 409)

        return handler

    def guarded(handler: Handler) -> Handler:
        async def wrapped(request: web.Request) -> web.Response:
            if not bearer_ok(request.headers.get("Authorization", ""), token):
                log.warning("control_refused", path=request.path, remote=request.remote)
                return _json({"error": "missing or wrong bearer token"}, 401)
            try:
                return await handler(request)
            except RosterError as exc:
                return _json({"error": str(exc)}, exc.status)

        return wrapped

    async def add(request: web.Request) -> web.Response:
        body = await _body(request, {"follower", "actor"})
        if "follower" not in body:
            raise RosterError("follower: required (a followers[] entry of the config)")
        return _json(await membership.add(body["follower"], _actor(request, body)))

    async def change(request: web.Request) -> web.Response:
        body = await _body(request, {"changes", "actor"})
        fid = request.match_info["id"]
        return _json(await membership.set(fid, body.get("changes") or {}, _actor(request, body)))

    async def pause(request: web.Request) -> web.Response:
        body = await _body(request, {"reason", "actor"})
        fid = request.match_info["id"]
        return _json(await membership.pause(fid, _actor(request, body), body.get("reason")))

    async def resume(request: web.Request) -> web.Response:
        body = await _body(request, {"reason", "actor"})
        fid = request.match_info["id"]
        return _json(await membership.resume(fid, _actor(request, body), body.get("reason")))

    async def remove(request: web.Request) -> web.Response:
        body = await _body(request, {"on_leave", "actor"})
        fid = request.match_info["id"]
        return _json(await membership.remove(fid, body.get("on_leave"), _actor(request, body)))

    async def reload(request: web.Request) -> web.Response:
        body = await _body(request, {"actor"})
        return _json(await membership.reload(actor=_actor(request, body)))

    async def changes(request: web.Request) -> web.Response:
        await membership.journal.aflush()  # the journal writes in the background: read what was just done
        rows = membership.journal.membership_changes(request.query.get("follower"))
        holds = {fid: {f"{lead}:{symbol}": why for (lead, symbol), why in sorted(f.holds.items())}
                 for fid, f in membership.engine.followers.items() if f.holds}  # fmt: skip
        return _json({"changes": [{"ts": r.ts, "follower": r.follower, "action": r.action,
                                   "actor": r.actor, "detail": r.detail} for r in rows],
                      "leaving": membership.leaving, "last_reload": membership.last_reload,
                      "not_copied": holds})  # fmt: skip

    handlers: dict[str, Handler] = {"add": add, "change": change, "pause": pause, "resume": resume,
                                    "remove": remove, "reload": reload}  # fmt: skip
    if role == "shard":
        handlers |= dict.fromkeys(("add", "change", "pause", "resume", "remove"), refused(SHARD_REFUSAL))
    elif role == "feed":
        handlers = dict.fromkeys(handlers, refused(FEED_REFUSAL))
    read: Handler = guarded(refused(FEED_REFUSAL)) if role == "feed" else changes
    return [
        web.post("/followers", guarded(handlers["add"])),
        web.get("/followers/changes", read),
        web.patch("/followers/{id}", guarded(handlers["change"])),
        web.post("/followers/{id}/pause", guarded(handlers["pause"])),
        web.post("/followers/{id}/resume", guarded(handlers["resume"])),
        web.delete("/followers/{id}", guarded(handlers["remove"])),
        web.post("/reload", guarded(handlers["reload"])),
    ]
