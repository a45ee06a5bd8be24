"""Any other ccxt venue, through ccxt's unified structures only: no raw stream decoding (fills come
through `watch_my_trades`), lookup by client id through ccxt's `clientOrderId` parameter, a
conservative history page. A venue copybot is meant to trade on gets an adapter folder of its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from bot.core.clientid import ClientIdFormat
from bot.core.errors import ErrorKind
from bot.core.manual import AccountOrder
from bot.core.protect import ProtectStatus
from bot.core.types import IncomeRecord, LeadFill, MarketSpec, OrderOutcome, PositionSnapshot
from bot.venues import ccxt_common
from bot.venues.base import StreamDecoder, VenueMode
from bot.venues.errors import classify

# Without a recvWindow the venue honours, how long an accepted order might still execute is not
# documented: an unknown outcome waits this long (Binance's largest recvWindow) before a lookup may
# conclude that the order is absent.
GENERIC_LANDING_MS = 60_000


class GenericAdapter:
    name = "ccxt"
    client_ids = ClientIdFormat("-")  # letters, digits and "-" pass on every venue seen
    backfill_page_limit = 100
    weight_limit_1m: int | None = None  # unknown: the budget uses the configured limit, if any
    used_weight_header: str | None = None
    lookup_reach_ms: int | None = None  # unknown: "not found" is taken as "never placed"

    def sim_urls(self, rest_url: str, ws_url: str) -> dict[str, Any]:
        raise ValueError("the local exchange speaks only the venues under bot/venues")

    def base_options(self) -> dict[str, Any]:
        return {"fetchCurrencies": False, "adjustForTimeDifference": False, "defaultType": "swap"}

    def prepare(self, exchange: Any, mode: VenueMode) -> Any:
        return ccxt_common.apply_mode(exchange, mode)

    def market_spec(self, market: dict[str, Any]) -> MarketSpec:
        return ccxt_common.market_spec(market)

    def positions(self, rows: list[dict[str, Any]]) -> dict[str, PositionSnapshot]:
        return {row["symbol"]: ccxt_common.position(row) for row in rows}

    def equity(self, balance: dict[str, Any], settle: str = "USDT") -> Decimal:
        return ccxt_common.unified_equity(balance, settle)

    def order_outcome(self, order: dict[str, Any], client_order_id: str) -> OrderOutcome:
        return ccxt_common.order_outcome(order, client_order_id)

    def stream_decoder(self, lead: str, exchange: Any) -> StreamDecoder | None:
        return None

    async def fetch_by_client_id(self, client: Any, symbol: str, client_order_id: str) -> dict[str, Any]:
        order: dict[str, Any] = await client.fetch_order(None, symbol, {"clientOrderId": client_order_id})
        return order

    async def account_orders(self, client: Any, symbol: str, since_ms: int) -> list[AccountOrder]:
        orders = await client.fetch_orders(symbol, since_ms)
        return [ccxt_common.account_order(o) for o in orders]

    def order_params(
        self,
        client_order_id: str,
        *,
        reduce_only: bool,
        ioc: bool,
        timestamp_ms: int | None = None,
        recv_window_ms: int | None = None,
    ) -> dict[str, Any]:
        # No unified recvWindow in ccxt: the landing window below is a conservative guess instead.
        return ccxt_common.order_flags({"clientOrderId": client_order_id}, reduce_only=reduce_only, ioc=ioc)

    def landing_window_ms(self, recv_window_ms: int) -> int:
        return GENERIC_LANDING_MS

    async def server_time_ms(self, client: Any) -> int:
        return int(await client.fetch_time())

    async def watch_marks(self, client: Any, symbols: list[str]) -> dict[str, Decimal]:
        # ccxt's unified mark price (a float: through repr, as every venue value); tickers where the
        # venue has no mark-price stream.
        if client.has.get("watchMarkPrices"):
            await client.watch_mark_prices(symbols)
        else:
            await client.watch_tickers(symbols)
        return ccxt_common.marks_from_tickers(ccxt_common.cached_tickers(client, symbols), None)

    def weight(self, call: str) -> int:
        return 1

    async def income(self, client: Any, since_ms: int) -> list[IncomeRecord]:
        """No income log is known for an arbitrary ccxt venue: fees and funding are not read."""
        return []

    async def backfill(
        self, rest: Any, lead: str, symbol: str, since_ms: int, limit: int
    ) -> AsyncIterator[list[LeadFill]]:
        since = since_ms
        limit = min(limit, self.backfill_page_limit)
        while True:
            trades = await rest.fetch_my_trades(symbol, since=since, limit=limit)
            yield [ccxt_common.fill_from_trade(lead, t, "rest") for t in trades]
            newest = max((int(t.get("timestamp") or 0) for t in trades), default=since)
            if len(trades) < limit or newest <= since:
                return
            since = newest

    async def key_problem(self, client: Any, mode: VenueMode, *, allow_withdrawal: bool) -> str | None:
        return None  # ccxt has no unified permission query

    # Conditional order parameters differ per venue in ccxt: without a folder of its own, a venue
    # gets no resting TP/SL orders (bot/live/protect.py logs that the follower's keys are unused).
    def protect_params(
        self, kind: str, trigger_price: Decimal, client_order_id: str
    ) -> dict[str, Any] | None:
        return None

    async def protect_status(self, client: Any, symbol: str, client_order_id: str) -> ProtectStatus:
        return ProtectStatus.GONE

    async def cancel_protect(self, client: Any, symbol: str, client_order_id: str) -> bool:
        return False

    def classify(self, exc: BaseException, *, placing: bool = False) -> ErrorKind:
        return classify(exc, placing=placing)

    def is_benign(self, exc: BaseException) -> bool:
        return False


GENERIC = GenericAdapter()
