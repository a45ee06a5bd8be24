"""Who may call the API: the bearer token of control calls, and whether the API listens beyond
loopback (then every route but the dashboard's empty page needs the token; docs/config.md, api)."""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware


def bearer_ok(header: str, token: str | None) -> bool:
    """`header` is the request's Authorization value; no configured token refuses everything."""
    if not token:
        return False
    return hmac.compare_digest(header.encode(), f"Bearer {token}".encode())


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost: it may resolve anywhere
        return False


# The dashboard's page and its static files hold no data (a browser cannot send a header when it
# opens a page); the page asks for the token before it reads anything (docs/dashboard.md).
PUBLIC_PATHS = ("/", "/dashboard")
PUBLIC_PREFIXES = ("/dashboard/static/",)


def reads_need_token(token: str | None, host: str) -> Middleware:
    """Beyond loopback every route needs the token, reads included: status, positions, balances
    and metrics are private (docs/config.md, api). On loopback reads stay open."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        path = request.path
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        if (
            not public
            and not is_loopback(host)
            and not bearer_ok(request.headers.get("Authorization", ""), token)
        ):
            return web.json_response(
                {"error": "the API listens beyond loopback: every route needs Authorization: Bearer <token>"},
                status=401,
            )
        return await handler(request)

    return guard
