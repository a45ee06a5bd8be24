"""ccxt client factory: one place that knows how to point a ccxt exchange at a live venue,
its testnet or demo, or the local exchange on loopback.

For the local exchange every REST and websocket base URL is overridden, so no stray call can leave
the machine, and the venue's linear-specific error codes are merged into the exact map (ccxt only
applies them when the URL is a real fapi host; see shared/notes/ccxt-binance-usdm.md).
"""

from __future__ import annotations

import functools
import ssl
from enum import StrEnum
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import certifi


class VenueMode(StrEnum):
    LIVE = "live"
    TESTNET = "testnet"
    DEMO = "demo"
    SIM = "sim"


# Every Binance REST family ccxt may call; all of them go to the local exchange in sim mode.
_BINANCE_API_KEYS = (
    "dapiData", "dapiPrivate", "dapiPrivateV2", "dapiPublic", "eapiPrivate", "eapiPublic",
    "fapiData", "fapiPrivate", "fapiPrivateV2", "fapiPrivateV3", "fapiPublic", "fapiPublicV2",
    "fapiPublicV3", "papi", "papiV2", "private", "public", "sapi", "sapiV2", "sapiV3", "sapiV4", "v1",
)  # fmt: skip

_FAPI_PATHS = {
    "fapiPublic": "/fapi/v1",
    "fapiPublicV2": "/fapi/v2",
    "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1",
    "fapiPrivateV2": "/fapi/v2",
    "fapiPrivateV3": "/fapi/v3",
    "fapiData": "/futures/data",
}

BASE_OPTIONS: dict[str, Any] = {
    "fetchCurrencies": False,
    "adjustForTimeDifference": False,
    "warnOnFetchOpenOrdersWithoutSymbol": False,
    "defaultType": "swap",
    "watchPositions": {"fetchPositionsSnapshot": False},
}


def sim_urls(rest_url: str, ws_url: str) -> dict[str, Any]:
    """`urls['api']` for ccxt's binanceusdm pointed at the local exchange."""
    rest = rest_url.rstrip("/")
    api: dict[str, Any] = {key: rest + _FAPI_PATHS.get(key, "/_unused/" + key) for key in _BINANCE_API_KEYS}
    ws = ws_url.rstrip("/") + "/ws"
    api["ws"] = {"linear": ws, "spot": ws, "margin": ws, "inverse": ws, "papi": ws}
    return api


def client_config(
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
        "options": {**BASE_OPTIONS, **(options or {})},
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
        cfg["urls"] = {"api": sim_urls(rest_url, ws_url)}
    return cfg


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certifi.where())


def _prepare(exchange: Any, mode: VenueMode) -> Any:
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


def make_rest(exchange_id: str, mode: VenueMode = VenueMode.SIM, **kwargs: Any) -> Any:
    """An async REST client (`ccxt.async_support`)."""
    cls = getattr(ccxt_async, exchange_id)
    return _prepare(cls(client_config(mode=mode, **kwargs)), mode)


def make_pro(exchange_id: str, mode: VenueMode = VenueMode.SIM, **kwargs: Any) -> Any:
    """A websocket-capable client (`ccxt.pro`), which also does REST."""
    cls = getattr(ccxt_pro, exchange_id)
    return _prepare(cls(client_config(mode=mode, **kwargs)), mode)


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
