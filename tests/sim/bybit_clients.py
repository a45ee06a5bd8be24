"""Real ccxt Bybit clients (`ccxt.async_support.bybit`, `ccxt.pro.bybit`) pointed at the local
exchange's Bybit hosts, and the fixtures the Bybit tests share.

Every `urls['api']` entry ccxt's bybit may call is replaced by a loopback URL, so no call can leave
the machine, and the options keep ccxt on linear USDT perpetuals of a unified account without the
calls a loopback venue does not serve.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async
import ccxt.pro as ccxt_pro
import pytest

from bot.sim.config import load_sim_config
from bot.sim.server import SimExchange
from tests.sim.factory import ClientFactory, closing

BYBIT_KEY, BYBIT_SECRET = "bob-key", "bob-secret"
BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
THIN = "THIN/USDT:USDT"
PEPE = "PEPE/USDT:USDT"


def bybit_urls(rest_url: str, ws_url: str) -> dict[str, Any]:
    private_ws = f"{ws_url}/v5/private"
    return {
        "spot": rest_url,
        "futures": rest_url,
        "v2": rest_url,
        "public": rest_url,
        "private": rest_url,
        "ws": {
            "public": {
                "spot": f"{ws_url}/v5/public/spot",
                "inverse": f"{ws_url}/v5/public/inverse",
                "option": f"{ws_url}/v5/public/option",
                "linear": f"{ws_url}/v5/public/linear",
            },
            "private": {
                "spot": {"unified": private_ws, "nonUnified": private_ws},
                "contract": private_ws,
                "usdc": private_ws,
                "trade": f"{ws_url}/v5/trade",
            },
        },
    }


def bybit_client_config(
    rest_url: str, ws_url: str, api_key: str, secret: str, *, preset_unified: bool = True, **options: Any
) -> dict[str, Any]:
    opts: dict[str, Any] = {
        "fetchMarkets": {"types": ["linear"]},  # only linear: no spot / inverse / option listings
        "defaultType": "swap",
        "defaultSubType": "linear",
        "adjustForTimeDifference": False,
        "watchPositions": {"fetchPositionsSnapshot": False},
        **options,
    }
    if preset_unified:  # skips user/query-api + account/info on first private call
        opts.update(enableUnifiedAccount=True, enableUnifiedMargin=False, unifiedMarginStatus=6)
    return {
        "apiKey": api_key,
        "secret": secret,
        "enableRateLimit": False,
        # load_markets with keys would call /v5/asset/coin/query-info; ccxt reads has[], not options
        "has": {"fetchCurrencies": False},
        "urls": {"api": bybit_urls(rest_url, ws_url)},
        "options": opts,
    }


def make_bybit(
    sim: SimExchange, api_key: str = BYBIT_KEY, secret: str = BYBIT_SECRET, *, pro: bool = False, **kw: Any
) -> Any:
    urls = sim.urls["bybit"]
    config = bybit_client_config(urls["rest"], urls["ws"], api_key, secret, **kw)
    return ccxt_pro.bybit(config) if pro else ccxt_async.bybit(config)


@pytest.fixture
async def bsim() -> AsyncIterator[SimExchange]:
    """Both personalities over one engine, prices frozen; bob trades on Bybit."""
    exchange = SimExchange(load_sim_config(tick_interval_s=0), venues=("binance", "bybit"))
    await exchange.start()
    exchange.create_account(BYBIT_KEY, BYBIT_SECRET, Decimal(100_000), name="bob", venue="bybit")
    try:
        yield exchange
    finally:
        await exchange.stop()


@pytest.fixture
async def bybit_clients(bsim: SimExchange) -> AsyncIterator[ClientFactory]:
    """`bybit_clients(api_key=..., secret=..., pro=False, **options)`: closed after the test."""

    def make(api_key: str = BYBIT_KEY, secret: str = BYBIT_SECRET, *, pro: bool = False, **kw: Any) -> Any:
        return make_bybit(bsim, api_key, secret, pro=pro, **kw)

    async with closing(make) as factory:
        yield factory


@pytest.fixture
async def bybit(bybit_clients: ClientFactory) -> Any:
    client = bybit_clients()
    await client.load_markets()
    return client


@pytest.fixture
async def bybit_pro(bybit_clients: ClientFactory) -> Any:
    client = bybit_clients(pro=True)
    await client.load_markets()
    return client


@pytest.fixture
async def binance_client(bsim: SimExchange) -> AsyncIterator[Any]:
    """A Binance account and its ccxt client on the same exchange as the Bybit fixtures."""
    from bot.venues import VenueMode, make_rest

    bsim.create_account("carol-key", "carol-secret", Decimal(10_000), name="carol")
    client = make_rest(
        "binanceusdm",
        VenueMode.SIM,
        api_key="carol-key",
        secret="carol-secret",
        rest_url=bsim.rest_url,
        ws_url=bsim.ws_url,
    )
    await client.load_markets()
    try:
        yield client
    finally:
        await client.close()
