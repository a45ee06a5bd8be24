"""A parsed Bybit V5 REST call and the parameter checks its handlers share (Bybit's retCode 10001
"params error" for anything malformed)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.sim.accounts import Account, Order
from bot.sim.bybit.venue import BybitError, BybitMarket, BybitVenue
from bot.sim.matching import MatchingEngine

ZERO = Decimal(0)
DAY_MS = 86_400_000
_CATEGORIES = frozenset({"spot", "linear", "inverse", "option"})


@dataclass(slots=True)
class Call:
    venue: BybitVenue
    engine: MatchingEngine
    account: Account | None
    params: dict[str, str]
    recv_ns: int
    order: Order | None = None  # the order placed by this call, stamped with its ack time

    @property
    def acct(self) -> Account:
        assert self.account is not None, "private route without an account"
        return self.account


Handler = Callable[[Call], Any]


def int_param(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise BybitError(10001, f"params error: {name} invalid") from None


def decimal_param(params: dict[str, str], name: str) -> Decimal:
    raw = params.get(name, "")
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise BybitError(10001, f"params error: {name} invalid") from None
    if not value.is_finite():
        raise BybitError(10001, f"params error: {name} invalid")
    return value


def category_of(c: Call, *, only_linear: bool = True) -> str:
    category = c.params.get("category", "")
    if category not in _CATEGORIES:
        raise BybitError(10001, "params error: category invalid")
    if only_linear and category != "linear":
        raise BybitError(10001, f"params error: category {category} is not supported here")
    return category


def symbol_filter(c: Call) -> BybitMarket | None:
    """The symbol of a linear list query; Bybit needs symbol, baseCoin or settleCoin."""
    if c.params.get("symbol"):
        return c.venue.market(c.params["symbol"])
    if not (c.params.get("settleCoin") or c.params.get("baseCoin")):
        raise BybitError(10001, "params error: symbol, baseCoin or settleCoin is required")
    return None


def cursor_page(
    rows: list[Any], c: Call, key: Callable[[Any], int], default: int, top: int
) -> tuple[list[Any], str]:
    """Newest-first rows after the cursor (the key of the last row of the previous page)."""
    limit = int_param(c.params, "limit", default)
    if not 1 <= limit <= top:
        raise BybitError(10001, "params error: limit invalid")
    cursor = c.params.get("cursor", "")
    if cursor:
        try:
            after = int(cursor)
        except ValueError:
            raise BybitError(10001, "params error: cursor invalid") from None
        rows = [r for r in rows if key(r) < after]
    page = rows[:limit]
    more = len(rows) > limit
    return page, str(key(page[-1])) if more and page else ""


def time_window(c: Call) -> tuple[int, int]:
    """startTime / endTime: at most 7 days apart; the last 7 days when neither is sent. Given on
    the venue's clock, returned on the engine's (what order and trade times are kept in)."""
    start, end = int_param(c.params, "startTime", 0), int_param(c.params, "endTime", 0)
    if start and end:
        if end < start or end - start > 7 * DAY_MS:
            raise BybitError(10001, "params error: the time range must be within 7 days")
    elif start:
        end = start + 7 * DAY_MS
    elif end:
        start = end - 7 * DAY_MS
    else:
        end = c.venue.now_ms() + 1000
        start = end - 7 * DAY_MS
    return c.venue.engine_ms(start), c.venue.engine_ms(end)
