"""Fixtures: an in-process local exchange with frozen prices, and real ccxt clients pointed at it
(closed after each test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from bot.sim.config import SimConfig, load_sim_config
from bot.sim.server import SimExchange
from bot.venues import VenueMode, make_pro, make_rest
from tests.sim.factory import ClientFactory, closing

KEY, SECRET = "alice-key", "alice-secret"


def frozen_config(**overrides: Any) -> SimConfig:
    """The packaged markets with prices frozen (they move only when a test moves them)."""
    return load_sim_config(**{"tick_interval_s": 0, **overrides})


@pytest.fixture
async def sim() -> AsyncIterator[SimExchange]:
    exchange = SimExchange(frozen_config())
    await exchange.start()
    exchange.create_account(KEY, SECRET, Decimal(100_000), name="alice")
    try:
        yield exchange
    finally:
        await exchange.stop()


@pytest.fixture
async def clients(sim: SimExchange) -> AsyncIterator[ClientFactory]:
    """`clients(api_key=..., secret=..., pro=False, **kw)` builds a ccxt client that is closed after
    the test."""

    def make(api_key: str = KEY, secret: str = SECRET, *, pro: bool = False, **kw: Any) -> Any:
        maker = make_pro if pro else make_rest
        return maker("binanceusdm", VenueMode.SIM, api_key=api_key, secret=secret,
                     rest_url=sim.rest_url, ws_url=sim.ws_url, **kw)  # fmt: skip

    async with closing(make) as factory:
        yield factory


@pytest.fixture
async def rest(clients: ClientFactory) -> Any:
    client = clients()
    await client.load_markets()
    return client


@pytest.fixture
async def pro(clients: ClientFactory) -> Any:
    client = clients(pro=True)
    await client.load_markets()
    return client


# The Bybit personality's fixtures (bsim, bybit_clients, bybit, bybit_pro, binance_client).
from tests.sim.bybit_clients import binance_client, bsim, bybit, bybit_clients, bybit_pro  # noqa: E402, F401
