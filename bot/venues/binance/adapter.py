"""Binance USD-M futures behind the venue seam (bot.venues.base.VenueAdapter)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt

from bot.core.clientid import DOTTED, ClientIdFormat
from bot.core.errors import ErrorKind
from bot.core.types import LeadFill, MarketSpec, OrderOutcome, PositionSnapshot
from bot.venues import ccxt_common
from bot.venues.base import StreamDecoder, VenueMode
from bot.venues.binance import decode, keys, stream, urls
from bot.venues.errors import classify

# -4116 (futures) or -2010 "Duplicate order sent." (spot): the client id is in use.
_DUPLICATE = re.compile(r'"code"\s*:\s*-4116|Duplicate order|ClientOrderId is duplicated', re.IGNORECASE)
# -4046 "No need to change margin type.", -4028 leverage unchanged is not an error on Binance.
_BENIGN = re.compile(r'"code"\s*:\s*-4046|No need to change', re.IGNORECASE)


class BinanceAdapter:
    name = "binance"
    client_ids: ClientIdFormat = DOTTED  # `^[\.A-Z\:/a-z0-9_-]{1,36}$`
    backfill_page_limit = 1000  # GET /fapi/v1/userTrades `limit` maximum

    def sim_urls(self, rest_url: str, ws_url: str) -> dict[str, Any]:
        return urls.sim_urls(rest_url, ws_url)

    def base_options(self) -> dict[str, Any]:
        return dict(urls.BASE_OPTIONS)

    def prepare(self, exchange: Any, mode: VenueMode) -> Any:
        if mode is VenueMode.TESTNET:
            # ccxt 4.5 refuses private calls to Binance's futures testnet without this acknowledgement.
            exchange.options["disableFuturesSandboxWarning"] = True
            exchange.set_sandbox_mode(True)
        elif mode is VenueMode.DEMO:
            exchange.enable_demo_trading(True)
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

    def order_params(self, client_order_id: str, *, reduce_only: bool, ioc: bool) -> dict[str, Any]:
        params: dict[str, Any] = {"clientOrderId": client_order_id}
        if reduce_only:
            params["reduceOnly"] = True
        if ioc:
            params["timeInForce"] = "IOC"
        return params

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

    def classify(self, exc: BaseException, *, placing: bool = False) -> ErrorKind:
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
