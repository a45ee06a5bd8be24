"""The Bybit personality's account history besides trades: funding as executions (execType
`Funding`) and the unified account's transaction log (`GET /v5/account/transaction-log`).

Bybit ("Get Trade History", "Get Transaction Log"): a funding settlement is an execution with
execType Funding, execFee the fee paid (positive: paid, negative: received), execPrice the mark and
execQty the position size, no order; in the transaction log it is a SETTLEMENT row whose `funding`
is positive when received. A trade is a TRADE row: `fee` positive when paid, `cashFlow` the
realized PnL, `change` = cashFlow + funding - fee, `cashBalance` the wallet after it."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from bot.sim.accounts import Account, Funding, Trade
from bot.sim.bybit.call import DAY_MS, Call, category_of, cursor_page, int_param, symbol_filter
from bot.sim.bybit.venue import BybitError, BybitMarket, BybitVenue, order_uuid
from bot.sim.wire import s

ZERO = Decimal(0)
_LOG_TYPES = frozenset(
    {"TRANSFER_IN", "TRANSFER_OUT", "TRADE", "SETTLEMENT", "DELIVERY", "LIQUIDATION", "BONUS",
     "FEE_REFUND", "INTEREST", "CURRENCY_BUY", "CURRENCY_SELL"}
)  # fmt: skip


def funding_exec_id(funding: Funding) -> str:
    return str(uuid.UUID(int=(0xF0F0 << 96) | funding.funding_id))


def row_key(time_ms: int, row_id: int, funding: bool) -> int:
    """A cursor key that orders trades and fundings together by time (newest first)."""
    return (time_ms * 1_000_000 + row_id % 1_000_000) * 2 + (1 if funding else 0)


def funding_execution_json(venue: BybitVenue, f: Funding, *, stream: bool = False) -> dict[str, Any]:
    m = venue.by_engine[f.symbol]
    out: dict[str, Any] = {
        "symbol": m.symbol,
        "orderType": "UNKNOWN",
        "underlyingPrice": "",
        "orderLinkId": "",
        "side": "Buy" if f.position_amt > 0 else "Sell",
        "indexPrice": "",
        "orderId": "",
        "stopOrderType": "UNKNOWN",
        "leavesQty": "0",
        "execTime": str(venue.ms(f.time_ms)),
        "feeCurrency": "",
        "isMaker": False,
        "execFee": s(-f.amount),
        "feeRate": s(f.rate),
        "execId": funding_exec_id(f),
        "tradeIv": "",
        "blockTradeId": "",
        "markPrice": s(m.price_out(f.mark)),
        "execPrice": s(m.price_out(f.mark)),
        "markIv": "",
        "orderQty": "0",
        "orderPrice": "0",
        "execValue": s(abs(f.position_amt) * f.mark),
        "execType": "Funding",
        "execQty": s(m.qty_out(abs(f.position_amt))),
        "closedSize": "0",
        "seq": f.funding_id,
    }
    if stream:
        out["category"] = "linear"
        out["isLeverage"] = "0"
    return out


def _log_window(c: Call) -> tuple[int, int]:
    """Bybit: neither time given -> the last 24 hours; one -> 24 hours from / to it; both -> at
    most 7 days apart. Returned on the engine's clock."""
    start, end = int_param(c.params, "startTime", 0), int_param(c.params, "endTime", 0)
    if start and end:
        if end < start or end - start > 7 * DAY_MS:
            raise BybitError(10001, "params error: the time range must be within 7 days")
    elif start:
        end = start + DAY_MS
    elif end:
        start = end - DAY_MS
    else:
        end = c.venue.now_ms() + 1000
        start = end - DAY_MS
    return c.venue.engine_ms(start), c.venue.engine_ms(end)


def _trade_row(venue: BybitVenue, m: BybitMarket, t: Trade, acct: Account) -> dict[str, Any]:
    order = acct.orders[t.order_id]
    change = t.realized_pnl - t.commission
    pos = acct.position(t.symbol)
    return {
        "symbol": m.symbol, "category": "linear", "side": "Buy" if t.side == "BUY" else "Sell",
        "transactionTime": str(venue.ms(t.time_ms)), "type": "TRADE", "transSubType": "",
        "qty": s(m.qty_out(t.qty)), "size": s(m.qty_out(pos.amt)), "currency": acct.asset,
        "tradePrice": s(m.price_out(t.price)), "funding": "0", "fee": s(t.commission),
        "cashFlow": s(t.realized_pnl), "change": s(change), "feeRate": s(t.commission / t.quote_qty),
        "bonusChange": "", "tradeId": str(t.trade_id), "orderId": order_uuid(t.order_id),
        "orderLinkId": venue.link(order), "id": f"t{t.trade_id}",
    }  # fmt: skip


def _funding_row(venue: BybitVenue, m: BybitMarket, f: Funding, acct: Account) -> dict[str, Any]:
    return {
        "symbol": m.symbol, "category": "linear", "side": "Buy" if f.position_amt > 0 else "Sell",
        "transactionTime": str(venue.ms(f.time_ms)), "type": "SETTLEMENT", "transSubType": "",
        "qty": s(m.qty_out(abs(f.position_amt))), "size": s(m.qty_out(f.position_amt)),
        "currency": acct.asset, "tradePrice": s(m.price_out(f.mark)), "funding": s(f.amount),
        "fee": "0", "cashFlow": "0", "change": s(f.amount), "feeRate": s(f.rate), "bonusChange": "",
        "tradeId": "", "orderId": "", "orderLinkId": "", "id": f"f{f.funding_id}",
    }  # fmt: skip


def transaction_log(c: Call) -> Any:
    acct, venue = c.acct, c.venue
    if c.params.get("accountType", "UNIFIED") != "UNIFIED":
        raise BybitError(10001, "accountType only support UNIFIED.")
    if c.params.get("category"):
        category_of(c)
    kind = c.params.get("type", "")
    if kind and kind not in _LOG_TYPES:
        raise BybitError(10001, "params error: type invalid")
    currency = c.params.get("currency", "")
    m_filter = symbol_filter(c) if c.params.get("symbol") else None
    start, end = _log_window(c)
    # Every row's wallet balance after it: the current wallet less the changes that came later.
    rows: list[tuple[int, Decimal, dict[str, Any]]] = []
    for t in acct.trades:
        m = venue.by_engine[t.symbol]
        rows.append((row_key(t.time_ms, t.trade_id, False), t.realized_pnl - t.commission,
                     _trade_row(venue, m, t, acct)))  # fmt: skip
    for f in acct.fundings:
        m = venue.by_engine[f.symbol]
        rows.append((row_key(f.time_ms, f.funding_id, True), f.amount, _funding_row(venue, m, f, acct)))
    rows.sort(key=lambda r: r[0], reverse=True)
    balance = acct.wallet
    picked: list[tuple[int, dict[str, Any]]] = []
    for key, change, row in rows:
        row["cashBalance"] = s(balance)
        balance -= change
        t_ms = venue.engine_ms(int(row["transactionTime"]))
        if (
            start <= t_ms <= end
            and (not kind or row["type"] == kind)
            and (not currency or currency == acct.asset)
            and (m_filter is None or row["symbol"] == m_filter.symbol)
        ):
            picked.append((key, row))
    page, cursor = cursor_page(picked, c, lambda r: r[0], 20, 50)
    return {"list": [r[1] for r in page], "nextPageCursor": cursor}
