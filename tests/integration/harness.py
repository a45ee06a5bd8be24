"""An in-process local exchange plus a copybot daemon, driven through the real ccxt client.

Accounts get random keys that reach the daemon's config through an environment mapping, as in a
deployment. The lead trades through its own ccxt client; every check reads the exchange's own
records through its admin API.

The lead and the followers may be on either personality of the local exchange (`lead_venue`,
`follower_venue`: "binance" or "bybit"; a follower row may name its own). The config calls the
Binance venue "local" and the Bybit one "bybit". BTC, ETH and THIN are listed alike on both, in the
same units, so a test that trades them reads the same whatever the pair (the admin view speaks
engine units for every account)."""

from __future__ import annotations

import asyncio
import secrets
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.aum.service import AumService
from bot.config.models import AppConfig, parse_config
from bot.live.engine import Engine
from bot.service.app import Daemon
from bot.sim.config import SimConfig, load_sim_config
from bot.sim.server import SimExchange
from bot.venues import VenueMode, make_rest

BTC = "BTC/USDT:USDT"
ETH = "ETH/USDT:USDT"
THIN = "THIN/USDT:USDT"

DEFAULT_RISK: dict[str, Any] = {
    "max_order_notional": 1_000_000,
    "max_position_notional": 1_000_000,
    "max_total_exposure": 1_000_000,
    "max_leverage": 50,
    "slippage_bps": None,
}


# The personalities of the local exchange: ccxt id, config venue name, order-create path.
EXCHANGE = {"binance": "binanceusdm", "bybit": "bybit"}
CONFIG_VENUE = {"binance": "local", "bybit": "bybit"}
ORDER_PATH = {"binance": "/fapi/v1/order", "bybit": "/v5/order/create"}

# Lead venue x follower venue, for tests that must hold on every pair.
PAIRS = [
    pytest.param(("binance", "binance"), id="binance-binance"),
    pytest.param(("binance", "bybit"), id="binance-bybit"),
    pytest.param(("bybit", "binance"), id="bybit-binance"),
    pytest.param(("bybit", "bybit"), id="bybit-bybit"),
]


def follower(fid: str, sizing: dict[str, Any], *, balance: int = 20_000, lead: str = "lead",
             venue: str | None = None, **risk: Any) -> dict[str, Any]:  # fmt: skip
    return {"id": fid, "balance": balance, "sizing": sizing, "risk": risk, "lead": lead, "venue": venue}


