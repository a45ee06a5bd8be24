"""Bybit V5 (linear USDT perpetuals, unified account) behind the venue seam
(bot.venues.base.VenueAdapter). ccxt id "bybit"."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt

from bot.core.clientid import ClientIdFormat
from bot.core.errors import ErrorKind
from bot.core.manual import AccountOrder
from bot.core.protect import ProtectStatus
from bot.core.types import IncomeRecord, LeadFill, MarketSpec, OrderOutcome, PositionSnapshot
from bot.venues import ccxt_common
from bot.venues.base import StreamDecoder, VenueMode
from bot.venues.bybit import decode, history, income, keys, protect, stream, urls
from bot.venues.errors import classify

# 110072 "OrderLinkedID is duplicate": for linear, an orderLinkId is taken by every order the
# account ever placed, whatever its status (docs/sim.md, "orderLinkId").
_DUPLICATE = re.compile(r'"retCode"\s*:\s*110072\b|OrderLinkedID is duplicate', re.IGNORECASE)
# 110043 "Set leverage not modified", 110026 "Cross/isolated margin mode is not modified", 110027
# "Margin is not modified": the account is already as asked.
_BENIGN = re.compile(r'"retCode"\s*:\s*(?:110043|110026|110027)\b|not modified', re.IGNORECASE)

ORDER_LINK_ID = ClientIdFormat("-")  # at most 36 of [A-Za-z0-9_-]


class BybitAdapter:
    name = "bybit"
    client_ids: ClientIdFormat = ORDER_LINK_ID
    backfill_page_limit = history.PAGE_LIMIT
    duplicate_id: re.Pattern[str] | None = _DUPLICATE
    # Bybit limits requests per UID and endpoint per second, not weight per address.
    weight_limit_1m: int | None = None
    used_weight_header: str | None = None
    # order/realtime by orderLinkId sees the latest 500 orders, order/history the last 7 days:
    # an older intent not found may well have filled (bot.venues.bybit.history).
    lookup_reach_ms: int | None = history.LOOKUP_REACH_MS

    def sim_urls(self, rest_url: str, ws_url: str) -> dict[str, Any]:
        return urls.sim_urls(rest_url, ws_url)

    def base_options(self) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in urls.BASE_OPTIONS.items()}

    def prepare(self, exchange: Any, mode: VenueMode) -> Any:
        # load_markets with keys would also load currencies (/v5/asset/coin/query-info, which needs
        # wallet permissions copybot's keys should not have); ccxt reads `has` here, not an option.
        exchange.has = {**exchange.has, "fetchCurrencies": False}
        return ccxt_common.apply_mode(exchange, mode)

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
        return await history.fetch_by_link_id(client, symbol, client_order_id)

    async def account_orders(self, client: Any, symbol: str, since_ms: int) -> list[AccountOrder]:
        # GET /v5/order/history (filled, cancelled and partially filled then cancelled orders),
        # 50 per page at most.
        orders = await client.fetch_canceled_and_closed_orders(symbol, since_ms, 50)
        return [
            ccxt_common.account_order(
                o,
                filled=o["info"].get("cumExecQty"),
                client_order_id=o["info"].get("orderLinkId", ""),
                ts_ms=o["info"].get("updatedTime") or o["info"].get("createdTime"),
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
        # ccxt signs Bybit's timestamp and recv_window (a header) itself: not needed here, see below.
        params = {"orderLinkId": client_order_id, "positionIdx": 0}
        return ccxt_common.order_flags(params, reduce_only=reduce_only, ioc=ioc)

    def landing_window_ms(self, recv_window_ms: int) -> int:
        # An orderLinkId is taken by every order the account ever placed (110072 on reuse): if the
        # first request lands after a resend, one of the two is refused, so nothing can fill twice
        # and there is no landing window to wait out before the lookup.
        return 0

    async def server_time_ms(self, client: Any) -> int:
        return int(await client.fetch_time())

    async def watch_marks(self, client: Any, symbols: list[str]) -> dict[str, Decimal]:
        # `tickers.<symbol>` (snapshot, then deltas ccxt merges into `info`) carry `markPrice`.
        await client.watch_tickers(symbols)
        return ccxt_common.marks_from_tickers(ccxt_common.cached_tickers(client, symbols), "markPrice")

    def weight(self, call: str) -> int:
        return 1

    async def income(self, client: Any, since_ms: int) -> list[IncomeRecord]:
        return await income.fetch(client, since_ms)

    def backfill(
        self, rest: Any, lead: str, symbol: str, since_ms: int, limit: int
    ) -> AsyncIterator[list[LeadFill]]:
        return history.executions(rest, lead, symbol, since_ms, limit)

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
        return classify(exc, placing=placing, duplicate=_DUPLICATE)

    def is_benign(self, exc: BaseException) -> bool:
        if isinstance(exc, ccxt.MarginModeAlreadySet | ccxt.NoChange):
            return True
        return isinstance(exc, ccxt.ExchangeError) and bool(_BENIGN.search(str(exc)))


BYBIT = BybitAdapter()
