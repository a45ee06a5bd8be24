"""Binance USD-M futures behind the venue seam (bot.venues.base.VenueAdapter)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt

from bot.core.clientid import DOTTED, ClientIdFormat
from bot.core.errors import ErrorKind
from bot.core.manual import AccountOrder
from bot.core.protect import ProtectStatus
from bot.core.types import IncomeRecord, LeadFill, MarketSpec, OrderOutcome, PositionSnapshot
from bot.venues import ccxt_common
from bot.venues.base import StreamDecoder, VenueMode
from bot.venues.binance import decode, income, keys, limits, protect, stream, urls
from bot.venues.errors import classify

# -4116 (futures) or -2010 "Duplicate order sent." (spot): the client id is in use.
_DUPLICATE = re.compile(r'"code"\s*:\s*-4116|Duplicate order|ClientOrderId is duplicated', re.IGNORECASE)
# Rejected before execution, so a new request is safe: -1021 (timestamp outside recvWindow at the
# gateway), -5028 (outside recvWindow when it reached the matching engine).
_NOT_EXECUTED = re.compile(r'"code"\s*:\s*-(?:1021|5028)\b|outside of the (?:ME )?recvWindow', re.IGNORECASE)
# -4046 "No need to change margin type.", -4028 leverage unchanged is not an error on Binance.
_BENIGN = re.compile(r'"code"\s*:\s*-4046|No need to change', re.IGNORECASE)


class BinanceAdapter:
    name = "binance"
    client_ids: ClientIdFormat = DOTTED  # `^[\.A-Z\:/a-z0-9_-]{1,36}$`
    backfill_page_limit = 1000  # GET /fapi/v1/userTrades `limit` maximum
    weight_limit_1m: int | None = limits.WEIGHT_LIMIT_1M
    used_weight_header: str | None = limits.USED_WEIGHT_HEADER
    # Query Order drops only canceled / expired orders WITHOUT fills after 3 days: a lookup that
    # finds nothing still means nothing filled.
    lookup_reach_ms: int | None = None

    def sim_urls(self, rest_url: str, ws_url: str) -> dict[str, Any]:
        return urls.sim_urls(rest_url, ws_url)

    def base_options(self) -> dict[str, Any]:
        return dict(urls.BASE_OPTIONS)

    def prepare(self, exchange: Any, mode: VenueMode) -> Any:
        if mode is VenueMode.TESTNET:
            # ccxt 4.5 refuses private calls to Binance's futures testnet without this acknowledgement.
            exchange.options["disableFuturesSandboxWarning"] = True
        ccxt_common.apply_mode(exchange, mode)
        # The linear error codes (-2019 InsufficientFunds, -4164 InvalidOrder, ...) are applied by
        # ccxt only for real fapi hosts; merge them so every mode maps them the same way.
        linear = (getattr(exchange, "exceptions", {}) or {}).get("linear", {}).get("exact", {})
        if linear:
            exchange.exceptions["exact"] = {**exchange.exceptions.get("exact", {}), **linear}
        return exchange

    def market_spec(self, market: dict[str, Any]) -> MarketSpec:
        return decode.market_spec(market)

    def positions(self, rows: list[dict[str, Any]]) -> dict[str, PositionSnapshot]:
        return decode.positions(rows)

    def equity(self, balance: dict[str, Any], settle: str = "USDT") -> Decimal:
        return decode.equity(balance, settle)

    def order_outcome(self, order: dict[str, Any], client_order_id: str) -> OrderOutcome:
        return decode.order_outcome(order, client_order_id)

    def stream_decoder(self, lead: str, exchange: Any) -> StreamDecoder | None:
        return stream.decoder(lead, exchange)

    async def fetch_by_client_id(self, client: Any, symbol: str, client_order_id: str) -> dict[str, Any]:
        order: dict[str, Any] = await client.fetch_order(None, symbol, {"origClientOrderId": client_order_id})
        return order

    async def account_orders(self, client: Any, symbol: str, since_ms: int) -> list[AccountOrder]:
        # GET /fapi/v1/allOrders: up to 1,000 orders from startTime, weight 5.
        orders = await client.fetch_orders(symbol, since_ms, 1000)
        return [
            ccxt_common.account_order(
                o,
                filled=o["info"].get("executedQty"),
                client_order_id=o["info"].get("clientOrderId", ""),
                ts_ms=o["info"].get("updateTime") or o["info"].get("time"),
            )
            for o in orders
        ]

    def order_params(
        self,
        client_order_id: str,
        *,
        reduce_only: bool,
        ioc: bool,
        timestamp_ms: int | None = None,
        recv_window_ms: int | None = None,
    ) -> dict[str, Any]:
        params = ccxt_common.order_flags({"clientOrderId": client_order_id}, reduce_only=reduce_only, ioc=ioc)
        # ccxt signs `timestamp` and `recvWindow` from params when given (else its own clock and
        # options['recvWindow'], 10 s): the executor must know both exactly.
        if timestamp_ms is not None:
            params["timestamp"] = timestamp_ms
        if recv_window_ms is not None:
            params[limits.RECV_WINDOW_PARAM] = recv_window_ms
        return params

    def landing_window_ms(self, recv_window_ms: int) -> int:
        return limits.landing_window_ms(recv_window_ms)

    async def server_time_ms(self, client: Any) -> int:
        return int(await client.fetch_time())

    async def watch_marks(self, client: Any, symbols: list[str]) -> dict[str, Decimal]:
        # markPriceUpdate events (`<symbol>@markPrice@1s`, every second) carry the mark in `p`.
        await client.watch_mark_prices(symbols)
        return ccxt_common.marks_from_tickers(ccxt_common.cached_tickers(client, symbols), "p")

    def weight(self, call: str) -> int:
        return limits.WEIGHTS.get(call, limits.DEFAULT_WEIGHT)

    async def income(self, client: Any, since_ms: int) -> list[IncomeRecord]:
        return await income.fetch(client, since_ms)

    async def backfill(
        self, rest: Any, lead: str, symbol: str, since_ms: int, limit: int
    ) -> AsyncIterator[list[LeadFill]]:
        since = since_ms
        limit = min(limit, self.backfill_page_limit)
        while True:
            trades = await rest.fetch_my_trades(symbol, since=since, limit=limit)
            yield [_fill(lead, t) for t in trades]
            if len(trades) < limit:
                return
            newest = max(int(t.get("timestamp") or 0) for t in trades)
            if newest <= since:
                return
            since = newest

    async def key_problem(self, client: Any, mode: VenueMode, *, allow_withdrawal: bool) -> str | None:
        return await keys.key_problem(client, mode, allow_withdrawal=allow_withdrawal)

    def protect_params(
        self, kind: str, trigger_price: Decimal, client_order_id: str
    ) -> dict[str, Any] | None:
        return protect.params(kind, trigger_price, client_order_id)

    async def protect_status(self, client: Any, symbol: str, client_order_id: str) -> ProtectStatus:
        return await protect.status(client, symbol, client_order_id)

    async def cancel_protect(self, client: Any, symbol: str, client_order_id: str) -> bool:
        return await protect.cancel(client, symbol, client_order_id)

    def classify(self, exc: BaseException, *, placing: bool = False) -> ErrorKind:
        if isinstance(exc, ccxt.ExchangeError) and _NOT_EXECUTED.search(str(exc)):
            return ErrorKind.TEMPORARY
        return classify(exc, placing=placing, duplicate=_DUPLICATE)

    def is_benign(self, exc: BaseException) -> bool:
        return isinstance(exc, ccxt.ExchangeError) and bool(_BENIGN.search(str(exc)))


def _fill(lead: str, trade: dict[str, Any]) -> LeadFill:
    info = trade.get("info") or {}
    return ccxt_common.fill_from_trade(
        lead,
        trade,
        "rest",
        qty=info.get("qty"),
        price=info.get("price"),
        client_order_id=info.get("clientOrderId"),
    )


BINANCE = BinanceAdapter()
