"""A venue at run time: one HTTP session, one keyless client holding the markets, and the clients of
its accounts built to share both (plus ccxt's description tables and one SSL context)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import structlog

from bot.core.types import Credentials, MarketSpec
from bot.live.budget import RequestBudget, essential
from bot.live.venue_clock import VenueClock
from bot.venues import VenueAdapter, VenueMode, adapter_for, make_pro, make_rest
from bot.venues.clients import share_markets, share_tables
from bot.venues.source_address import session as bound_session

log = structlog.get_logger("copybot.venue")

# Account reads beside the hot path (balances, positions) go a few at a time, so a periodic pass
# over many followers does not crowd the event loop while a fill fans out.
BACKGROUND_READS = 4
SEND_SLOTS = 16  # requests of order placement in flight at once per venue (see OrderPlacer)


class BudgetSettings(Protocol):
    """The request budget of the venue's source address (bot.config.models.RequestBudgetConfig)."""

    @property
    def weight_limit_1m(self) -> int | None: ...  # None: the venue's published limit
    @property
    def background_share(self) -> float: ...


@dataclass(frozen=True)
class DefaultBudget:
    weight_limit_1m: int | None = None
    background_share: float = 0.5


class VenueSettings(Protocol):
    """A venue's configuration as read here (bot.config.models.VenueConfig is one)."""

    @property
    def exchange(self) -> str: ...
    @property
    def mode(self) -> VenueMode: ...
    @property
    def rest_url(self) -> str | None: ...
    @property
    def ws_url(self) -> str | None: ...
    @property
    def options(self) -> Mapping[str, Any]: ...
    @property
    def timeout_ms(self) -> int: ...
    @property
    def request_budget(self) -> BudgetSettings: ...
    @property
    def source_address(self) -> str | None: ...


@dataclass
class Venue:
    name: str
    exchange: str
    mode: VenueMode
    rest_url: str | None
    ws_url: str | None
    options: dict[str, Any]
    timeout_ms: int
    budget_cfg: BudgetSettings = field(default_factory=DefaultBudget)
    source_address: str | None = None  # None: the system's choice (bot.venues.source_address)
    loader: Any = None  # keyless client that holds the shared markets
    markets: dict[str, MarketSpec] = field(default_factory=dict)
    session: aiohttp.ClientSession | None = None
    send_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(SEND_SLOTS))
    clock: VenueClock = field(default_factory=VenueClock)
    # Settled once orders of an earlier run can no longer land (bot.live.startup).
    start_gate: asyncio.Future[None] | None = None
    budget: RequestBudget = field(init=False)

    def __post_init__(self) -> None:
        # One budget per venue: every client of the venue goes out from one address (the host's, or
        # `source_address`).
        limit = self.budget_cfg.weight_limit_1m or self.adapter.weight_limit_1m
        self.budget = RequestBudget(
            limit,
            background_share=self.budget_cfg.background_share,
            clock_s=lambda: self.clock.now_ms() / 1000,
        )

    @property
    def adapter(self) -> VenueAdapter:
        return adapter_for(self.exchange)

    @classmethod
    def from_config(cls, name: str, cfg: VenueSettings, sim_urls: tuple[str, str] | None) -> Venue:
        rest, ws = cfg.rest_url, cfg.ws_url
        if cfg.mode is VenueMode.SIM and sim_urls and not rest:
            rest, ws = sim_urls
        return cls(name, cfg.exchange, cfg.mode, rest, ws, dict(cfg.options), cfg.timeout_ms,
                   cfg.request_budget, cfg.source_address)  # fmt: skip

    def kwargs(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "rest_url": self.rest_url,
            "ws_url": self.ws_url,
            "options": self.options,
            "timeout_ms": self.timeout_ms,
        }

    async def open(self) -> None:
        self.session = bound_session(self.source_address)
        self.loader = make_rest(self.exchange, **self.kwargs(), session=self.session)
        # A 429/418 at start (a restart storm, another process on the address) is waited out.
        await essential(self.budget, self.adapter, self.loader, 1, self.loader.load_markets, what="markets")
        await essential(self.budget, self.adapter, self.loader, self.adapter.weight("time"),
                        lambda: self.clock.read(lambda: self.adapter.server_time_ms(self.loader)),
                        what="time")  # fmt: skip
        self.markets = {
            s: self.adapter.market_spec(m)
            for s, m in self.loader.markets.items()
            if m.get("swap") or m.get("future") or self.mode is VenueMode.SIM
        }
        log.info("venue_ready", venue=self.name, markets=len(self.markets),
                 clock_offset_ms=round(self.clock.offset_ms))  # fmt: skip

    def client(
        self,
        creds: Credentials,
        *,
        pro: bool = False,
        keepalive_ms: int | None = None,
        timeout_ms: int | None = None,
    ) -> Any:
        kwargs = {**self.kwargs(), "api_key": creds.api_key, "secret": creds.secret}
        if timeout_ms is not None:
            kwargs["timeout_ms"] = timeout_ms
        if pro:
            client = make_pro(self.exchange, **kwargs, **self._bound(), keepalive_ms=keepalive_ms)
        else:
            client = make_rest(self.exchange, **kwargs, session=self.session)
        if creds.password:
            client.password = creds.password
        # What ccxt signs itself (every Bybit request's X-BAPI-TIMESTAMP, Binance's reads) goes out
        # on the venue's clock as measured at open: ccxt's nonce is its clock minus timeDifference.
        # A venue clock more than 1 s behind ours would otherwise refuse every request (10002).
        client.options["timeDifference"] = round(-self.clock.offset_ms)
        share_markets(self.loader, client)
        if not pro:  # a websocket client has its own URL table
            share_tables(self.loader, client)
        return client

    def public_client(self, *, keepalive_ms: int | None = None) -> Any:
        """A keyless websocket client for the venue's public streams (the mark feed), sharing the
        loaded markets."""
        client = make_pro(self.exchange, **self.kwargs(), **self._bound(), keepalive_ms=keepalive_ms)
        share_markets(self.loader, client)
        return client

    def _bound(self) -> dict[str, Any]:
        """A websocket client opens its own aiohttp session unless given one; bound to an address,
        it shares the venue's, whose connector binds it (its streams open through the session).
        The client's close() then leaves the session to `close` here."""
        return {"session": self.session} if self.source_address is not None else {}

    async def close(self) -> None:
        if self.loader is not None:
            await self.loader.close()
        if self.session is not None:
            await self.session.close()
