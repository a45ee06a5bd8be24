"""Where ccxt's bybit sends each request family, and the options that keep it on linear USDT
perpetuals of a unified account.

For the local exchange every REST and websocket base URL is overridden, so no stray call can leave
the machine (docs/sim.md, "A ccxt bybit client against the sim"). Testnet and demo hosts come from
ccxt itself (`set_sandbox_mode`, `enable_demo_trading`); tests/unit/test_venue_hosts.py pins them.
"""

from __future__ import annotations

from typing import Any

_REST_FAMILIES = ("spot", "futures", "v2", "public", "private")

BASE_OPTIONS: dict[str, Any] = {
    "fetchMarkets": {"types": ["linear"]},  # copybot trades linear perpetuals only
    "defaultType": "swap",
    "defaultSubType": "linear",
    "adjustForTimeDifference": False,
    "watchPositions": {"fetchPositionsSnapshot": False},
}


def sim_urls(rest_url: str, ws_url: str) -> dict[str, Any]:
    """`urls['api']` for ccxt's bybit pointed at the local exchange's Bybit hosts."""
    rest = rest_url.rstrip("/")
    ws = ws_url.rstrip("/")
    private = f"{ws}/v5/private"
    api: dict[str, Any] = dict.fromkeys(_REST_FAMILIES, rest)
    api["ws"] = {
        "public": {kind: f"{ws}/v5/public/{kind}" for kind in ("spot", "inverse", "option", "linear")},
        "private": {
            "spot": {"unified": private, "nonUnified": private},
            "contract": private,
            "usdc": private,
            "trade": f"{ws}/v5/trade",
        },
    }
    return api
