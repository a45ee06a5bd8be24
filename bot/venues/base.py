"""The venue seam: what the live pipeline needs from a venue, as one typed interface.

Each venue is a folder under bot/venues (binance/, ...) with an adapter implementing `VenueAdapter`;
`bot.venues.adapter_for(exchange_id)` picks it. Nothing outside bot/venues names a venue: the live
pipeline asks its adapter how to build clients, decode what the venue says (markets, positions,
balances, order replies, stream frames, errors) and look an order up by its client id. See
docs/architecture.md, "The venue seam".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Protocol

from bot.core.clientid import ClientIdFormat
from bot.core.errors import ErrorKind
from bot.core.manual import AccountOrder
from bot.core.protect import ProtectStatus
from bot.core.types import IncomeRecord, LeadFill, MarketSpec, OrderOutcome, PositionSnapshot


class VenueMode(StrEnum):
    LIVE = "live"
    TESTNET = "testnet"
    DEMO = "demo"
    SIM = "sim"


@dataclass(frozen=True, slots=True)
class StreamExpired:
    """The venue says the stream's session (listenKey, token) has expired: reconnect afresh."""

    reason: str


StreamEvent = LeadFill | tuple[LeadFill, ...] | StreamExpired | None
# Decodes one raw websocket message of a lead's account stream (a frame may carry several fills).
StreamDecoder = Callable[[dict[str, Any]], StreamEvent]


class VenueAdapter(Protocol):
    """One venue's protocol facts, behind ccxt."""

    name: str  # "binance", "bybit", "ccxt"
    client_ids: ClientIdFormat  # alphabet and length of the venue's client order ids
    backfill_page_limit: int  # the most trades one history page may return
    # Request budget per source address: the published limit (None: unknown) and the response
    # header that says how much of it is used.
    weight_limit_1m: int | None
    used_weight_header: str | None
    # How far back a lookup by client id can see a FILLED order (None: as far as it matters). Past
    # it, "not found" no longer means "never placed" (bot.live.startup, settle_unsettled).
    lookup_reach_ms: int | None

    # -- clients ----------------------------------------------------------------------------------
    def sim_urls(self, rest_url: str, ws_url: str) -> dict[str, Any]: ...
    def base_options(self) -> dict[str, Any]: ...
    def prepare(self, exchange: Any, mode: VenueMode) -> Any: ...

    # -- decoding at the boundary -----------------------------------------------------------------
    def market_spec(self, market: dict[str, Any]) -> MarketSpec: ...
    def positions(self, rows: list[dict[str, Any]]) -> dict[str, PositionSnapshot]: ...
    def equity(self, balance: dict[str, Any], settle: str = "USDT") -> Decimal: ...
    def order_outcome(self, order: dict[str, Any], client_order_id: str) -> OrderOutcome: ...
    def stream_decoder(self, lead: str, exchange: Any) -> StreamDecoder | None: ...

    # -- calls ------------------------------------------------------------------------------------
    async def fetch_by_client_id(self, client: Any, symbol: str, client_order_id: str) -> dict[str, Any]:
        """The venue's order with this client id; raises ccxt.OrderNotFound when there is none."""
        ...

    async def account_orders(self, client: Any, symbol: str, since_ms: int) -> list[AccountOrder]:
        """The account's orders on `symbol` placed from `since_ms` on (one history page, the
        venue's largest), each with its client id and executed quantity: how copybot tells the
        owner's hand trades from its own (bot/live/manual_trades.py). Weight: `weight("orders")`."""
        ...

    def order_params(
        self,
        client_order_id: str,
        *,
        reduce_only: bool,
        ioc: bool,
        timestamp_ms: int | None = None,
        recv_window_ms: int | None = None,
    ) -> dict[str, Any]:
        """ccxt params of a new order; `timestamp_ms` (venue clock) and `recv_window_ms` bound
        when the venue may still execute it, where the venue takes them."""
        ...

    def landing_window_ms(self, recv_window_ms: int) -> int:
        """How long after its timestamp an order the venue accepted may still reach its matching
        engine: past that (on the venue's clock), an order that is not found never will be."""
        ...

    async def server_time_ms(self, client: Any) -> int:
        """The venue's clock (one light request)."""
        ...

    async def watch_marks(self, client: Any, symbols: list[str]) -> dict[str, Decimal]:
        """Wait for the next mark-price update of any of `symbols` on the venue's public stream (a
        keyless ccxt.pro client; the first call subscribes) and return what changed: unified
        symbol -> mark, decoded from the venue's raw strings. No REST weight."""
        ...

    def weight(self, call: str) -> int:
        """The published request weight of one call the bot makes: "balance", "positions",
        "order_lookup", "time", "leverage", "key_check", "trades", "book", "orders", "income"."""
        ...

    async def income(self, client: Any, since_ms: int) -> list[IncomeRecord]:
        """The account's fees and funding from `since_ms` on (venue clock), from its income or
        transaction log, page by page; weight `weight("income")` per page."""
        ...

    def backfill(
        self, rest: Any, lead: str, symbol: str, since_ms: int, limit: int
    ) -> AsyncIterator[list[LeadFill]]:
        """The lead's fills on `symbol` from `since_ms` on, page by page (at most `limit` and the
        venue's page size each), oldest first."""
        ...

    async def key_problem(self, client: Any, mode: VenueMode, *, allow_withdrawal: bool) -> str | None:
        """A reason to refuse this account's key (it may withdraw), or None."""
        ...

    # -- take-profit / stop-loss orders resting at the venue (bot/live/protect.py) ----------------
    def protect_params(
        self, kind: str, trigger_price: Decimal, client_order_id: str
    ) -> dict[str, Any] | None:
        """ccxt params of a reduce-only "tp" or "sl" market order triggered at `trigger_price`
        (on the mark price where the venue offers it); None when the venue has none here."""
        ...

    async def protect_status(self, client: Any, symbol: str, client_order_id: str) -> ProtectStatus:
        """Open (waiting), triggered, or gone (cancelled, expired, never placed)."""
        ...

    async def cancel_protect(self, client: Any, symbol: str, client_order_id: str) -> bool:
        """Cancel it: True if it was open; False (not an error) if it had triggered, was cancelled or
        was never placed."""
        ...

    # -- errors -----------------------------------------------------------------------------------
    def classify(self, exc: BaseException, *, placing: bool = False) -> ErrorKind: ...
    def is_benign(self, exc: BaseException) -> bool:
        """An error that means "already so" (leverage or margin mode unchanged): success."""
        ...
