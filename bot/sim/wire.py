"""Binance USD-M JSON shapes for orders, trades, positions and user-stream events.

Decimals go out as plain strings (never exponent notation), as Binance sends them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bot.sim.accounts import Account, Order, Position, Trade

if TYPE_CHECKING:
    from bot.sim.conditional import Conditional

_AVG = Decimal("1e-8")


def s(value: Decimal) -> str:
    """A Decimal as Binance writes it: fixed point, no exponent, no trailing zeros."""
    if not value:
        return "0"
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def order_json(order: Order) -> dict[str, Any]:
    return {
        "orderId": order.order_id,
        "symbol": order.symbol,
        "status": order.status,
        "clientOrderId": order.client_order_id,
        "price": s(order.price),
        "avgPrice": s(order.avg_price.quantize(_AVG)),
        "origQty": s(order.orig_qty),
        "executedQty": s(order.executed_qty),
        "cumQty": s(order.executed_qty),
        "cumQuote": s(order.cum_quote),
        "timeInForce": order.time_in_force,
        "type": order.type,
        "origType": order.orig_type or order.type,
        "reduceOnly": order.reduce_only,
        "closePosition": order.close_position,
        "side": order.side,
        "positionSide": "BOTH",
        "stopPrice": s(order.stop_price),
        "workingType": order.working_type,
        "priceProtect": False,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE",
        "goodTillDate": 0,
        "time": order.time_ms,
        "updateTime": order.update_time_ms or order.time_ms,
    }


def admin_order_json(order: Order) -> dict[str, Any]:
    """The order as the admin API reports it, with the wire timestamps the benchmark uses."""
    out = order_json(order)
    out["recvTimeNs"] = order.recv_time_ns
    out["ackTimeNs"] = order.ack_time_ns
    out["engineTimeNs"] = order.engine_time_ns
    return out


def trade_json(trade: Trade) -> dict[str, Any]:
    return {
        "symbol": trade.symbol,
        "id": trade.trade_id,
        "orderId": trade.order_id,
        "side": trade.side,
        "price": s(trade.price),
        "qty": s(trade.qty),
        "realizedPnl": s(trade.realized_pnl),
        "quoteQty": s(trade.quote_qty),
        "commission": s(trade.commission),
        "commissionAsset": trade.commission_asset,
        "time": trade.time_ms,
        "buyer": trade.side == "BUY",
        "maker": trade.maker,
        "positionSide": "BOTH",
        "marginAsset": trade.commission_asset,
    }


def admin_trade_json(trade: Trade) -> dict[str, Any]:
    out = trade_json(trade)
    out["clientOrderId"] = trade.client_order_id
    out["timeNs"] = trade.time_ns
    return out


def position_json(
    symbol: str, pos: Position, mark: Decimal, leverage: int, max_notional: Decimal
) -> dict[str, Any]:
    notional = pos.amt * mark
    initial = abs(notional) / leverage
    return {
        "symbol": symbol,
        "positionSide": "BOTH",
        "positionAmt": s(pos.amt),
        "entryPrice": s(pos.entry_price),
        "breakEvenPrice": s(pos.entry_price),
        "markPrice": s(mark),
        "unRealizedProfit": s(pos.unrealized(mark)),
        "liquidationPrice": "0",
        "isolatedMargin": "0",
        "notional": s(notional),
        "marginAsset": "USDT",
        "isolatedWallet": "0",
        "initialMargin": s(initial),
        "maintMargin": s(abs(notional) * Decimal("0.004")),
        "positionInitialMargin": s(initial),
        "openOrderInitialMargin": "0",
        "adl": 0,
        "bidNotional": "0",
        "askNotional": "0",
        "leverage": str(leverage),
        "maxNotionalValue": s(max_notional),
        "marginType": "cross",
        "isAutoAddMargin": "false",
        "updateTime": pos.update_time_ms,
    }


def order_event(order: Order, exec_type: str, event_ms: int, trade: Trade | None = None) -> dict[str, Any]:
    o: dict[str, Any] = {
        "s": order.symbol,
        "c": order.client_order_id,
        "S": order.side,
        "o": order.type,
        "f": order.time_in_force,
        "q": s(order.orig_qty),
        "p": s(order.price),
        "ap": s(order.avg_price.quantize(_AVG)),
        "sp": s(order.stop_price),
        "x": exec_type,
        "X": order.status,
        "i": order.order_id,
        "l": "0",
        "z": s(order.executed_qty),
        "L": "0",
        "n": "0",
        "N": "USDT",
        "T": event_ms,
        "t": 0,
        "b": "0",
        "a": "0",
        "m": False,
        "R": order.reduce_only,
        "wt": order.working_type,
        "ot": order.orig_type or order.type,
        "ps": "BOTH",
        "cp": order.close_position,
        "rp": "0",
        "pP": False,
        "si": 0,
        "ss": 0,
        "V": "NONE",
        "pm": "NONE",
        "gtd": 0,
    }
    if trade is not None:
        o.update(
            l=s(trade.qty),
            L=s(trade.price),
            n=s(trade.commission),
            N=trade.commission_asset,
            T=trade.time_ms,
            t=trade.trade_id,
            m=trade.maker,
            rp=s(trade.realized_pnl),
        )
    return {"e": "ORDER_TRADE_UPDATE", "E": event_ms, "T": o["T"], "o": o}


def account_event(
    account: Account, symbol: str, mark: Decimal, balance_change: Decimal, event_ms: int
) -> dict[str, Any]:
    pos = account.position(symbol)
    position = {
        "s": symbol,
        "pa": s(pos.amt),
        "ep": s(pos.entry_price),
        "bep": s(pos.entry_price),
        "cr": "0",
        "up": s(pos.unrealized(mark)),
        "mt": "cross",
        "iw": "0",
        "ps": "BOTH",
        "ma": account.asset,
    }
    return _account_update("ORDER", account, balance_change, event_ms, [position])


def funding_event(account: Account, balance_change: Decimal, event_ms: int) -> dict[str, Any]:
    """Binance ("Event: Balance and Position Update"): a funding fee on a cross position pushes
    ACCOUNT_UPDATE with reason FUNDING_FEE and the balance only, no position."""
    return _account_update("FUNDING_FEE", account, balance_change, event_ms, [])


def _account_update(
    reason: str, account: Account, balance_change: Decimal, event_ms: int, positions: list[dict[str, Any]]
) -> dict[str, Any]:
    wallet = s(account.wallet)
    return {
        "e": "ACCOUNT_UPDATE",
        "E": event_ms,
        "T": event_ms,
        "a": {
            "m": reason,
            "B": [{"a": account.asset, "wb": wallet, "cw": wallet, "bc": s(balance_change)}],
            "P": positions,
        },
    }


def algo_json(cond: Conditional) -> dict[str, Any]:
    """A conditional order as Binance's algo endpoints answer it (New / Query / Cancel Algo Order)."""
    order = cond.order
    return {
        "algoId": cond.algo_id,
        "clientAlgoId": cond.client_id,
        "algoType": "CONDITIONAL",
        "orderType": cond.type,
        "symbol": cond.symbol,
        "side": cond.side,
        "positionSide": "BOTH",
        "timeInForce": "GTC",
        "quantity": s(cond.qty),
        "algoStatus": cond.status,
        "actualOrderId": str(order.order_id) if order is not None else "",
        "actualPrice": s(order.avg_price.quantize(_AVG)) if order is not None else "0",
        "triggerPrice": s(cond.trigger_price),
        "price": "0",
        "icebergQuantity": None,
        "selfTradePreventionMode": "NONE",
        "workingType": cond.working_type,
        "priceMatch": "NONE",
        "closePosition": cond.close_position,
        "priceProtect": cond.price_protect,
        "reduceOnly": cond.reduce_only,
        "createTime": cond.time_ms,
        "updateTime": cond.update_time_ms or cond.time_ms,
        "triggerTime": cond.trigger_time_ms,
        "goodTillDate": 0,
    }


def algo_event(cond: Conditional, event_ms: int) -> dict[str, Any]:
    """ALGO_UPDATE as Binance's user data stream sends it ("Event: Algo Order Update")."""
    order = cond.order
    return {
        "e": "ALGO_UPDATE",
        "T": event_ms,
        "E": event_ms,
        "o": {
            "caid": cond.client_id,
            "aid": cond.algo_id,
            "at": "CONDITIONAL",
            "o": cond.type,
            "s": cond.symbol,
            "S": cond.side,
            "ps": "BOTH",
            "f": "GTC",
            "q": s(cond.qty),
            "X": cond.status,
            "ai": str(order.order_id) if order is not None else "",
            "ap": s(order.avg_price.quantize(_AVG)) if order is not None else "0",
            "aq": s(order.executed_qty) if order is not None else "0",
            "act": order.type if order is not None else "0",
            "tp": s(cond.trigger_price),
            "p": "0",
            "V": "NONE",
            "wt": cond.working_type,
            "pm": "NONE",
            "cp": cond.close_position,
            "pP": cond.price_protect,
            "R": cond.reduce_only,
            "tt": cond.trigger_time_ms,
            "gtd": 0,
            "rm": cond.reject_reason,
        },
    }
