"""Bybit adapter pieces without a network: the orderLinkId alphabet, decoding of raw V5 rows and
frames, and the error taxonomy (duplicate, benign, the codes copying meets)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from bot.core.clientid import client_order_id, intent_prefix, parse
from bot.core.errors import ErrorKind
from bot.core.types import LeadFill, OrderStatus, Side
from bot.venues import adapter_for
from bot.venues.bybit import decode, keys
from bot.venues.bybit.adapter import BYBIT

ORDER_LINK_ID = re.compile(r"^[A-Za-z0-9_-]{1,36}$")


class Markets:
    """The one thing the decoders ask of a ccxt client: the unified market of a venue id."""

    def safe_market(self, market_id: str, *_: Any) -> dict[str, Any]:
        return {"symbol": {"BTCUSDT": "BTC/USDT:USDT", "PEPEUSDT": "PEPE/USDT:USDT"}[market_id]}


def _err(cls: type[Exception], code: int, msg: str) -> Exception:
    return cls(f'bybit {{"retCode":{code},"retMsg":"{msg}","result":{{}},"retExtInfo":{{}},"time":1}}')


def test_registered_for_ccxt_bybit() -> None:
    assert adapter_for("bybit") is BYBIT
    assert BYBIT.backfill_page_limit == 100


@pytest.mark.parametrize("leg", [0, 7, 12345])
def test_client_ids_fit_order_link_id_and_still_parse(leg: int) -> None:
    cid = client_order_id("lead", "9f1c-exec-uuid", "follower-1", "PEPE/USDT:USDT", leg, BYBIT.client_ids)
    assert ORDER_LINK_ID.match(cid)
    assert "." not in cid
    assert len(cid) <= 36
    parsed = parse(cid)
    assert parsed is not None
    assert parsed[2] == leg
    assert intent_prefix(cid).endswith("-")
    # The same intent on a dotted venue differs only in the separator: old journal ids still parse.
    dotted = client_order_id("lead", "9f1c-exec-uuid", "follower-1", "PEPE/USDT:USDT", leg)
    assert dotted.replace(".", "-") == cid
    assert parse(dotted) == parsed


def test_order_params_carry_the_link_id() -> None:
    params = BYBIT.order_params("cb-x-y-0", reduce_only=True, ioc=True)
    assert params["orderLinkId"] == "cb-x-y-0"
    assert params["reduceOnly"] is True
    assert params["timeInForce"] == "IOC"
    assert "clientOrderId" not in params
    assert "reduceOnly" not in BYBIT.order_params("cb-x-y-0", reduce_only=False, ioc=False)


def test_create_reply_is_unknown_without_error_so_the_executor_looks_it_up() -> None:
    reply = {"id": "abc", "status": None, "filled": 0.0, "info": {"orderId": "abc", "orderLinkId": "cb-1"}}
    outcome = BYBIT.order_outcome(reply, "cb-1")
    assert outcome.status is OrderStatus.UNKNOWN
    assert outcome.error is None
    assert outcome.order_id == "abc"


@pytest.mark.parametrize(
    ("info", "status", "filled"),
    [
        (
            {"orderStatus": "Filled", "cumExecQty": "0.013", "avgPrice": "60001.5"},
            OrderStatus.FILLED,
            "0.013",
        ),
        ({"orderStatus": "New", "cumExecQty": "0", "avgPrice": ""}, OrderStatus.NEW, "0"),
        ({"orderStatus": "PartiallyFilled", "cumExecQty": "0.004"}, OrderStatus.PARTIALLY_FILLED, "0.004"),
        (
            {"orderStatus": "Cancelled", "cumExecQty": "0.002", "orderType": "Market", "timeInForce": "IOC"},
            OrderStatus.EXPIRED,
            "0.002",
        ),
        (
            {"orderStatus": "Cancelled", "cumExecQty": "0", "orderType": "Limit", "timeInForce": "GTC"},
            OrderStatus.CANCELED,
            "0",
        ),  # fmt: skip
        ({"orderStatus": "Rejected", "cumExecQty": "0"}, OrderStatus.REJECTED, "0"),
    ],
)
def test_order_status_and_fills_from_raw_strings(
    info: dict[str, Any], status: OrderStatus, filled: str
) -> None:
    order = {"id": "o1", "status": "closed", "filled": 0.1 + 0.2, "info": {"orderId": "o1", **info}}
    outcome = BYBIT.order_outcome(order, "cb-1")
    assert outcome.status is status
    assert outcome.filled_qty == Decimal(filled)
    if status is OrderStatus.FILLED:
        assert outcome.avg_price == Decimal("60001.5")


def test_market_spec_prefers_raw_filters() -> None:
    market = {
        "symbol": "PEPE/USDT:USDT", "id": "PEPEUSDT", "base": "PEPE", "quote": "USDT", "settle": "USDT",
        "contractSize": 1.0, "precision": {"amount": 1000.0, "price": 1e-10}, "limits": {},
        "info": {"lotSizeFilter": {"qtyStep": "1000", "minOrderQty": "1000", "maxOrderQty": "900000000000",
                                   "maxMktOrderQty": "300000000000", "minNotionalValue": "5"},
                 "priceFilter": {"tickSize": "0.0000000001"}},
    }  # fmt: skip
    spec = BYBIT.market_spec(market)
    assert (spec.step, spec.min_qty, spec.max_qty) == (Decimal(1000), Decimal(1000), Decimal(300_000_000_000))
    assert (spec.tick, spec.min_notional) == (Decimal("1E-10"), Decimal(5))


def test_positions_are_signed_by_side_and_equity_is_the_coins() -> None:
    rows = [
        {"symbol": "BTC/USDT:USDT", "contracts": 0.1,
         "info": {"size": "0.1", "side": "Sell", "avgPrice": "60000.1", "updatedTime": "17",
                  "leverage": "7"}},
        {"symbol": "PEPE/USDT:USDT", "contracts": 0.0,
         "info": {"size": "0", "side": "", "avgPrice": "", "updatedTime": "", "leverage": "5"}},
    ]  # fmt: skip
    positions = BYBIT.positions(rows)
    assert positions["BTC/USDT:USDT"].qty == Decimal("-0.1")
    assert positions["BTC/USDT:USDT"].entry_price == Decimal("60000.1")
    assert positions["BTC/USDT:USDT"].leverage == 7
    assert positions["PEPE/USDT:USDT"].qty == 0
    coins = [{"coin": "USDT", "equity": "1234.56"}]
    balance = {"total": {"USDT": 1.0}, "info": {"result": {"list": [{"totalEquity": "9", "coin": coins}]}}}
    assert BYBIT.equity(balance) == Decimal("1234.56")


def _execution(**over: Any) -> dict[str, Any]:
    row = {"category": "linear", "symbol": "PEPEUSDT", "execId": "e1", "orderId": "o1", "orderLinkId": "",
           "side": "Sell", "execPrice": "0.0000123", "execQty": "3000000", "execType": "Trade",
           "execTime": "1700000000123"}  # fmt: skip
    return {**row, **over}


@pytest.mark.parametrize("exec_type", ["Trade", "BustTrade", "AdlTrade"])
def test_position_moving_executions_become_fills(exec_type: str) -> None:
    fill = decode.fill_from_execution("lead", Markets(), _execution(execType=exec_type), "rest")
    assert fill is not None
    assert (fill.symbol, fill.side, fill.qty, fill.price) == (
        "PEPE/USDT:USDT", Side.SELL, Decimal(3_000_000), Decimal("0.0000123"),
    )  # fmt: skip
    assert (fill.trade_id, fill.ts_ms, fill.client_order_id) == ("e1", 1700000000123, None)


@pytest.mark.parametrize("exec_type", ["Funding", "Settle", "Delivery"])
def test_funding_and_settlement_are_not_fills(exec_type: str) -> None:
    assert decode.fill_from_execution("lead", Markets(), _execution(execType=exec_type), "rest") is None


def test_stream_decoder_returns_every_fill_of_a_frame() -> None:
    decode_frame = BYBIT.stream_decoder("lead", Markets())
    assert decode_frame is not None
    frame = {"topic": "execution", "id": "x", "creationTime": 1, "data": [
        _execution(execId="e1"), _execution(execId="e2", execType="AdlTrade"),
        _execution(execId="e3", execType="Funding"),
        _execution(execId="e4", symbol="BTCUSDT", side="Buy", execPrice="6E4", execQty="0.001")]}  # fmt: skip
    event = decode_frame(frame)
    assert isinstance(event, tuple)
    assert [f.trade_id for f in event] == ["e1", "e2", "e4"]
    assert all(isinstance(f, LeadFill) and f.source == "ws" for f in event)
    assert decode_frame({"topic": "order", "data": [{"orderStatus": "Filled"}]}) is None
    assert decode_frame({"op": "pong", "args": ["1"]}) is None


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (_err(ccxt.InvalidOrder, 110072, "OrderLinkedID is duplicate"), ErrorKind.DUPLICATE),
        (_err(ccxt.InsufficientFunds, 110007, "ab not enough for new order"), ErrorKind.INSUFFICIENT_FUNDS),
        (_err(ccxt.InvalidOrder, 110017, "reduce-only rule not satisfied"), ErrorKind.INVALID_ORDER),
        (_err(ccxt.BadRequest, 10001, "params error"), ErrorKind.INVALID_ORDER),
        (
            _err(ccxt.InvalidNonce, 10002, "invalid request, please check your server timestamp"),
            ErrorKind.TEMPORARY,
        ),
        (_err(ccxt.AuthenticationError, 10003, "API key is invalid."), ErrorKind.AUTH),
        (_err(ccxt.AuthenticationError, 10004, "error sign!"), ErrorKind.AUTH),
        (_err(ccxt.RateLimitExceeded, 10006, "Too many visits!"), ErrorKind.RATE_LIMITED),
        (_err(ccxt.OrderNotFound, 110001, "order not exists or too late to cancel"), ErrorKind.NOT_FOUND),
        (
            ccxt.RequestTimeout("bybit POST https://api.bybit.com/v5/order/create timed out"),
            ErrorKind.AMBIGUOUS,
        ),
    ],
)
def test_error_kinds_when_placing(exc: Exception, kind: ErrorKind) -> None:
    assert BYBIT.classify(exc, placing=True) is kind


@pytest.mark.parametrize(
    ("exc", "benign"),
    [
        (_err(ccxt.BadRequest, 110043, "Set leverage not modified"), True),
        (_err(ccxt.MarginModeAlreadySet, 110026, "Cross/isolated margin mode is not modified"), True),
        (_err(ccxt.NoChange, 110027, "Margin is not modified"), True),
        (_err(ccxt.BadRequest, 10001, "leverage invalid"), False),
        (_err(ccxt.InvalidOrder, 110072, "OrderLinkedID is duplicate"), False),
        (ccxt.NetworkError("connection reset"), False),
    ],
)
def test_benign_answers(exc: Exception, benign: bool) -> None:
    assert BYBIT.is_benign(exc) is benign


@pytest.mark.parametrize(
    ("wallet", "withdraws"),
    [(["AccountTransfer", "Withdraw"], True), (["AccountTransfer"], False), ([], False)],
)
def test_withdraw_permission(wallet: list[str], withdraws: bool) -> None:
    reply = {
        "retCode": 0,
        "result": {"readOnly": 0, "permissions": {"ContractTrade": ["Order"], "Wallet": wallet}},
    }
    assert keys.may_withdraw(reply) is withdraws
