"""Shared by the runtime-membership tests: a follower's config block, the API client, the checks."""

from __future__ import annotations

import asyncio
import secrets
import time
from decimal import Decimal
from typing import Any

from tests.integration.harness import DEFAULT_RISK, Harness

TOKEN_ENV = "API_TOKEN"
MULT = {"mode": "multiplier", "multiplier": "0.1"}


def block(h: Harness, fid: str, *, balance: int = 20_000, risk: dict[str, Any] | None = None,
          leads: tuple[str, ...] = ("lead",), **follow: Any) -> dict[str, Any]:  # fmt: skip
    """A followers[] entry for a new account `fid` (created in the local exchange)."""
    if fid not in h.keys:
        h.account(fid, balance)
    return {
        "id": fid,
        "venue": "local",
        "credentials": h.creds(fid),
        "leverage": 20,
        "risk": {**DEFAULT_RISK, **(risk or {})},
        "follows": [{"lead": lead, "sizing": dict(MULT), **follow} for lead in leads],
    }


def with_token(h: Harness) -> dict[str, Any]:
    """The api override that sets a control token (the env holds its value)."""
    h.env[TOKEN_ENV] = secrets.token_hex(16)
    return {"enabled": True, "port": 0, "token": {"env": TOKEN_ENV}}


async def api(h: Harness, method: str, path: str, body: Any = None, *, token: bool = True) -> tuple[int, Any]:
    assert h.http is not None
    assert h.daemon is not None
    headers = {"Authorization": f"Bearer {h.env[TOKEN_ENV]}"} if token else {}
    url = f"http://127.0.0.1:{h.daemon.bound_api_port}{path}"
    async with h.http.request(method, url, json=body, headers=headers) as resp:
        return resp.status, await resp.json()


async def wait_for(check: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def retired(engine: Any, follower: str) -> bool:
    """Whether `follower` has finished leaving: its `remove` is in the journal. Out of
    `engine.followers` is not enough: the leave still flushes the journal and records the removal
    after that (bot/service/membership.py, `_retire`)."""
    await engine.journal.aflush()
    return any(c.action == "remove" for c in engine.journal.membership_changes(follower))


async def btc(h: Harness, account: str) -> Decimal:
    return (await h.positions(account)).get("BTCUSDT", Decimal(0))


async def set_price(h: Harness, symbol: str, price: str) -> None:
    assert h.http is not None
    async with h.http.post(f"{h.sim.rest_url}/_sim/price", json={"symbol": symbol, "price": price}) as resp:
        resp.raise_for_status()
