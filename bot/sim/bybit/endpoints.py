"""The Bybit V5 REST endpoints (category linear) ccxt's bybit calls, as plain functions of a parsed
call (bot.sim.bybit.call): account, positions and orders here, market data in bot.sim.bybit.market.
`ROUTES` maps (method, path) to (private, handler)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from itertools import islice
from typing import Any

from bot.sim.accounts import Account, Funding, Order, SimError
from bot.sim.bybit.call import (
    ZERO,
    Call,
    Handler,
    category_of,
    cursor_page,
    decimal_param,
    symbol_filter,
    time_window,
)
from bot.sim.bybit.conditional import conditional_cancel, conditional_create
from bot.sim.bybit.ledger import funding_execution_json, row_key, transaction_log
from bot.sim.bybit.market import instruments_info, market_time, orderbook, tickers
from bot.sim.bybit.venue import BybitError, BybitMarket, from_engine, order_uuid, uid_of
from bot.sim.bybit.wire import (
    execution_json,
    fees_by_order,
    order_json,
    order_status,
    position_json,
    wallet_json,
)

_EXEC_TYPES = frozenset(
    {"Trade", "AdlTrade", "Funding", "BustTrade", "Delivery", "Settle", "BlockTrade", "MovePosition"}
)


# -- account --------------------------------------------------------------------------------------


def wallet_balance(c: Call) -> Any:
    account_type = c.params.get("accountType", "")
    if account_type != "UNIFIED":
        raise BybitError(10001, "accountType only support UNIFIED.")
    total = sum(c.venue.realised(c.acct).values(), ZERO)
    return {"list": [wallet_json(c.engine, c.acct, total)]}


def account_info(c: Call) -> Any:
    return {
        "unifiedMarginStatus": 6,  # UTA 2.0 Pro
        "marginMode": "REGULAR_MARGIN",
        "isMasterTrader": False,
        "spotHedgingStatus": "OFF",
        "updatedTime": str(c.venue.ms(c.acct.update_time_ms)),
        "dcpStatus": "OFF",
        "timeWindow": 10,
        "smpGroup": 0,
    }


def query_api(c: Call) -> Any:
    acct = c.acct
    wallet = ["AccountTransfer", "SubMemberTransfer"] + (["Withdraw"] if acct.withdrawals_enabled else [])
    return {
        "id": str(uid_of(acct) % 10_000_000),
        "note": acct.name,
        "apiKey": acct.api_key,
        "readOnly": 0,
        "secret": "",
        "permissions": {
            "ContractTrade": ["Order", "Position"],
            "Spot": [],
            "Wallet": wallet,
            "Options": [],
            "Derivatives": [],
            "CopyTrading": [],
            "BlockTrade": [],
            "Exchange": [],
            "NFT": [],
            "Affiliate": [],
            "Earn": [],
        },
        "ips": ["*"],
        "type": 1,
        "deadlineDay": -1,
        "expiredAt": "",
        "createdAt": "2024-01-01T00:00:00Z",
        "unified": 0,
        "uta": 1,
        "userID": uid_of(acct),
        "inviterID": 0,
        "vipLevel": "No VIP",
        "mktMakerLevel": "0",
        "affiliateID": 0,
        "rsaPublicKey": "",
        "isMaster": True,
        "parentUid": "0",
        "kycLevel": "LEVEL_DEFAULT",
        "kycRegion": "",
    }


# -- positions ------------------------------------------------------------------------------------


def position_list(c: Call) -> Any:
    if category_of(c, only_linear=False) != "linear":  # ccxt's position snapshot also asks inverse
        return {"category": c.params["category"], "list": [], "nextPageCursor": ""}
    wanted = symbol_filter(c)
    marks = c.engine.marks()
    realised = c.venue.realised(c.acct)
    rows = []
    for m in [wanted] if wanted is not None else list(c.venue.markets.values()):
        pos = c.acct.position(m.engine_symbol)
        # By symbol the position comes back even when flat; by settleCoin only open ones.
        if wanted is not None or pos.amt:
            cum = realised.get(m.engine_symbol, ZERO)
            rows.append(position_json(c.venue, m, c.acct, pos, marks[m.engine_symbol], cum))
    return {"category": "linear", "list": rows, "nextPageCursor": ""}


def set_leverage(c: Call) -> Any:
    category_of(c)
    m = c.venue.market(c.params.get("symbol"))
    buy, sell = c.params.get("buyLeverage", ""), c.params.get("sellLeverage", "")
    if buy != sell:
        raise BybitError(10001, "buy leverage must be equal to sell leverage in one-way mode")
    try:
        value = Decimal(buy)
    except InvalidOperation:
        raise BybitError(10001, "params error: buyLeverage invalid") from None
    if not value.is_finite() or value != value.to_integral_value():
        raise BybitError(10001, "params error: leverage must be a whole number here")
    leverage = int(value)
    if c.acct.leverage_of(m.engine_symbol) == leverage:
        raise BybitError(110043, "leverage not modified")
    try:
        c.engine.set_leverage(c.acct, m.engine_symbol, leverage)
    except SimError as exc:
        raise from_engine(exc) from None
    return {}


# -- orders ---------------------------------------------------------------------------------------

_TIF_IN = {"GTC": "GTC", "IOC": "IOC", "FOK": "FOK", "PostOnly": "GTX"}


def order_create(c: Call) -> Any:
    category_of(c)
    p, venue, acct = c.params, c.venue, c.acct
    m = venue.market(p.get("symbol"))
    side = {"Buy": "BUY", "Sell": "SELL"}.get(p.get("side", ""))
    if side is None:
        raise BybitError(10001, "params error: side invalid")
    otype = {"Market": "MARKET", "Limit": "LIMIT"}.get(p.get("orderType", ""))
    if otype is None:
        raise BybitError(10001, "params error: orderType invalid")
    if p.get("positionIdx", "0") not in ("0", ""):
        raise BybitError(10001, "position idx not match position mode")
    qty = decimal_param(p, "qty")
    engine_params = {
        "symbol": m.engine_symbol,
        "side": side,
        "type": otype,
        "quantity": format(m.qty_in(qty), "f"),
        "reduceOnly": "true" if p.get("reduceOnly", "false").lower() == "true" else "false",
    }
    if otype == "LIMIT":
        if not p.get("price"):
            raise BybitError(10001, "params error: price is required for a limit order")
        engine_params["price"] = format(m.price_in(decimal_param(p, "price")), "f")
        tif = _TIF_IN.get(p.get("timeInForce") or "GTC")
        if tif is None:
            raise BybitError(10001, "params error: timeInForce invalid")
        engine_params["timeInForce"] = tif
    link = p.get("orderLinkId", "")
    if link:
        venue.check_link_id(acct, link)
    engine_params["newClientOrderId"] = link or venue.anonymous_client_id()
    if p.get("triggerPrice"):
        return conditional_create(c, m, engine_params, link)
    try:
        order = c.engine.place_order(acct, engine_params, c.recv_ns)
    except SimError as exc:
        raise from_engine(exc) from None
    venue.remember(acct, order, link)
    c.order = order
    return {"orderId": order_uuid(order.order_id), "orderLinkId": link}


def order_cancel(c: Call) -> Any:
    category_of(c)
    m = c.venue.market(c.params.get("symbol"))
    if not (c.params.get("orderId") or c.params.get("orderLinkId")):
        raise BybitError(10001, "params error: orderId or orderLinkId is required")
    order = c.venue.find(c.acct, c.params.get("orderId"), c.params.get("orderLinkId"))
    if order is None or order.symbol != m.engine_symbol or not order.is_open:
        raise BybitError(110001, "order not exists or too late to cancel")
    if order.status == "UNTRIGGERED":
        conditional_cancel(c, order)
        return {"orderId": order_uuid(order.order_id), "orderLinkId": c.venue.link(order)}
    c.engine.cancel_order(c.acct, {"symbol": order.symbol, "orderId": str(order.order_id)})
    return {"orderId": order_uuid(order.order_id), "orderLinkId": c.venue.link(order)}


def _orders_reply(c: Call, rows: list[Order], default: int) -> Any:
    page, cursor = cursor_page(rows, c, lambda o: o.order_id, default, 50)
    fees = fees_by_order(c.acct, page)
    return {
        "category": "linear",
        "list": [order_json(c.venue, o, fees.get(o.order_id, ZERO)) for o in page],
        "nextPageCursor": cursor,
    }


_RECENT = 500  # realtime also serves the account's most recent 500 orders of any status


def _recent(account: Account) -> list[Order]:
    return list(islice(reversed(account.orders.values()), _RECENT))


def _by_id(c: Call) -> list[Order] | None:
    """The one order named by orderId / orderLinkId (empty if unknown), or None without either."""
    order_id, link = c.params.get("orderId"), c.params.get("orderLinkId")
    if not (order_id or link):
        return None
    order = c.venue.find(c.acct, order_id, link)
    m = _symbol_filter_optional(c)
    if order is None or (m is not None and order.symbol != m.engine_symbol):
        return []
    return [order]


def _symbol_filter_optional(c: Call) -> BybitMarket | None:
    return c.venue.market(c.params["symbol"]) if c.params.get("symbol") else None


def order_realtime(c: Call) -> Any:
    category_of(c)
    found = _by_id(c)
    if found is not None:
        recent = found and found[0].order_id in {o.order_id for o in _recent(c.acct)}
        return _orders_reply(c, found if recent else [], 20)
    m = symbol_filter(c)
    open_only = c.params.get("openOnly", "0") in ("0", "")
    pool = list(c.acct.open_orders.values()) if open_only else _recent(c.acct)
    rows = [o for o in pool if m is None or o.symbol == m.engine_symbol]
    rows.sort(key=lambda o: o.order_id, reverse=True)
    return _orders_reply(c, rows, 20)


def order_history(c: Call) -> Any:
    category_of(c)
    found = _by_id(c)
    if found is not None:
        return _orders_reply(c, found, 20)
    m = _symbol_filter_optional(c)
    start, end = time_window(c)
    status = c.params.get("orderStatus")
    rows = [
        o
        for o in c.acct.orders.values()
        if (m is None or o.symbol == m.engine_symbol)
        and start <= o.time_ms <= end
        and (not o.is_open if not status else _status_matches(o, status))
    ]
    rows.sort(key=lambda o: o.order_id, reverse=True)
    return _orders_reply(c, rows, 20)


def _status_matches(order: Order, status: str) -> bool:
    return order_status(order) == status


def execution_list(c: Call) -> Any:
    category_of(c)
    acct, venue = c.acct, c.venue
    m = _symbol_filter_optional(c)
    exec_type = c.params.get("execType", "")
    if exec_type and exec_type not in _EXEC_TYPES:
        raise BybitError(10001, "params error: execType invalid")
    start, end = time_window(c)
    order = None
    if c.params.get("orderId") or c.params.get("orderLinkId"):
        order = venue.find(acct, c.params.get("orderId"), c.params.get("orderLinkId"))
        if order is None:
            return {"category": "linear", "list": [], "nextPageCursor": ""}
    # Engine fills are plain Trades and funding payments Funding executions (bot.sim.bybit.ledger):
    # no liquidation (BustTrade), ADL or delivery here.
    rows: list[tuple[int, Any]] = []
    if not exec_type or exec_type == "Trade":
        rows += [
            (row_key(t.time_ms, t.trade_id, False), t)
            for t in acct.trades
            if (m is None or t.symbol == m.engine_symbol)
            and start <= t.time_ms <= end
            and (order is None or t.order_id == order.order_id)
        ]
    if (not exec_type or exec_type == "Funding") and order is None:
        rows += [
            (row_key(f.time_ms, f.funding_id, True), f)
            for f in acct.fundings
            if (m is None or f.symbol == m.engine_symbol) and start <= f.time_ms <= end
        ]
    rows.sort(key=lambda r: r[0], reverse=True)
    page, cursor = cursor_page(rows, c, lambda r: r[0], 50, 100)
    marks = c.engine.marks()
    out = [
        funding_execution_json(venue, row)
        if isinstance(row, Funding)
        else execution_json(venue, row, acct.orders[row.order_id], marks[row.symbol])
        for _, row in page
    ]
    return {"category": "linear", "list": out, "nextPageCursor": cursor}


ROUTES: dict[tuple[str, str], tuple[bool, Handler]] = {
    ("GET", "/v5/market/time"): (False, market_time),
    ("GET", "/v5/market/instruments-info"): (False, instruments_info),
    ("GET", "/v5/market/tickers"): (False, tickers),
    ("GET", "/v5/market/orderbook"): (False, orderbook),
    ("GET", "/v5/account/wallet-balance"): (True, wallet_balance),
    ("GET", "/v5/account/info"): (True, account_info),
    ("GET", "/v5/user/query-api"): (True, query_api),
    ("GET", "/v5/position/list"): (True, position_list),
    ("POST", "/v5/position/set-leverage"): (True, set_leverage),
    ("POST", "/v5/order/create"): (True, order_create),
    ("POST", "/v5/order/cancel"): (True, order_cancel),
    ("GET", "/v5/order/realtime"): (True, order_realtime),
    ("GET", "/v5/order/history"): (True, order_history),
    ("GET", "/v5/execution/list"): (True, execution_list),
    ("GET", "/v5/account/transaction-log"): (True, transaction_log),
}

# Per-UID limits per second (Bybit's table for a UTA account: trading 10/s, queries 50/s); the
# config's bybit.rate_limits overrides them per path.
DEFAULT_LIMITS: dict[str, int] = {
    "/v5/order/create": 10,
    "/v5/order/cancel": 10,
    "/v5/position/set-leverage": 10,
    "/v5/order/realtime": 50,
    "/v5/order/history": 50,
    "/v5/execution/list": 50,
    "/v5/position/list": 50,
    "/v5/account/wallet-balance": 50,
    "/v5/account/transaction-log": 50,
    "/v5/account/info": 50,
    "/v5/user/query-api": 10,
}
