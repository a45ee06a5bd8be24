"""ccxt client factory: one place that builds a ccxt client for a venue's live host, its testnet or
demo, or the local exchange on loopback. What differs per venue (URL tables, options, testnet
switches) comes from its adapter (bot.venues.base.VenueAdapter)."""

from __future__ import annotations

import functools
import ssl
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import certifi

from bot.venues.base import VenueAdapter, VenueMode


def client_config(
    adapter: VenueAdapter,
    *,
    api_key: str | None = None,
    secret: str | None = None,
    mode: VenueMode = VenueMode.SIM,
    rest_url: str | None = None,
    ws_url: str | None = None,
    options: dict[str, Any] | None = None,
    session: Any = None,
    timeout_ms: int = 10_000,
    keepalive_ms: int | None = None,
) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "enableRateLimit": mode is not VenueMode.SIM,
        "timeout": timeout_ms,
        "options": {**adapter.base_options(), **(options or {})},
    }
    if api_key is not None:
        cfg["apiKey"] = api_key
    if secret is not None:
        cfg["secret"] = secret
    if session is not None:
        cfg["session"] = session
    # ccxt builds an SSL context (reading the CA bundle) per client on its first request: 1,000
    # followers would spend seconds on it at start-up. One context serves them all.
    cfg["ssl_context"] = shared_ssl_context()
    if keepalive_ms is not None:
        cfg["streaming"] = {"keepAlive": keepalive_ms, "maxPingPongMisses": 2}
    if mode is VenueMode.SIM:
        if not rest_url or not ws_url:
            raise ValueError("sim mode needs the local exchange's rest_url and ws_url")
        cfg["urls"] = {"api": adapter.sim_urls(rest_url, ws_url)}
    return cfg


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


def make_rest(exchange_id: str, mode: VenueMode = VenueMode.SIM, **kwargs: Any) -> Any:
    """An async REST client (`ccxt.async_support`)."""
    from bot.venues import adapter_for  # the registry imports every adapter

    adapter = adapter_for(exchange_id)
    cls = getattr(ccxt_async, exchange_id)
    return adapter.prepare(cls(client_config(adapter, mode=mode, **kwargs)), mode)


def make_pro(exchange_id: str, mode: VenueMode = VenueMode.SIM, **kwargs: Any) -> Any:
    """A websocket-capable client (`ccxt.pro`), which also does REST."""
    from bot.venues import adapter_for

    adapter = adapter_for(exchange_id)
    cls = getattr(ccxt_pro, exchange_id)
    return adapter.prepare(cls(client_config(adapter, mode=mode, **kwargs)), mode)


def share_markets(source: Any, target: Any) -> None:
    """Reuse markets already loaded by another client of the same venue (no second exchangeInfo
    call, no second copy of the market tables)."""
    target.set_markets(source.markets, source.currencies)
    target.markets_loading = None


# Read-only description tables ccxt copies into every instance (about 0.3 MB for binance).
_SHARED_TABLES = ("api", "exceptions", "has", "features", "fees", "urls", "httpExceptions",
                  "ecdsaCurves", "ecdsaPrehashedAlgorithms")  # fmt: skip


def share_tables(source: Any, target: Any) -> None:
    """Point a client's read-only description tables at another client's of the same venue and
    mode, so that many followers on one venue hold one copy."""
    for name in _SHARED_TABLES:
        if hasattr(source, name):
            setattr(target, name, getattr(source, name))
