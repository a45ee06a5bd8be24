"""One copybot run of the benchmark: a lead and N followers on the local exchange, the daemon as a
subprocess, the lead trading through its own ccxt client, and the copy lag read back from the
exchange's records.

The daemon gets its credentials the way a deployment does (environment variables named in the
config), its own process and event loop, and is stopped with SIGTERM, which must exit 0."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import pstats
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bot.bench.processes import (
    SIM_REQUEST_BUDGET,
    VENUE_EXCHANGES,
    Admin,
    BenchError,
    Child,
    Urls,
    free_port,
    peak_rss_mb,
)
from bot.bench.report import LimitsTally, RunResult, fill_lags
from bot.core import clientid
from bot.core.fanout import fanout_order
from bot.sim.bybit.venue import exec_uuid
from bot.venues import VenueMode, adapter_for, make_rest

SYMBOL = "BTC/USDT:USDT"
LEAD_ID = "lead"
LEAD_QTY = Decimal("0.005")  # about 300 USDT: above the 100 USDT minimum, far below the book's depth
LEAD_BALANCE = "1000000"
FOLLOWER_BALANCE = "20000"


@dataclass(frozen=True)
class Account:
    id: str
    api_key: str
    secret: str

    @property
    def env_prefix(self) -> str:
        return self.id.upper().replace("-", "_")


def lead_fill_id(venue: str) -> Callable[[int], str]:
    """The lead's fill id (the trigger of its copies) of an exchange trade as the admin API names it
    (the engine's trade id): the same number on Binance, an execId on Bybit."""
    return exec_uuid if venue == "bybit" else str


def new_accounts(followers: int) -> tuple[Account, list[Account]]:
    def make(account_id: str) -> Account:
        return Account(account_id, secrets.token_hex(24), secrets.token_hex(24))

    return make(LEAD_ID), [make(f"f{i + 1}") for i in range(followers)]


async def create_accounts(admin: Admin, lead: Account, followers: list[Account], *,
                          lead_venue: str = "binance", follower_venue: str = "binance") -> None:  # fmt: skip
    await admin.create_account(lead.api_key, lead.secret, LEAD_BALANCE, lead.id, lead_venue)
    gate = asyncio.Semaphore(16)

    async def one(a: Account) -> None:
        async with gate:
            await admin.create_account(a.api_key, a.secret, FOLLOWER_BALANCE, a.id, follower_venue)

    await asyncio.gather(*(one(a) for a in followers))


def daemon_config(lead: Account, followers: list[Account], urls: Urls, *, api_port: int,
                  journal: Path, lifted: bool = True, lead_venue: str = "binance",
                  follower_venue: str = "binance", production_reads: bool = False,
                  weight_limit_1m: int | None = None,
                  source_address: str | None = None) -> tuple[dict[str, Any], dict[str, str]]:  # fmt: skip
    """The daemon's config (multiplier 1, caps far above the orders) and the env holding the keys:
    one config venue per personality used, named after it, with its hosts. With `production_reads`
    its background reads (reconcile, balances) run at the config's defaults, as a deployed daemon's
    do; otherwise once a day, so they stay out of the copy-lag rows. Under the venue's limits
    (`lifted` False) the daemon budgets `weight_limit_1m` per address (None: Binance's published
    limit); `source_address` binds its connections (bot.venues.source_address)."""
    env: dict[str, str] = {}
    for a in (lead, *followers):
        env[f"BENCH_{a.env_prefix}_KEY"], env[f"BENCH_{a.env_prefix}_SECRET"] = a.api_key, a.secret

    def creds(a: Account) -> dict[str, str]:
        return {"api_key_env": f"BENCH_{a.env_prefix}_KEY", "secret_env": f"BENCH_{a.env_prefix}_SECRET"}

    risk = {"max_order_notional": 1_000_000, "max_position_notional": 1_000_000,
            "max_total_exposure": 1_000_000, "max_leverage": 50, "slippage_bps": None}  # fmt: skip
    config = {
        "venues": {v: {"exchange": VENUE_EXCHANGES[v], "mode": "sim", "rest_url": urls[v][0],
                       "ws_url": urls[v][1],
                       "request_budget": {"weight_limit_1m": SIM_REQUEST_BUDGET if lifted
                                          else weight_limit_1m},
                       **({"source_address": source_address} if source_address else {})}
                   for v in dict.fromkeys((lead_venue, follower_venue))},
        "leads": [{"id": lead.id, "venue": lead_venue, "credentials": creds(lead), "symbols": [SYMBOL]}],
        "followers": [
            {"id": f.id, "venue": follower_venue, "credentials": creds(f), "leverage": 20, "risk": risk,
             "follows": [{"lead": lead.id, "sizing": {"mode": "multiplier", "multiplier": "1"}}]}
            for f in followers
        ],
        "reconcile": {"mode": "correct", "on_start": True,
                      **({} if production_reads else {"interval_s": 86_400})},
        # The exchange's limits are lifted (processes.SIM_REQUEST_BUDGET): so is the daemon's budget,
        # so start-up and fan-out run as before; the report shows the weight Binance would count.
        "executor": {"drain_timeout_s": 10, **({} if production_reads else {"balance_refresh_s": 86_400})},
        "journal": {"path": str(journal)},
        "api": {"enabled": True, "host": "127.0.0.1", "port": api_port},
        "logging": {"level": "warning", "json": True},
    }  # fmt: skip
    return config, env


async def wait_fanout(admin: Admin, lead: Account, followers: dict[str, Account], since_ns: int,
                      timeout: float, fmt: clientid.ClientIdFormat = clientid.DOTTED,
                      fill_id: Callable[[int], str] = str) -> None:  # fmt: skip
    """Until the exchange holds the orders of the followers the daemon serves last for this fill
    (its fan-out order is a seeded shuffle we can repeat), or `timeout`. Only the exchange is asked,
    and only about three accounts, so the wait does not slow the daemon it waits for."""
    deadline = time.monotonic() + timeout
    trades: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        trades = await lead_trades(admin, lead, since_ns)
        if trades:
            break
        await asyncio.sleep(0.01)
    expected: dict[str, str] = {}
    for trade in trades:
        trade_id = fill_id(int(trade["id"]))
        for fid in fanout_order(list(followers), trade_id)[-3:]:
            expected[clientid.client_order_id(lead.id, trade_id, fid, SYMBOL, 0, fmt)] = fid
    pending = set(expected.values())
    while pending and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
        for fid in list(pending):
            orders = (await admin.account(followers[fid].api_key, since_ns))["orders"]
            if any(o.get("clientOrderId") in expected for o in orders):
                pending.discard(fid)


async def wait_ready(http: aiohttp.ClientSession, api: str, daemon: Child, timeout: float) -> float:
    """Seconds from spawn to the first /readyz 200."""
    deadline = daemon.spawned_at + timeout
    while time.monotonic() < deadline:
        if not daemon.alive():
            raise BenchError(f"the daemon exited before it was ready: {daemon.stderr_tail()}")
        try:
            async with http.get(f"{api}/readyz") as resp:
                if resp.status == 200:
                    return time.monotonic() - daemon.spawned_at
        except aiohttp.ClientError:
            pass  # not listening yet
        await asyncio.sleep(0.05)
    raise BenchError(f"the daemon was not ready within {timeout:.0f}s: {daemon.stderr_tail()}")


def top_functions(profile_path: Path, key: str, count: int = 15) -> list[str]:
    out = io.StringIO()
    pstats.Stats(str(profile_path), stream=out).sort_stats(key).print_stats(count)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("ncalls")), 0)
    return [line.rstrip() for line in lines[start:] if line.strip()]


