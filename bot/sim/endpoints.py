"""The Binance USD-M REST endpoints ccxt's binanceusdm calls, as plain functions of a parsed call.

`ROUTES` maps (method, path) to (security, handler): "public" needs nothing, "key" only the
X-MBX-APIKEY header (listenKey), "signed" a valid HMAC signature.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from bot.sim.accounts import SimError
from bot.sim.algo import ALGO_ROUTES, ALGO_WEIGHTS, reject_conditional_on_order_endpoint
from bot.sim.call import Call, Handler
from bot.sim.config import MarketConfig
from bot.sim.marketdata import depth, int_param, ping, premium, server_time, ticker
from bot.sim.wire import order_json, position_json, s, trade_json

ZERO = Decimal(0)


# -- listenKey ------------------------------------------------------------------------------------


def _listen_key_post(c: Call) -> Any:
    return {"listenKey": c.stream.create_key(c.acct.api_key)}


def _listen_key_put(c: Call) -> Any:
    return {"listenKey": c.stream.keepalive(c.acct.api_key)}


def _listen_key_delete(c: Call) -> Any:
    c.stream.close_key(c.acct.api_key)
    return {}


# -- account --------------------------------------------------------------------------------------


def _account(c: Call, *, v2: bool = False) -> Any:
    acct, engine = c.acct, c.engine
    marks = engine.marks()
    unrealized = acct.unrealized(marks)
    initial = acct.initial_margin(marks)
    available = acct.wallet + unrealized - initial
    wallet, upnl, margin_balance = s(acct.wallet), s(unrealized), s(acct.wallet + unrealized)
    asset = {
        "asset": acct.asset,
        "walletBalance": wallet,
        "unrealizedProfit": upnl,
        "marginBalance": margin_balance,
        "maintMargin": "0",
        "initialMargin": s(initial),
        "positionInitialMargin": s(initial),
        "openOrderInitialMargin": "0",
        "crossWalletBalance": wallet,
        "crossUnPnl": upnl,
        "availableBalance": s(available),
        "maxWithdrawAmount": s(max(available, ZERO)),
        "marginAvailable": True,
        "updateTime": acct.update_time_ms,
    }
    positions = []
    for symbol, pos in acct.positions.items():
        if pos.amt or v2:
            row = position_json(symbol, pos, marks[symbol], acct.leverage_of(symbol), ZERO)
            positions.append(
                {k: row[k] for k in _ACCOUNT_POSITION_KEYS} | {"unrealizedProfit": row["unRealizedProfit"]}
            )
    out: dict[str, Any] = {
        "totalInitialMargin": s(initial),
        "totalMaintMargin": "0",
        "totalWalletBalance": wallet,
        "totalUnrealizedProfit": upnl,
        "totalMarginBalance": margin_balance,
        "totalPositionInitialMargin": s(initial),
        "totalOpenOrderInitialMargin": "0",
        "totalCrossWalletBalance": wallet,
        "totalCrossUnPnl": upnl,
        "availableBalance": s(available),
        "maxWithdrawAmount": s(max(available, ZERO)),
        "assets": [asset],
        "positions": positions,
    }
    if v2:
        out.update(
            feeTier=0, canTrade=True, canDeposit=True, canWithdraw=acct.withdrawals_enabled, updateTime=0
        )
    return out


_ACCOUNT_POSITION_KEYS = (
    "symbol",
    "positionSide",
    "positionAmt",
    "entryPrice",
    "isolatedMargin",
    "notional",
    "isolatedWallet",
    "initialMargin",
    "maintMargin",
    "leverage",
    "updateTime",
)


def _position_risk(c: Call, *, all_symbols: bool) -> Any:
    acct, engine = c.acct, c.engine
    wanted = c.params.get("symbol")
    if wanted:
        engine.market(wanted)
    rows = []
    for symbol, book in engine.books.items():
        if wanted and symbol != wanted:
            continue
        pos = acct.position(symbol)
        if pos.amt or all_symbols:
            lev = acct.leverage_of(symbol)
            rows.append(position_json(symbol, pos, book.fair, lev, engine.max_notional(book.cfg, lev)))
    return rows


def _brackets(c: Call) -> Any:
    def one(m: MarketConfig) -> dict[str, Any]:
        cap = m.max_qty * m.price
        return {
            "symbol": m.symbol,
            "notionalCoef": 1.0,
            "brackets": [
                {
                    "bracket": 1,
                    "initialLeverage": m.max_leverage,
                    "notionalCap": int(cap),
                    "notionalFloor": 0,
                    "maintMarginRatio": 0.004,
                    "cum": 0.0,
                }
            ],
        }

    if c.params.get("symbol"):
        return [one(c.engine.market(c.params["symbol"]))]
    return [one(m) for m in c.engine.config.markets]


def _leverage(c: Call) -> Any:
    return c.engine.set_leverage(
        c.acct, c.engine.market(c.params.get("symbol")).symbol, int_param(c.params, "leverage", 0)
    )


def _margin_type(c: Call) -> Any:
    c.engine.market(c.params.get("symbol"))
    if c.params.get("marginType", "").upper() == "CROSSED":
        raise SimError(-4046, "No need to change margin type.")
    raise SimError(-4047, "Margin type cannot be changed if there exists position.")  # cross only here


def _dual_get(c: Call) -> Any:
    return {"dualSidePosition": False}


def _dual_post(c: Call) -> Any:
    if c.params.get("dualSidePosition", "false").lower() == "true":
        raise SimError(-4059, "No need to change position side.")  # one-way mode only
    raise SimError(-4059, "No need to change position side.")


def _api_restrictions(c: Call) -> Any:
    return {
        "ipRestrict": False,
        "createTime": 1_700_000_000_000,
        "enableReading": True,
        "enableFutures": True,
        "enableSpotAndMarginTrading": False,
        "enableWithdrawals": c.acct.withdrawals_enabled,
        "enableInternalTransfer": False,
        "enableMargin": False,
        "permitsUniversalTransfer": False,
        "enableVanillaOptions": False,
        "enablePortfolioMarginTrading": False,
    }


# -- orders and trades ----------------------------------------------------------------------------


def _order_post(c: Call) -> Any:
    reject_conditional_on_order_endpoint(c.params.get("type", ""))
    order = c.engine.place_order(c.acct, c.params, c.recv_ns)
    c.order = order
    return order_json(order)


def _order_get(c: Call) -> Any:
    return order_json(c.engine.find_order(c.acct, c.params, code=-2013))


def _order_delete(c: Call) -> Any:
    return order_json(c.engine.cancel_order(c.acct, c.params))


def _open_orders(c: Call) -> Any:
    symbol = c.params.get("symbol")
    if symbol:
        c.engine.market(symbol)
    return [order_json(o) for o in c.acct.open_orders.values() if not symbol or o.symbol == symbol]


def _cancel_all(c: Call) -> Any:
    c.engine.cancel_all(c.acct, c.params.get("symbol", ""))
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


def _history_query(c: Call, id_param: str) -> tuple[str, int, int, int, int]:
    """(symbol, startTime, endTime, from id, limit) of a Binance history request."""
    symbol = c.engine.market(c.params.get("symbol")).symbol
    start, end = int_param(c.params, "startTime", 0), int_param(c.params, "endTime", 2**62)
    return symbol, start, end, int_param(c.params, id_param, 0), min(int_param(c.params, "limit", 500), 1000)


def _all_orders(c: Call) -> Any:
    symbol, start, end, from_id, limit = _history_query(c, "orderId")
    rows = [
        o
        for o in c.acct.orders.values()
        if o.symbol == symbol and o.order_id >= from_id and start <= o.time_ms <= end
    ]
    return [order_json(o) for o in rows[:limit]]


def _user_trades(c: Call) -> Any:
    symbol, start, end, from_id, limit = _history_query(c, "fromId")
    rows = [
        t for t in c.acct.trades if t.symbol == symbol and t.trade_id >= from_id and start <= t.time_ms <= end
    ]
    # With a time window but no fromId, Binance returns the newest `limit` rows of the window.
    rows = (
        rows[:limit]
        if from_id or not (c.params.get("startTime") or c.params.get("endTime"))
        else rows[-limit:]
    )
    return [trade_json(t) for t in rows]


_INCOME_TYPES = frozenset({"REALIZED_PNL", "FUNDING_FEE", "COMMISSION"})


def _income(c: Call) -> Any:
    """Binance "Get Income History": REALIZED_PNL and COMMISSION per trade, FUNDING_FEE per funding
    payment, oldest first; `income` is the wallet's change (negative: paid). Without startTime and
    endTime the last 7 days. `tranId` is unique per type, `tradeId` names the trade ("" for funding)."""
    wanted = c.params.get("incomeType") or None
    if wanted is not None and wanted not in _INCOME_TYPES:
        return []  # a type the local exchange never produces (TRANSFER, WELCOME_BONUS, ...)
    symbol = c.engine.market(c.params["symbol"]).symbol if c.params.get("symbol") else None
    now = time.time_ns() // 1_000_000
    has_window = c.params.get("startTime") or c.params.get("endTime")
    start = int_param(c.params, "startTime", 0 if has_window else now - 7 * 86_400_000)
    end = int_param(c.params, "endTime", 2**62)
    limit = min(int_param(c.params, "limit", 100), 1000)
    asset = c.acct.asset
    rows: list[tuple[int, int, dict[str, Any]]] = []

    def row(kind: str, sym: str, amount: Decimal, time_ms: int, tran: int, trade: str) -> dict[str, Any]:
        return {"symbol": sym, "incomeType": kind, "income": s(amount), "asset": asset, "info": kind,
                "time": time_ms, "tranId": tran, "tradeId": trade}  # fmt: skip

    for t in c.acct.trades:
        if (symbol is None or t.symbol == symbol) and start <= t.time_ms <= end:
            if t.realized_pnl and wanted in (None, "REALIZED_PNL"):
                rows.append((t.time_ms, 0, row("REALIZED_PNL", t.symbol, t.realized_pnl, t.time_ms,
                                                t.trade_id, str(t.trade_id))))  # fmt: skip
            if t.commission and wanted in (None, "COMMISSION"):
                rows.append((t.time_ms, 1, row("COMMISSION", t.symbol, -t.commission, t.time_ms,
                                                t.trade_id, str(t.trade_id))))  # fmt: skip
    if wanted in (None, "FUNDING_FEE"):
        for f in c.acct.fundings:
            if (symbol is None or f.symbol == symbol) and start <= f.time_ms <= end:
                paid = row("FUNDING_FEE", f.symbol, f.amount, f.time_ms, f.funding_id, "")
                rows.append((f.time_ms, 2, paid))
    rows.sort(key=lambda r: (r[0], r[1]))
    page = max(int_param(c.params, "page", 1), 1)
    return [r[2] for r in rows[(page - 1) * limit : page * limit]]


ROUTES: dict[tuple[str, str], tuple[str, Handler]] = {
    ("GET", "/fapi/v1/time"): ("public", server_time),
    ("GET", "/fapi/v1/ping"): ("public", ping),
    ("GET", "/fapi/v1/depth"): ("public", depth),
    ("GET", "/fapi/v1/ticker/24hr"): ("public", ticker),
    ("GET", "/fapi/v1/premiumIndex"): ("public", premium),
    ("POST", "/fapi/v1/listenKey"): ("key", _listen_key_post),
    ("PUT", "/fapi/v1/listenKey"): ("key", _listen_key_put),
    ("DELETE", "/fapi/v1/listenKey"): ("key", _listen_key_delete),
    ("GET", "/fapi/v3/account"): ("signed", _account),
    ("GET", "/fapi/v2/account"): ("signed", lambda c: _account(c, v2=True)),
    ("GET", "/fapi/v3/positionRisk"): ("signed", lambda c: _position_risk(c, all_symbols=False)),
    ("GET", "/fapi/v2/positionRisk"): ("signed", lambda c: _position_risk(c, all_symbols=True)),
    ("GET", "/fapi/v1/leverageBracket"): ("signed", _brackets),
    ("POST", "/fapi/v1/leverage"): ("signed", _leverage),
    ("POST", "/fapi/v1/marginType"): ("signed", _margin_type),
    ("GET", "/fapi/v1/positionSide/dual"): ("signed", _dual_get),
    ("POST", "/fapi/v1/positionSide/dual"): ("signed", _dual_post),
    ("POST", "/fapi/v1/order"): ("signed", _order_post),
    ("GET", "/fapi/v1/order"): ("signed", _order_get),
    ("DELETE", "/fapi/v1/order"): ("signed", _order_delete),
    ("GET", "/fapi/v1/openOrders"): ("signed", _open_orders),
    ("DELETE", "/fapi/v1/allOpenOrders"): ("signed", _cancel_all),
    ("GET", "/fapi/v1/allOrders"): ("signed", _all_orders),
    ("GET", "/fapi/v1/userTrades"): ("signed", _user_trades),
    ("GET", "/fapi/v1/income"): ("signed", _income),
    # Spot host: where Binance says whether a key may withdraw. bot.venues.clients.sim_urls maps ccxt's
    # `sapi` family to /_unused/sapi, so both that and the real path are served.
    ("GET", "/sapi/v1/account/apiRestrictions"): ("signed", _api_restrictions),
    ("GET", "/_unused/sapi/account/apiRestrictions"): ("signed", _api_restrictions),
    **ALGO_ROUTES,
}


# -- request weight -------------------------------------------------------------------------------

Weight = int | Callable[[Mapping[str, str]], int]

_DEPTH_WEIGHTS = {"5": 2, "10": 2, "20": 2, "50": 2, "100": 5, "500": 10, "1000": 20}


def _symbol_or_all(one: int, every: int) -> Callable[[Mapping[str, str]], int]:
    return lambda query: one if query.get("symbol") else every


# IP weight of each route, from each endpoint's page in Binance's USD-M futures docs (docs/sim.md
# lists them). A callable weighs the query string. New orders weigh 0 here: they count against the
# account's order limits instead.
WEIGHTS: dict[tuple[str, str], Weight] = {
    ("GET", "/fapi/v1/exchangeInfo"): 1,
    ("GET", "/fapi/v1/time"): 1,
    ("GET", "/fapi/v1/ping"): 1,
    ("GET", "/fapi/v1/depth"): lambda query: _DEPTH_WEIGHTS.get(query.get("limit", "500"), 10),
    ("GET", "/fapi/v1/ticker/24hr"): _symbol_or_all(1, 40),
    ("GET", "/fapi/v1/premiumIndex"): _symbol_or_all(1, 10),
    ("POST", "/fapi/v1/listenKey"): 1,
    ("PUT", "/fapi/v1/listenKey"): 1,
    ("DELETE", "/fapi/v1/listenKey"): 1,
    ("GET", "/fapi/v3/account"): 5,
    ("GET", "/fapi/v2/account"): 5,
    ("GET", "/fapi/v3/positionRisk"): 5,
    ("GET", "/fapi/v2/positionRisk"): 5,
    ("GET", "/fapi/v1/leverageBracket"): 1,
    ("POST", "/fapi/v1/leverage"): 1,
    ("POST", "/fapi/v1/marginType"): 1,
    ("GET", "/fapi/v1/positionSide/dual"): 30,
    ("POST", "/fapi/v1/positionSide/dual"): 1,
    ("POST", "/fapi/v1/order"): 0,
    ("GET", "/fapi/v1/order"): 1,
    ("DELETE", "/fapi/v1/order"): 1,
    ("GET", "/fapi/v1/openOrders"): _symbol_or_all(1, 40),
    ("DELETE", "/fapi/v1/allOpenOrders"): 1,
    ("GET", "/fapi/v1/allOrders"): 5,
    ("GET", "/fapi/v1/userTrades"): 5,
    ("GET", "/fapi/v1/income"): 30,
    ("GET", "/sapi/v1/account/apiRestrictions"): 1,
    ("GET", "/_unused/sapi/account/apiRestrictions"): 1,
    **ALGO_WEIGHTS,
}