class Harness:
    def __init__(self, tmp: Path, sim_config: SimConfig | None = None, *, lead_venue: str = "binance",
                 follower_venue: str = "binance", bybit: bool = False) -> None:  # fmt: skip
        self.tmp = tmp
        self.lead_venue = lead_venue
        self.follower_venue = follower_venue
        served = ("binance", "bybit") if bybit or "bybit" in (lead_venue, follower_venue) else ("binance",)
        # Frozen prices (they move only through the admin API): sizes in tests are exact.
        self.sim = SimExchange(sim_config or load_sim_config(tick_interval_s=0), venues=served)
        self.venue_of: dict[str, str] = {}
        self.keys: dict[str, tuple[str, str]] = {}
        self.env: dict[str, str] = {}
        self.daemon: Daemon | None = None
        self.task: asyncio.Task[int] | None = None
        self.lead_clients: dict[str, Any] = {}
        self.http: aiohttp.ClientSession | None = None
        self.config: dict[str, Any] = {}

    @property
    def engine(self) -> Engine:
        assert self.daemon is not None
        assert self.daemon.engine is not None
        return self.daemon.engine

    @property
    def aum(self) -> AumService:
        assert self.daemon is not None
        assert self.daemon.aum is not None
        return self.daemon.aum

    async def __aenter__(self) -> Harness:
        await self.sim.start()
        self.http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_daemon()
        for client in self.lead_clients.values():
            await client.close()
        if self.http is not None:
            await self.http.close()
        await self.sim.stop()

    def account(self, account_id: str, balance: int | Decimal, venue: str = "binance") -> tuple[str, str]:
        key, secret = secrets.token_hex(24), secrets.token_hex(24)
        self.sim.create_account(key, secret, Decimal(balance), name=account_id, venue=venue)
        self.keys[account_id] = (key, secret)
        self.venue_of[account_id] = venue
        name = account_id.upper().replace("-", "_")
        self.env[f"K_{name}"], self.env[f"S_{name}"] = key, secret
        return key, secret

    def creds(self, account_id: str) -> dict[str, str]:
        name = account_id.upper().replace("-", "_")
        return {"api_key_env": f"K_{name}", "secret_env": f"S_{name}"}

    def build_config(self, followers: list[dict[str, Any]], *, leads: tuple[str, ...] = ("lead",),
                     lead_balance: int = 100_000, **overrides: Any) -> dict[str, Any]:  # fmt: skip
        for lead in leads:
            if lead not in self.keys:
                self.account(lead, lead_balance, self.lead_venue)
        rows = []
        for f in followers:
            if f["id"] not in self.keys:
                self.account(f["id"], f["balance"], f.get("venue") or self.follower_venue)
            lead_ids = f["lead"] if isinstance(f["lead"], list) else [f["lead"]]
            rows.append({
                "id": f["id"], "venue": CONFIG_VENUE[self.venue_of[f["id"]]],
                "credentials": self.creds(f["id"]), "leverage": 20,
                "risk": {**DEFAULT_RISK, **f["risk"]},
                "follows": [{"lead": lead, "sizing": f["sizing"]} for lead in lead_ids],
            })  # fmt: skip
        venues = {CONFIG_VENUE[v]: {"exchange": EXCHANGE[v], "mode": "sim", "rest_url": u["rest"],
                                    "ws_url": u["ws"]} for v, u in self.sim.urls.items()}  # fmt: skip
        config: dict[str, Any] = {
            "venues": venues,
            "leads": [{"id": lead, "venue": CONFIG_VENUE[self.venue_of[lead]],
                       "credentials": self.creds(lead), "symbols": [BTC, ETH, THIN]} for lead in leads],
            "followers": rows,
            "feed": {"keepalive_s": 2, "stale_after_s": 6, "backoff_initial_s": 0.05, "backoff_max_s": 0.5},
            "reconcile": {"mode": "correct", "interval_s": 3600, "on_start": True},
            "executor": {"balance_refresh_s": 3600, "drain_timeout_s": 5, "order_timeout_ms": 3000},
            "journal": {"path": str(self.tmp / "journal.sqlite")},
            "api": {"enabled": True, "port": 0},
        }  # fmt: skip
        for key, value in overrides.items():
            config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
        self.config = config
        return config

    def app_config(self) -> AppConfig:
        return parse_config(self.config, source="test", env=self.env)

    async def start_daemon(self, timeout: float = 20) -> Engine:
        self.daemon = Daemon(self.app_config(), api_port=0)
        self.task, engine = await run_until_ready(self.daemon, timeout)
        return engine

    async def stop_daemon(self) -> int | None:
        if self.daemon is None or self.task is None:
            return None
        self.daemon.request_stop("test")
        code = await self.task
        self.daemon, self.task = None, None
        return code

    def order_path(self, account_id: str) -> str:
        """The order-create path of the account's venue (for faults on follower orders)."""
        return ORDER_PATH[self.venue_of[account_id]]

    async def lead(self, lead_id: str = "lead") -> Any:
        if lead_id not in self.lead_clients:
            key, secret = self.keys[lead_id]
            venue = self.venue_of[lead_id]
            urls = self.sim.urls[venue]
            client = make_rest(EXCHANGE[venue], VenueMode.SIM, api_key=key, secret=secret,
                               rest_url=urls["rest"], ws_url=urls["ws"])  # fmt: skip
            await client.load_markets()
            self.lead_clients[lead_id] = client
        return self.lead_clients[lead_id]

    async def trade(self, symbol: str, side: str, qty: str, *, lead_id: str = "lead", **params: Any) -> Any:
        client = await self.lead(lead_id)
        return await client.create_order(symbol, "market", side, qty, None, params)

    async def admin(self, account_id: str) -> dict[str, Any]:
        assert self.http is not None
        key = self.keys[account_id][0]
        async with self.http.get(f"{self.sim.rest_url}/_sim/accounts/{key}") as resp:
            resp.raise_for_status()
            data: dict[str, Any] = await resp.json()
            return data

    async def positions(self, account_id: str) -> dict[str, Decimal]:
        """Signed position per venue symbol id (e.g. BTCUSDT), as the exchange holds it."""
        data = await self.admin(account_id)
        return {
            p["symbol"]: Decimal(p["positionAmt"]) for p in data["positions"] if Decimal(p["positionAmt"])
        }

    async def fault(self, **spec: Any) -> None:
        assert self.http is not None
        async with self.http.post(f"{self.sim.rest_url}/_sim/faults", json=spec) as resp:
            resp.raise_for_status()

    async def settle(self, fills: int | None = None, timeout: float = 15.0) -> None:
        """Wait until the engine has seen `fills` lead fills (if given) and every queue is idle."""
        deadline = time.monotonic() + timeout
        while True:
            seen = sum(lead.fills for lead in self.engine.leads.values())
            if (fills is None or seen >= fills) and self.engine.idle():
                await asyncio.sleep(0.05)
                if self.engine.idle():
                    return
            assert time.monotonic() < deadline, f"not settled: fills seen {seen}, wanted {fills}"
            await asyncio.sleep(0.02)


async def run_until_ready(daemon: Daemon, timeout: float) -> tuple[asyncio.Task[int], Engine]:
    """Run `daemon` in a task until its engine is ready (a start-up failure is raised here)."""
    task = asyncio.create_task(daemon.run())
    deadline = time.monotonic() + timeout
    while daemon.engine is None or not daemon.engine.ready.is_set():
        if task.done():
            task.result()
        assert time.monotonic() < deadline, "daemon not ready in time"
        await asyncio.sleep(0.02)
    return task, daemon.engine
