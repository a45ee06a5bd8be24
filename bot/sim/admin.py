"""Admin API of the local exchange (JSON on the REST host, under /_sim): accounts, prices, the book,
fault injection and rate-limit state. Not part of Binance's protocol; tests, the demo and the
benchmark use it. Its routes are not charged any request weight."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from aiohttp import web

from bot.sim.accounts import Account
from bot.sim.faults import Faults
from bot.sim.jsonfast import dumps
from bot.sim.limits import Limits
from bot.sim.marketstream import PublicStreams
from bot.sim.matching import MatchingEngine
from bot.sim.userstream import UserStream
from bot.sim.wire import admin_order_json, admin_trade_json, algo_json, s


class Sockets(Protocol):
    def drop(self, api_key: str | None = None) -> int: ...
    def stall(self, seconds: float, api_key: str | None = None) -> int: ...


class VenueStream(Sockets, Protocol):
    @property
    def public(self) -> PublicStreams: ...
    def close_account(self, api_key: str) -> int: ...


class VenueHooks(Protocol):
    """What the admin API needs of a personality other than Binance (e.g. `BybitHost`)."""

    @property
    def faults(self) -> Faults: ...
    @property
    def stream(self) -> VenueStream: ...


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=dumps(data), status=status, content_type="application/json")


def _bad(msg: str, status: int = 400) -> web.Response:
    return _json({"error": msg}, status)


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        data = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(
            text='{"error": "body must be JSON"}', content_type="application/json"
        ) from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(
            text='{"error": "body must be a JSON object"}', content_type="application/json"
        )
    return data


def account_summary(engine: MatchingEngine, account: Account, since_ns: int = 0) -> dict[str, Any]:
    marks = engine.marks()
    return {
        "api_key": account.api_key,
        "name": account.name,
        "venue": account.venue,
        "revoked": account.revoked,
        "withdrawals_enabled": account.withdrawals_enabled,
        "balance": s(account.wallet),
        "available": s(account.available(marks)),
        "positions": [
            {
                "symbol": symbol,
                "positionAmt": s(pos.amt),
                "entryPrice": s(pos.entry_price),
                "unRealizedProfit": s(pos.unrealized(marks[symbol])),
                "leverage": account.leverage_of(symbol),
            }
            for symbol, pos in account.positions.items()
            if pos.amt
        ],
        "orders": [admin_order_json(o) for o in account.orders.values() if o.recv_time_ns >= since_ns],
        "trades": [admin_trade_json(t) for t in account.trades if t.time_ns >= since_ns],
        "fundings": [
            {
                "symbol": f.symbol,
                "position": s(f.position_amt),
                "mark": s(f.mark),
                "rate": s(f.rate),
                "amount": s(f.amount),
                "time": f.time_ms,
            }
            for f in account.fundings
        ],  # fmt: skip
        # conditional orders (bot.sim.conditional), in Binance's algo shape whatever the venue
        "conditional": [algo_json(c) for c in engine.conditionals.of(account).values()],
    }


def admin_routes(
    engine: MatchingEngine,
    stream: UserStream,
    faults: Faults,
    limits: Limits,
    venues: Mapping[str, VenueHooks] | None = None,
) -> list[web.RouteDef]:
    """`venues`: the other personalities served (e.g. {"bybit": host}); Binance is `stream`/`faults`."""
    routes = web.RouteTableDef()
    others = dict(venues or {})

    @routes.post("/_sim/accounts")
    async def create_account(request: web.Request) -> web.Response:
        data = await _body(request)
        try:
            balance = Decimal(str(data.get("balance", "0")))
            account = engine.create_account(
                str(data["api_key"]),
                str(data["secret"]),
                balance,
                name=str(data.get("name") or ""),
                withdrawals_enabled=bool(data.get("withdrawals_enabled", False)),
                venue=str(data.get("venue") or "binance"),
            )
        except KeyError as exc:
            return _bad(f"missing field {exc.args[0]!r}")
        except (ValueError, InvalidOperation) as exc:
            return _bad(str(exc), 409 if "already exists" in str(exc) else 400)
        return _json(
            {
                "api_key": account.api_key,
                "name": account.name,
                "balance": s(account.wallet),
                "venue": account.venue,
            },
            201,
        )

    @routes.get("/_sim/accounts")
    async def list_accounts(request: web.Request) -> web.Response:
        return _json(
            [
                {
                    "api_key": a.api_key,
                    "name": a.name,
                    "balance": s(a.wallet),
                    "revoked": a.revoked,
                    "venue": a.venue,
                }
                for a in engine.accounts.values()
            ]
        )

    @routes.get("/_sim/accounts/{api_key}")
    async def get_account(request: web.Request) -> web.Response:
        account = engine.accounts.get(request.match_info["api_key"])
        if account is None:
            return _bad("no such account", 404)
        try:
            since_ns = int(request.query.get("since_ns", "0"))
        except ValueError:
            return _bad("since_ns must be an integer (nanoseconds since the epoch)")
        return _json(account_summary(engine, account, since_ns))

    @routes.post("/_sim/accounts/{api_key}/revoke")
    async def revoke(request: web.Request) -> web.Response:
        account = engine.accounts.get(request.match_info["api_key"])
        if account is None:
            return _bad("no such account", 404)
        account.revoked = True
        if account.venue in others:
            others[account.venue].stream.close_account(account.api_key)
        else:
            stream.close_key(account.api_key)
        return _json({"revoked": True})

    @routes.post("/_sim/price")
    async def set_price(request: web.Request) -> web.Response:
        data = await _body(request)
        symbol = str(data.get("symbol", ""))
        if symbol not in engine.books:
            return _bad(f"unknown symbol {symbol!r}", 404)
        unknown = set(data) - {"symbol", "price", "last"}
        if unknown or not ({"price", "last"} & set(data)):
            return _bad(f"fields: symbol and price and/or last (unknown: {sorted(unknown)})")
        try:
            # `price` moves the fair (mark) price; `last` prints an outside trade (the last price)
            price = engine.set_price(symbol, Decimal(str(data["price"]))) if "price" in data else None
            if "last" in data:
                engine.set_last(symbol, Decimal(str(data["last"])))
        except (InvalidOperation, ValueError) as exc:
            return _bad(f"price and last must be positive decimals: {exc}")
        book = engine.books[symbol]
        fair = price if price is not None else book.fair
        return _json({"symbol": symbol, "price": s(fair), "last": s(book.last_price)})

    @routes.post("/_sim/funding")
    async def funding(request: web.Request) -> web.Response:
        """Set the funding rate ({"rate": "0.0003"}) and/or settle funding now ({"settle": true})."""
        data = await _body(request)
        unknown = set(data) - {"rate", "settle"}
        if unknown:
            return _bad(f"unknown fields: {sorted(unknown)}")
        if "rate" in data:
            try:
                rate = Decimal(str(data["rate"]))
            except InvalidOperation:
                return _bad("rate must be a decimal")
            if not rate.is_finite() or abs(rate) > Decimal("0.03"):
                return _bad("rate must be a decimal between -0.03 and 0.03")
            engine.funding_rate = rate
        paid = engine.settle_funding() if data.get("settle") is True else []
        return _json({
            "rate": s(engine.funding_rate),
            "next_funding_ms": engine.next_funding_ms(),
            "paid": [{"api_key": a.api_key, "symbol": f.symbol, "amount": s(f.amount)} for a, f in paid],
        })  # fmt: skip

    @routes.get("/_sim/book/{symbol}")
    async def get_book(request: web.Request) -> web.Response:
        book = engine.books.get(request.match_info["symbol"])
        if book is None:
            return _bad("unknown symbol", 404)
        return _json(
            {
                "symbol": book.cfg.symbol,
                "fair": s(book.fair),
                "last": s(book.last_price),
                "bids": [[s(p), s(q)] for p, q in book.levels(True)],
                "asks": [[s(p), s(q)] for p, q in book.levels(False)],
            }
        )

    @routes.post("/_sim/faults")
    async def add_faults(request: web.Request) -> web.Response:
        data = await _body(request)
        api_key = data.get("api_key")
        if api_key is not None and api_key not in engine.accounts:
            return _bad("no such account", 404)
        # The venue whose hosts get the faults: the account's, else "venue" (default binance).
        venue = engine.accounts[api_key].venue if api_key is not None else str(data.get("venue") or "binance")
        other = others.get(venue)
        if other is None and venue != "binance":
            return _bad(f"venue {venue!r} is not served", 404)
        public_only = bool(data.get("public_ws"))
        if public_only and api_key is not None:
            return _bad("public_ws: the public market streams belong to no account; leave api_key out")
        try:
            done: dict[str, Any] = {"rest": (other.faults if other is not None else faults).add(data)}
        except (TypeError, ValueError) as exc:
            return _bad(f"bad fault spec: {exc}")
        # Without an account, drop/stall hit every socket of the venue's host, public ones too;
        # public_ws narrows them to the public market streams.
        host = other.stream if other is not None else stream
        sockets: Sockets = host.public if public_only else host
        if data.get("drop_ws"):
            done["dropped"] = sockets.drop(api_key)
        if data.get("expire_listen_keys") and other is None:
            done["expired"] = stream.expire(api_key)
        if data.get("stall_ws"):
            done["stalled"] = sockets.stall(float(data["stall_ws"]), api_key)
        return _json(done)

    @routes.delete("/_sim/faults")
    async def clear_faults(request: web.Request) -> web.Response:
        faults.clear()
        for other in others.values():
            other.faults.clear()
        return _json({"cleared": True})

    @routes.get("/_sim/limits")
    async def get_limits(request: web.Request) -> web.Response:
        return _json(limits.snapshot())

    @routes.delete("/_sim/limits")
    async def reset_limits(request: web.Request) -> web.Response:
        address = request.query.get("address")
        limits.reset(address)
        return _json({"reset": address or "all"})

    return list(routes)  # type: ignore[arg-type]
