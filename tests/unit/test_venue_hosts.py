"""The hosts the real clients would use, per venue and mode, read from the clients copybot builds
(bot.venues.make_rest / make_pro): a ccxt upgrade that moves a host fails here, not in a trial.
No network: only `client.urls` is inspected."""

from __future__ import annotations

from typing import Any

import pytest

from bot.venues import VenueMode, make_pro, make_rest

# (exchange, mode) -> (REST base of the order endpoints, private websocket of the lead feed)
HOSTS = {
    ("binanceusdm", VenueMode.LIVE): ("https://fapi.binance.com/fapi/v1", "wss://fstream.binance.com/ws"),
    ("binanceusdm", VenueMode.TESTNET): (
        "https://testnet.binancefuture.com/fapi/v1",
        "wss://fstream.binancefuture.com/ws",
    ),
    ("binanceusdm", VenueMode.DEMO): (
        "https://demo-fapi.binance.com/fapi/v1",
        "wss://fstream.binancefuture.com/ws",
    ),
    ("bybit", VenueMode.LIVE): ("https://api.bybit.com", "wss://stream.bybit.com/v5/private"),
    ("bybit", VenueMode.TESTNET): (
        "https://api-testnet.bybit.com",
        "wss://stream-testnet.bybit.com/v5/private",
    ),
    ("bybit", VenueMode.DEMO): ("https://api-demo.bybit.com", "wss://stream-demo.bybit.com/v5/private"),
}


def _rest_host(exchange: str, client: Any) -> str:
    api = client.urls["api"]
    url = api["fapiPrivate"] if exchange == "binanceusdm" else api["private"]
    return str(client.implode_hostname(url))


def _ws_host(exchange: str, client: Any) -> str:
    ws = client.urls["api"]["ws"]
    url = ws["linear"] if exchange == "binanceusdm" else ws["private"]["contract"]
    return str(client.implode_hostname(url))


@pytest.mark.parametrize(("exchange", "mode"), sorted(HOSTS, key=str))
async def test_real_clients_use_the_venues_hosts(exchange: str, mode: VenueMode) -> None:
    rest_host, ws_host = HOSTS[(exchange, mode)]
    rest = make_rest(exchange, mode, api_key="k", secret="s")
    pro = make_pro(exchange, mode, api_key="k", secret="s")
    try:
        assert _rest_host(exchange, rest) == rest_host
        assert _rest_host(exchange, pro) == rest_host
        assert _ws_host(exchange, pro) == ws_host
    finally:
        await rest.close()
        await pro.close()


# Binance's pro client keeps ccxt's stock / option / ws-api stream URLs (never called by copybot)
# beside the overridden ones; Bybit's table is replaced whole.
@pytest.mark.parametrize("exchange", ["bybit"])
async def test_sim_clients_never_leave_loopback(exchange: str) -> None:
    rest = make_pro(exchange, VenueMode.SIM, api_key="k", secret="s", rest_url="http://127.0.0.1:1",
                    ws_url="ws://127.0.0.1:2")  # fmt: skip
    try:

        def urls(value: Any) -> list[str]:
            if isinstance(value, dict):
                return [u for v in value.values() for u in urls(v)]
            return [value] if isinstance(value, str) else []

        found = urls(rest.urls["api"])
        assert found
        assert all(u.startswith(("http://127.0.0.1", "ws://127.0.0.1")) for u in found), found
    finally:
        await rest.close()