async def lead_trades(admin: Admin, lead: Account, since_ns: int) -> list[dict[str, Any]]:
    trades: list[dict[str, Any]] = (await admin.account(lead.api_key, since_ns))["trades"]
    return trades


LIMITS_POLL_S = 0.5


async def watch_limits(admin: Admin, tally: LimitsTally, stop: asyncio.Event) -> None:
    """Read the exchange's per-address counts every LIMITS_POLL_S until `stop` (and once after)."""
    while True:
        stopping = stop.is_set()
        with contextlib.suppress(BenchError, aiohttp.ClientError):
            tally.observe(await admin.limits(), int(time.time() // 60))
        if stopping:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), LIMITS_POLL_S)


async def run_copybot(*, http: aiohttp.ClientSession, admin: Admin, urls: Urls,
                      followers: int, fills: int, workdir: Path, profile: Path | None = None,
                      ready_timeout: float = 180.0, lifted: bool = True, lead_venue: str = "binance",
                      follower_venue: str = "binance", steady_s: float = 0.0) -> RunResult:  # fmt: skip
    """One row: a lead on `lead_venue` and N followers on `follower_venue`. Client ids are the
    follower venue's (Bybit's orderLinkId has no "."); the lead trade ids the ones the exchange's
    admin view gives, which are the lead fill ids for a Binance lead."""
    lead, accounts = new_accounts(followers)
    await create_accounts(admin, lead, accounts, lead_venue=lead_venue, follower_venue=follower_venue)
    port = free_port()
    pair = f"{lead_venue}-{follower_venue}"
    config, env = daemon_config(lead, accounts, urls, api_port=port, lifted=lifted, lead_venue=lead_venue,
                                follower_venue=follower_venue,
                                journal=workdir / f"journal-{pair}-{followers}.sqlite",
                                production_reads=steady_s > 0)  # fmt: skip
    fmt = adapter_for(VENUE_EXCHANGES[follower_venue]).client_ids
    fill_id = lead_fill_id(lead_venue)
    rest_url, ws_url = urls[lead_venue]
    config_path = workdir / f"copybot-{pair}-{followers}.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    child_env = {**os.environ, **env}
    if profile is not None:
        child_env["COPYBOT_PROFILE"] = str(profile)
    daemon = Child(f"copybot-{pair}-{followers}", ["run", "--config", str(config_path)], workdir, child_env)
    api = f"http://127.0.0.1:{port}"
    client = make_rest(VENUE_EXCHANGES[lead_venue], VenueMode.SIM, api_key=lead.api_key, secret=lead.secret,
                       rest_url=rest_url, ws_url=ws_url)  # fmt: skip
    notes: list[str] = []
    await admin.reset_limits()  # this run's weight only
    tally = LimitsTally()
    stop_watch = asyncio.Event()
    watcher = asyncio.create_task(watch_limits(admin, tally, stop_watch), name="bench:limits")
    try:
        await daemon.spawn()
        startup = await wait_ready(http, api, daemon, ready_timeout)
        ready_window = int(time.time() // 60)
        await client.load_markets()
        since_ns = time.time_ns()
        by_id = {a.id: a for a in accounts}
        for i in range(fills):
            if i and i % 10 == 0:  # on stderr: the report on stdout stays clean
                print(f"copybot bench:   {followers} follower(s): lead fill {i}/{fills}", file=sys.stderr,
                      flush=True)  # fmt: skip
            side = "buy" if i % 2 == 0 else "sell"
            placed_ns = time.time_ns()
            await client.create_order(SYMBOL, "market", side, str(LEAD_QTY))
            # Each fan-out completes before the next fill, so fills are measured one at a time.
            await wait_fanout(admin, lead, by_id, placed_ns, timeout=2.0 + followers / 250, fmt=fmt,
                              fill_id=fill_id)  # fmt: skip
            await asyncio.sleep(0.05)
        if steady_s > 0:
            print(f"copybot bench: steady state for {steady_s:g} s ...", file=sys.stderr, flush=True)
            await asyncio.sleep(max(0.0, steady_s - (time.time() - since_ns / 1e9)))
        async with http.get(f"{api}/status") as resp:
            internal = (await resp.json())["internal_lag_ms"]
        rss = peak_rss_mb(daemon.pid)
        code = await daemon.terminate(timeout=60)
        if code != 0:
            notes.append(f"the daemon exited with {code} on SIGTERM (expected 0)")
        trades = await lead_trades(admin, lead, since_ns)
        orders = await admin.orders_of([a.api_key for a in accounts], since_ns)
    finally:
        daemon.kill()
        await client.close()
        stop_watch.set()
        await watcher
    ids = [a.id for a in accounts]
    peak, rejected, bans = tally.totals()
    steady = tally.steady(ready_window) if steady_s > 0 else None

    def cids(trade_id: str) -> list[str]:
        fill = fill_id(int(trade_id))
        return [clientid.client_order_id(lead.id, fill, fid, SYMBOL, 0, fmt) for fid in ids]

    lags = fill_lags(trades, orders, followers, cids)
    return RunResult("copybot", followers, lags, venues=f"{lead_venue}->{follower_venue}", startup_s=startup,
                     rss_mb=rss, internal_lag_ms=internal, exit_code=code, notes=tuple(notes),
                     peak_weight_1m=peak, rejected_429=rejected, bans_418=bans,
                     steady_weight_1m=steady[0] if steady else None, steady_429=steady[1] if steady else None,
                     steady_minutes=steady[2] if steady else None)  # fmt: skip
