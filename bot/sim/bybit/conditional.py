"""Bybit V5 conditional orders (category linear): `/v5/order/create` with `triggerPrice`,
`triggerDirection` (1: triggered when the price rises to it, 2: when it falls to it) and
`triggerBy` (LastPrice by default, or MarkPrice), as ccxt 4.5.90's bybit sends a
`stopLossPrice` / `takeProfitPrice` order (with `reduceOnly`). The order shows as Untriggered, then
Triggered and the market order's own New / Filled, or Deactivated when cancelled or when there is
nothing left to reduce. The trigger pass is the engine's (bot.sim.conditional); docs/sim.md,
"Conditional orders"."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bot.sim.accounts import Order, SimError
from bot.sim.bybit.call import Call, decimal_param
from bot.sim.bybit.venue import BybitError, BybitMarket, order_uuid
from bot.sim.conditional import Conditional

_TRIGGER_BY = {"LastPrice": "CONTRACT_PRICE", "MarkPrice": "MARK_PRICE"}  # IndexPrice: not served


def conditional_create(c: Call, m: BybitMarket, engine_params: dict[str, str], link: str) -> Any:
    p, engine, acct = c.params, c.engine, c.acct
    direction = p.get("triggerDirection", "")
    if direction not in ("1", "2"):
        raise BybitError(10001, "params error: TriggerDirection invalid")
    working = _TRIGGER_BY.get(p.get("triggerBy") or "LastPrice")
    if working is None:
        raise BybitError(10001, "params error: triggerBy invalid")
    if engine_params["type"] != "MARKET":
        raise BybitError(10001, "params error: only Market conditional orders are served here")
    trigger = m.price_in(decimal_param(p, "triggerPrice"))
    cfg = m.cfg
    if trigger <= 0 or trigger % cfg.tick:
        raise BybitError(10001, "params error: triggerPrice invalid")
    qty = Decimal(engine_params["quantity"])
    if qty <= 0 or qty % cfg.step or qty < cfg.min_qty or qty > cfg.max_qty:
        raise BybitError(10001, "Qty or price precision is over the maximum allowed")
    side = engine_params["side"]
    now = engine.now_ms()
    order_id = engine.reserve_order_id()
    reduce_only = engine_params["reduceOnly"] == "true"
    held = Order(
        order_id=order_id,
        client_order_id=engine_params["newClientOrderId"],
        symbol=cfg.symbol,
        side=side,
        type="MARKET",
        time_in_force="IOC",
        orig_qty=qty,
        price=Decimal(0),
        reduce_only=reduce_only,
        time_ms=now,
        recv_time_ns=c.recv_ns,
        status="UNTRIGGERED",
        update_time_ms=now,
        orig_type="STOP_MARKET",
        stop_price=trigger,
        working_type=working,
        trigger_direction=int(direction),
    )
    cond = Conditional(
        algo_id=engine.conditionals.next_algo_id(),
        order_id=order_id,
        client_id=held.client_order_id,
        symbol=cfg.symbol,
        side=side,
        type="STOP_MARKET",
        qty=qty,
        trigger_price=trigger,
        direction="up" if direction == "1" else "down",
        working_type=working,
        reduce_only=reduce_only,
        close_position=False,
        price_protect=False,
        time_ms=now,
        venue="bybit",
        update_time_ms=now,
        placeholder=held,
    )
    try:
        engine.conditionals.add(acct, cond)
    except SimError:
        current = m.price_out(engine.conditionals.price_for(cond))
        shown = m.price_out(trigger)
        if direction == "1":
            msg = f"expect Rising, but trigger_price[{shown}] <= current[{current}]"
            raise BybitError(110092, msg) from None
        msg = f"expect Falling, but trigger_price[{shown}] >= current[{current}]"
        raise BybitError(110093, msg) from None
    acct.orders[order_id] = held
    acct.open_orders[order_id] = held
    c.venue.remember(acct, held, link)
    c.order = held
    return {"orderId": order_uuid(order_id), "orderLinkId": link}


def conditional_cancel(c: Call, order: Order) -> None:
    cond = c.engine.conditionals.by_order.get(order.order_id)
    if cond is None or not cond.is_open:
        raise BybitError(110001, "order not exists or too late to cancel")
    c.engine.conditionals.cancel(c.acct, cond)
