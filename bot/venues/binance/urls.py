"""Where ccxt's binanceusdm sends each request family, and the options that keep it on them.

For the local exchange every REST and websocket base URL is overridden, so no stray call can leave
the machine (see docs/sim.md). Testnet and demo hosts come from ccxt itself (`set_sandbox_mode`,
`enable_demo_trading`); tests/unit/test_venue_hosts.py pins them.
"""

from __future__ import annotations

from typing import Any

# Every Binance REST family ccxt may call; all of them go to the local exchange in sim mode.
_API_KEYS = (
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
    api: dict[str, Any] = {key: rest + _FAPI_PATHS.get(key, "/_unused/" + key) for key in _API_KEYS}
    ws = ws_url.rstrip("/") + "/ws"
    api["ws"] = {"linear": ws, "spot": ws, "margin": ws, "inverse": ws, "papi": ws}
    return api
