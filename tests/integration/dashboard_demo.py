"""The demo's layout (bot/demo/setup.py: one lead, followers with different sizing modes and caps) on
the local exchange, its daemon on a fixed API port with a control token, so that a browser can
follow it across a restart. Used by the dashboard's browser tests and scripts/dashboard_screenshot.py.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from bot.config.models import parse_config
from bot.demo.lead_script import ScriptedLead
from bot.demo.setup import demo_accounts, demo_config
from bot.service.app import Daemon
from bot.sim.config import load_sim_config
from bot.sim.server import SimExchange
from bot.venues import VenueMode, make_rest
from tests.integration.harness import run_until_ready

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DemoRun:
    def __init__(self, tmp: Path, followers: int = 3, host: str = "127.0.0.1") -> None:
        # No random walk: the page and /status are compared while the lead is idle, and follower
        # equity follows the mark (bot.live.work.Balance), so prices must only move with trades.
        self.sim = SimExchange(load_sim_config(tick_interval_s=0))
        self.accounts = demo_accounts(followers)
        self.token = secrets.token_hex(24)
        self.port = free_port()
        self.data, self.env = demo_config(self.accounts, str(tmp / "journal.sqlite"))
        self.data["api"] = {"enabled": True, "host": host, "port": self.port,
                            "token": {"env": "DASHBOARD_TEST_TOKEN"}}  # fmt: skip
        self.data["logging"] = {"level": "error"}
        self.env["DASHBOARD_TEST_TOKEN"] = self.token
        self.daemon: Daemon | None = None
        self.task: asyncio.Task[int] | None = None
        self.lead: Any = None
        self.http: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> DemoRun:
        await self.sim.start()
        for account in self.accounts:
            self.sim.create_account(account["api_key"], account["secret"], Decimal(account["balance"]),
                                    name=account["id"])  # fmt: skip
        lead = self.accounts[0]
        self.lead = make_rest("binanceusdm", VenueMode.SIM, api_key=lead["api_key"], secret=lead["secret"],
                              rest_url=self.sim.rest_url, ws_url=self.sim.ws_url)  # fmt: skip
        await self.lead.load_markets()
        self.http = aiohttp.ClientSession()
        await self.start_daemon()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop_daemon()
        if self.http is not None:
            await self.http.close()
        await self.lead.close()
        await self.sim.stop()

    async def start_daemon(self, timeout: float = 30) -> None:
        cfg = parse_config(self.data, source="demo", allow_embedded_sim=True, env=self.env)
        self.daemon = Daemon(cfg, sim_urls=(self.sim.rest_url, self.sim.ws_url), api_port=self.port)
        self.task, _ = await run_until_ready(self.daemon, timeout)

    async def stop_daemon(self) -> None:
        if self.daemon is not None and self.task is not None:
            self.daemon.request_stop("test")
            await self.task
        self.daemon, self.task = None, None

    async def trade(self, symbol: str, side: str, qty: str) -> dict[str, Any]:
        order: dict[str, Any] = await self.lead.create_order(symbol, "market", side, qty)
        return order

    async def status(self) -> dict[str, Any]:
        assert self.http is not None
        async with self.http.get(f"{self.url}/status") as resp:
            resp.raise_for_status()
            data: dict[str, Any] = await resp.json()
            return data

    def script(self, seed: int = 7) -> ScriptedLead:
        """The demo's scripted lead trader (the same notional per symbol as `copybot demo`)."""
        assert self.daemon is not None
        assert self.daemon.engine is not None
        markets = self.daemon.engine.leads["lead"].markets
        notional = {
            "BTC/USDT:USDT": Decimal(4000),
            "ETH/USDT:USDT": Decimal(3000),
            "THIN/USDT:USDT": Decimal(40),
        }
        return ScriptedLead(self.lead, self.sim.rest_url, markets, symbols=list(notional), seed=seed,
                            notional=notional)  # fmt: skip

    async def wait_idle(self, timeout: float = 15) -> None:
        assert self.daemon is not None
        assert self.daemon.engine is not None
        assert await self.daemon.engine.wait_idle(timeout)
