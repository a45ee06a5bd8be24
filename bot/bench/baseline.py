"""The polling baseline: how common open-source copiers work, measured the same way as copybot.

Poll the lead's `fetch_my_trades(symbol, since)` every second and, for each new trade, place every
follower's order one after another with ccxt. Its client ids (`bl-<trade id>-<follower index>`) let
the report find its orders in the exchange's records exactly as it finds copybot's."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from decimal import Decimal
from typing import Any

from bot.bench.processes import Admin
from bot.bench.report import RunResult, fill_lags
from bot.bench.runner import SYMBOL, Account, create_accounts, lead_trades, new_accounts
from bot.venues import VenueMode, make_rest
from bot.venues.clients import share_markets

POLL_INTERVAL_S = 1.0


def baseline_client_id(trade_id: str, index: int) -> str:
    return f"bl-{trade_id}-{index}"


class PollingCopier:
    """fetch_my_trades every POLL_INTERVAL_S, then the followers' orders sequentially."""

    def __init__(self, lead: Any, followers: list[Any], since_ms: int) -> None:
        self.lead = lead
        self.followers = followers
        self.since_ms = since_ms
        self.seen: set[str] = set()
        self.placed = 0
        self.errors: list[str] = []

    async def run(self) -> None:
        while True:
            started = time.monotonic()
            trades = await self.lead.fetch_my_trades(SYMBOL, self.since_ms)
            for trade in trades:
                trade_id = str(trade["id"])
                if trade_id in self.seen:
                    continue
                self.seen.add(trade_id)
                self.since_ms = max(self.since_ms, int(trade["timestamp"]))
                await self._copy(trade_id, trade["side"], Decimal(str(trade["amount"])))
            await asyncio.sleep(max(0.0, POLL_INTERVAL_S - (time.monotonic() - started)))

    async def _copy(self, trade_id: str, side: str, amount: Decimal) -> None:
        for index, client in enumerate(self.followers):
            params = {"newClientOrderId": baseline_client_id(trade_id, index)}
            try:
                await client.create_order(SYMBOL, "market", side, str(amount), None, params)
            except Exception as exc:  # noqa: BLE001 - a failed copy is counted as a missing order
                self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
            self.placed += 1


async def run_baseline(*, admin: Admin, rest_url: str, ws_url: str, followers: int,
                       fills: int, qty: Decimal) -> RunResult:  # fmt: skip
    lead, accounts = new_accounts(followers)
    await create_accounts(admin, lead, accounts)

    def client(a: Account) -> Any:
        return make_rest("binanceusdm", VenueMode.SIM, api_key=a.api_key, secret=a.secret,
                         rest_url=rest_url, ws_url=ws_url)  # fmt: skip

    lead_client = client(lead)
    clients = [client(a) for a in accounts]
    task: asyncio.Task[None] | None = None
    rng = random.Random(7)
    try:
        await lead_client.load_markets()
        for c in clients:
            share_markets(lead_client, c)
        since_ns = time.time_ns()
        copier = PollingCopier(lead_client, clients, since_ms=since_ns // 1_000_000)
        task = asyncio.create_task(copier.run(), name="polling-baseline")
        for i in range(fills):
            # A random phase against the poll: lead fills do not arrive in step with the poller.
            await asyncio.sleep(rng.uniform(0.0, POLL_INTERVAL_S))
            await lead_client.create_order(SYMBOL, "market", "buy" if i % 2 == 0 else "sell", str(qty))
            deadline = time.monotonic() + POLL_INTERVAL_S * 2 + followers * 0.1
            while copier.placed < (i + 1) * followers and time.monotonic() < deadline:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        trades = await lead_trades(admin, lead, since_ns)
        orders = await admin.orders_of([a.api_key for a in accounts], since_ns)
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for c in (lead_client, *clients):
            await c.close()

    def cids(trade_id: str) -> list[str]:
        return [baseline_client_id(trade_id, i) for i in range(followers)]

    notes = tuple(sorted(set(copier.errors)))[:3]
    return RunResult("baseline", followers, fill_lags(trades, orders, followers, cids), notes=notes)
