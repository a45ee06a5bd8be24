"""Binance USD-M's Algo Order endpoints: conditional orders (STOP_MARKET, TAKE_PROFIT_MARKET) live
there since 2025-12-09, and `POST /fapi/v1/order` refuses them with -4120 (docs/sim.md,
"Conditional orders"). ccxt 4.5.90 sends `create_order(..., params={"stopLossPrice": p})` and
`type="STOP_MARKET"` with a trigger price here (`fapiPrivatePostAlgoOrder`, `algoType=CONDITIONAL`,
`clientAlgoId`, `triggerPrice`); fetch / cancel with `params={"trigger": True}` go to
`GET` / `DELETE /fapi/v1/algoOrder`, open ones to `GET /fapi/v1/openAlgoOrders`.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from bot.sim.accounts import SimError
from bot.sim.call import Call
from bot.sim.conditional import Conditional, binance_direction
from bot.sim.wire import algo_json

ZERO = Decimal(0)
ALGO_TYPES = frozenset({"STOP_MARKET", "TAKE_PROFIT_MARKET"})
# Conditional types the venue has but the sim does not serve (limit variants, trailing stops).
_UNSERVED = frozenset({"STOP", "TAKE_PROFIT", "TRAILING_STOP_MARKET"})


def _bool(params: dict[str, str], name: str) -> bool:
    raw = params.get(name, "false").lower()
    if raw not in ("true", "false"):
        raise SimError(-1102, f"Parameter '{name}' was malformed: {raw!r}.")
    return raw == "true"


def _price(params: dict[str, str], name: str, tick: Decimal) -> Decimal:
    raw = params.get(name) or ""
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise SimError(-1102, f"Mandatory parameter '{name}' was not sent or malformed.") from None
    if not value.is_finite() or value <= 0:
        raise SimError(-1102, f"Parameter '{name}' was malformed: {raw!r}.")
    if value % tick:
        raise SimError(-1111, "Precision is over the maximum defined for this asset.")
    return value


def reject_conditional_on_order_endpoint(otype: str) -> None:
    """Binance's change log of 2025-11-06: after the migration the order endpoints block the
    conditional types with -4120 STOP_ORDER_SWITCH_ALGO."""
    if otype in ALGO_TYPES or otype in _UNSERVED:
        msg = "Order type not supported for this endpoint. Please use the Algo Order API endpoints instead."
        raise SimError(-4120, msg)


def _algo_post(c: Call) -> Any:
    engine, params, acct = c.engine, c.params, c.acct
    if params.get("algoType") != "CONDITIONAL":
        raise SimError(-1102, "Parameter 'algoType' was malformed: only CONDITIONAL is supported.")
    cfg = engine.market(params.get("symbol"))
    side = params.get("side", "")
    if side not in ("BUY", "SELL"):
        raise SimError(-1117, "Invalid side.")
    otype = params.get("type", "")
    if otype not in ALGO_TYPES:
        raise SimError(-1116, "Invalid orderType.")
    if params.get("positionSide", "BOTH") != "BOTH":
        raise SimError(-4061, "Order's position side does not match user's setting.")
    working = params.get("workingType", "CONTRACT_PRICE")
    if working not in ("MARK_PRICE", "CONTRACT_PRICE"):
        raise SimError(-1102, f"Parameter 'workingType' was malformed: {working!r}.")
    close_position = _bool(params, "closePosition")
    reduce_only = _bool(params, "reduceOnly")
    price_protect = params.get("priceProtect", "FALSE").upper() == "TRUE"
    trigger = _price(params, "triggerPrice", cfg.tick)
    qty = ZERO
    if close_position:
        if params.get("quantity"):
            raise SimError(-1106, "Parameter 'quantity' sent when not required.")
        if reduce_only:
            raise SimError(-1106, "Parameter 'reduceOnly' sent when not required.")
    else:
        try:
            qty = Decimal(params.get("quantity") or "")
        except InvalidOperation:
            raise SimError(-1102, "Mandatory parameter 'quantity' was not sent or malformed.") from None
        if not qty.is_finite() or qty <= 0:
            raise SimError(-4003, "Quantity less than or equal to zero.")
        if qty % cfg.step:
            raise SimError(-1111, "Precision is over the maximum defined for this asset.")
        if qty < cfg.min_qty:
            raise SimError(-4004, "Quantity less than min quantity.")
        if qty > cfg.max_qty:
            raise SimError(-4005, "Quantity greater than max quantity.")
    client_id = params.get("clientAlgoId") or f"sim_algo_{engine.conditionals.next_algo_id()}"
    engine.check_client_id(acct, client_id, "clientAlgoId")
    for other in engine.conditionals.of(acct).values():
        if other.is_open and other.client_id == client_id:  # unique among open orders, algo ones too
            raise SimError(-4116, "ClientOrderId is duplicated.")
    now = engine.now_ms()
    cond = Conditional(
        algo_id=engine.conditionals.next_algo_id(),
        order_id=engine.reserve_order_id(),
        client_id=client_id,
        symbol=cfg.symbol,
        side=side,
        type=otype,
        qty=qty,
        trigger_price=trigger,
        direction=binance_direction(otype, side),
        working_type=working,
        reduce_only=reduce_only,
        close_position=close_position,
        price_protect=price_protect,
        time_ms=now,
        update_time_ms=now,
    )
    engine.conditionals.add(acct, cond)
    return algo_json(cond)


def _find(c: Call, *, code: int) -> Conditional:
    records = c.engine.conditionals.of(c.acct)
    found: Conditional | None = None
    if c.params.get("algoId"):
        try:
            found = records.get(int(c.params["algoId"]))
        except ValueError:
            raise SimError(-1102, "Parameter 'algoId' was malformed.") from None
    elif c.params.get("clientAlgoId"):
        wanted = c.params["clientAlgoId"]
        matches = [r for r in records.values() if r.client_id == wanted]
        found = matches[-1] if matches else None  # the newest with this id
    else:
        raise SimError(-1102, "Param 'clientAlgoId' or 'algoId' must be sent, but both were empty/null!")
    if found is None:
        raise SimError(code, "Order does not exist." if code == -2013 else "Unknown order sent.")
    return found


def _algo_get(c: Call) -> Any:
    return algo_json(_find(c, code=-2013))


def _algo_delete(c: Call) -> Any:
    cond = _find(c, code=-2011)
    if not cond.is_open:
        raise SimError(-2011, "Unknown order sent.")
    c.engine.conditionals.cancel(c.acct, cond)
    return {"algoId": cond.algo_id, "clientAlgoId": cond.client_id, "code": "200", "msg": "success"}


def _open_algo_orders(c: Call) -> Any:
    symbol = c.params.get("symbol")
    if symbol:
        c.engine.market(symbol)
    return [algo_json(r) for r in c.engine.conditionals.of(c.acct).values()
            if r.is_open and (not symbol or r.symbol == symbol)]  # fmt: skip


def _all_algo_orders(c: Call) -> Any:
    symbol = c.engine.market(c.params.get("symbol")).symbol
    return [algo_json(r) for r in c.engine.conditionals.of(c.acct).values() if r.symbol == symbol]


def _cancel_all_algo(c: Call) -> Any:
    symbol = c.engine.market(c.params.get("symbol")).symbol
    for cond in list(c.engine.conditionals.of(c.acct).values()):
        if cond.is_open and cond.symbol == symbol:
            c.engine.conditionals.cancel(c.acct, cond)
    return {"code": 200, "msg": "The operation of cancel all open order is done."}


ALGO_ROUTES = {
    ("POST", "/fapi/v1/algoOrder"): ("signed", _algo_post),
    ("GET", "/fapi/v1/algoOrder"): ("signed", _algo_get),
    ("DELETE", "/fapi/v1/algoOrder"): ("signed", _algo_delete),
    ("GET", "/fapi/v1/openAlgoOrders"): ("signed", _open_algo_orders),
    ("GET", "/fapi/v1/allAlgoOrders"): ("signed", _all_algo_orders),
    ("DELETE", "/fapi/v1/algoOpenOrders"): ("signed", _cancel_all_algo),
}

# Weights from the Algo Order pages (New Algo Order 0 on the IP limit, 1 on the order counts;
# Query / Cancel 1; open orders 1 with a symbol, 40 without; all orders 5).
ALGO_WEIGHTS: dict[tuple[str, str], Any] = {
    ("POST", "/fapi/v1/algoOrder"): 0,
    ("GET", "/fapi/v1/algoOrder"): 1,
    ("DELETE", "/fapi/v1/algoOrder"): 1,
    ("GET", "/fapi/v1/openAlgoOrders"): lambda query: 1 if query.get("symbol") else 40,
    ("GET", "/fapi/v1/allAlgoOrders"): 5,
    ("DELETE", "/fapi/v1/algoOpenOrders"): 1,
}
