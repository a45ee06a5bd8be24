"""Bybit V5 JSON shapes (category linear) for orders, executions, positions and the wallet, in REST
replies and private-stream frames. Numbers are strings, as Bybit sends them."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from bot.sim.accounts import Account, Order, Position, Trade
from bot.sim.bybit.venue import BybitMarket, BybitVenue, exec_uuid, order_uuid
from bot.sim.matching import MatchingEngine
from bot.sim.wire import s

ZERO = Decimal(0)
_AVG = Decimal("1e-8")  # engine-side precision of an average, before the venue scaling
_RATE = Decimal("0.0001")
_STATUS = {
    "NEW": "New",
    "PARTIALLY_FILLED": "PartiallyFilled",
    "FILLED": "Filled",
    "CANCELED": "Cancelled",
    "EXPIRED": "Cancelled",  # derivatives: an IOC / market remainder is "Cancelled" (may have fills)
    # a conditional order before it becomes a market order (bot.sim.conditional)
    "UNTRIGGERED": "Untriggered",
    "TRIGGERED": "Triggered",
    "DEACTIVATED": "Deactivated",
}
_TRIGGER_BY = {"MARK_PRICE": "MarkPrice", "CONTRACT_PRICE": "LastPrice"}
_TIF = {"GTC": "GTC", "IOC": "IOC", "FOK": "FOK", "GTX": "PostOnly"}


def order_status(order: Order) -> str:
    return _STATUS.get(order.status, order.status)


def order_json(
    venue: BybitVenue, order: Order, fee: Decimal = ZERO, *, stream: bool = False
) -> dict[str, Any]:
    m = venue.by_engine[order.symbol]
    market = order.type == "MARKET"
    leaves = m.qty_out(order.remaining) if order.is_open else ZERO
    price = m.price_out(order.price)
    cancel_type = "UNKNOWN"
    reject = "EC_NoError"
    if order.status == "CANCELED":
        cancel_type = "CancelByUser"
    elif order.status == "EXPIRED" and order.time_in_force == "GTX":
        reject = "EC_PostOnlyWillTakeLiquidity"
    out: dict[str, Any] = {
        "orderId": order_uuid(order.order_id),
        "orderLinkId": venue.link(order),
        "blockTradeId": "",
        "symbol": m.symbol,
        "price": s(price),
        "qty": s(m.qty_out(order.orig_qty)),
        "side": "Buy" if order.is_buy else "Sell",
        "isLeverage": "",
        "positionIdx": 0,
        "orderStatus": order_status(order),
        "createType": "CreateByUser",
        "cancelType": cancel_type,
        "rejectReason": reject,
        "avgPrice": s(m.price_out(order.avg_price.quantize(_AVG))) if order.executed_qty else "",
        "leavesQty": s(leaves),
        "leavesValue": s(leaves * price),
        "cumExecQty": s(m.qty_out(order.executed_qty)),
        "cumExecValue": s(order.cum_quote),
        "cumExecFee": s(fee),
        "timeInForce": "IOC" if market else _TIF.get(order.time_in_force, order.time_in_force),
        "orderType": "Market" if market else "Limit",
        "stopOrderType": "Stop" if order.orig_type else "",
        "orderIv": "",
        "marketUnit": "",
        "triggerPrice": s(m.price_out(order.stop_price)) if order.orig_type else "",
        "takeProfit": "",
        "stopLoss": "",
        "tpslMode": "",
        "ocoTriggerBy": "",
        "tpLimitPrice": "",
        "slLimitPrice": "",
        "tpTriggerBy": "",
        "slTriggerBy": "",
        "triggerDirection": order.trigger_direction,
        "triggerBy": _TRIGGER_BY[order.working_type] if order.orig_type else "",
        "lastPriceOnCreated": "",
        "reduceOnly": order.reduce_only,
        "closeOnTrigger": False,
        "placeType": "",
        "smpType": "None",
        "smpGroup": 0,
        "smpOrderId": "",
        "createdTime": str(venue.ms(order.time_ms)),
        "updatedTime": str(venue.ms(order.update_time_ms or order.time_ms)),
    }
    if stream:
        out["category"] = "linear"
        out["feeCurrency"] = ""
    return out


def fees_by_order(account: Account, orders: list[Order]) -> dict[int, Decimal]:
    """Cumulative fee per order, from the account's fills newest first back to the oldest order's
    creation (fills are appended in time order), so a page costs the fills since then, not all."""
    wanted = {o.order_id: o.time_ms for o in orders if o.executed_qty}
    fees: dict[int, Decimal] = {}
    if wanted:
        since = min(wanted.values())
        for t in reversed(account.trades):
            if t.time_ms < since:
                break
            if t.order_id in wanted:
                fees[t.order_id] = fees.get(t.order_id, ZERO) + t.commission
    return fees


def execution_json(
    venue: BybitVenue, trade: Trade, order: Order, mark: Decimal, *, stream: bool = False
) -> dict[str, Any]:
    m = venue.by_engine[trade.symbol]
    cfg = m.cfg
    out: dict[str, Any] = {
        "symbol": m.symbol,
        "orderType": "Market" if order.type == "MARKET" else "Limit",
        "underlyingPrice": "",
        "orderLinkId": venue.link(order),
        "side": "Buy" if trade.side == "BUY" else "Sell",
        "indexPrice": "",
        "orderId": order_uuid(order.order_id),
        "stopOrderType": "UNKNOWN",
        "leavesQty": s(m.qty_out(order.remaining) if order.is_open else ZERO),
        "execTime": str(venue.ms(trade.time_ms)),
        "feeCurrency": "",
        "isMaker": trade.maker,
        "execFee": s(trade.commission),
        "feeRate": s(cfg.maker_fee if trade.maker else cfg.taker_fee),
        "execId": exec_uuid(trade.trade_id),
        "tradeIv": "",
        "blockTradeId": "",
        "markPrice": s(m.price_out(mark)),
        "execPrice": s(m.price_out(trade.price)),
        "markIv": "",
        "orderQty": s(m.qty_out(order.orig_qty)),
        "orderPrice": s(m.price_out(order.price)),
        "execValue": s(trade.quote_qty),
        "execType": "Trade",
        "execQty": s(m.qty_out(trade.qty)),
        "closedSize": "0",
        "seq": trade.trade_id,
    }
    if stream:
        out["category"] = "linear"
        out["isLeverage"] = "0"
    return out


def position_json(
    venue: BybitVenue,
    m: BybitMarket,
    account: Account,
    pos: Position,
    mark: Decimal,
    cum_realised: Decimal,
    *,
    stream: bool = False,
) -> dict[str, Any]:
    lev = account.leverage_of(m.engine_symbol)
    value = abs(pos.amt) * mark
    im = value / lev
    side = "" if not pos.amt else ("Buy" if pos.amt > 0 else "Sell")
    entry = s(m.price_out(pos.entry_price))
    out: dict[str, Any] = {
        "positionIdx": 0,
        "riskId": 1,
        "riskLimitValue": s(m.cfg.max_qty * m.cfg.price),
        "symbol": m.symbol,
        "side": side,
        "size": s(m.qty_out(abs(pos.amt))),
        "avgPrice": entry,
        "positionValue": s(value),
        "tradeMode": 0,
        "positionStatus": "Normal",
        "autoAddMargin": 0,
        "adlRankIndicator": 2 if pos.amt else 0,
        "leverage": str(lev),
        "positionBalance": s(im),
        "markPrice": s(m.price_out(mark)),
        "liqPrice": "",
        "bustPrice": "",
        "positionMM": s(value * Decimal("0.005")),
        "positionIM": s(im),
        "tpslMode": "Full",
        "takeProfit": "0",
        "stopLoss": "0",
        "trailingStop": "0",
        "unrealisedPnl": s(pos.unrealized(mark)),
        "curRealisedPnl": "0",
        "cumRealisedPnl": s(cum_realised),
        "sessionAvgPrice": "",
        "isReduceOnly": False,
        "mmrSysUpdatedTime": "",
        "leverageSysUpdatedTime": "",
        "createdTime": str(venue.ms(account.update_time_ms)),
        "updatedTime": str(venue.ms(pos.update_time_ms or account.update_time_ms)),
        "seq": pos.update_time_ms,
    }
    if stream:
        out["entryPrice"] = entry
        out["category"] = "linear"
    return out


def wallet_json(engine: MatchingEngine, account: Account, cum_realised: Decimal) -> dict[str, Any]:
    marks = engine.marks()
    upnl = account.unrealized(marks)
    pos_im = ZERO
    pos_mm = ZERO
    for symbol, pos in account.positions.items():
        if pos.amt:
            value = abs(pos.amt) * marks[symbol]
            pos_im += value / account.leverage_of(symbol)
            pos_mm += value * Decimal("0.005")
    order_im = account.initial_margin(marks) - pos_im
    equity = account.wallet + upnl
    available = equity - pos_im - order_im
    coin = {
        "coin": account.asset,
        "equity": s(equity),
        "usdValue": s(equity),
        "walletBalance": s(account.wallet),
        "availableToWithdraw": "",  # deprecated for UTA accounts: empty, as Bybit sends it
        "availableToBorrow": "",
        "borrowAmount": "0",
        "accruedInterest": "0",
        "totalOrderIM": s(order_im),
        "totalPositionIM": s(pos_im),
        "totalPositionMM": s(pos_mm),
        "unrealisedPnl": s(upnl),
        "cumRealisedPnl": s(cum_realised),
        "bonus": "0",
        "collateralSwitch": True,
        "marginCollateral": True,
        "locked": "0",
        "spotHedgingQty": "0",
    }
    return {
        "accountType": "UNIFIED",
        "accountIMRate": s(((pos_im + order_im) / equity).quantize(_RATE)) if equity > 0 else "0",
        "accountMMRate": s((pos_mm / equity).quantize(_RATE)) if equity > 0 else "0",
        "accountLTV": "0",
        "totalEquity": s(equity),
        "totalWalletBalance": s(account.wallet),
        "totalMarginBalance": s(equity),
        "totalAvailableBalance": s(available),
        "totalPerpUPL": s(upnl),
        "totalInitialMargin": s(pos_im + order_im),
        "totalMaintenanceMargin": s(pos_mm),
        "coin": [coin],
    }
