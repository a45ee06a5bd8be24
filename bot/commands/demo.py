"""`copybot demo`: the local exchange in-process, a scripted lead, N followers, a live view, and a
summary that says whether every follower ended on its targets."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from bot.config.models import parse_config
from bot.demo.lead_script import ScriptedLead
from bot.demo.report import Recorder, copy_lags_ms, summarize
from bot.demo.setup import config_from_file, demo_accounts, demo_config
from bot.demo.view import DemoView
from bot.service.app import Daemon
from bot.service.logs import configure_logging
from bot.service.status import snapshot
from bot.sim.server import SimExchange
from bot.venues import VenueMode, make_rest

HELP = "Run copybot on the embedded local exchange with a scripted lead and N followers."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--followers", type=int, default=3, help="number of followers (default 3)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the lead trades (default 30)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON, no live view")
    parser.add_argument("--seed", type=int, default=7, help="seed of the scripted lead")
    parser.add_argument("--journal", default=None, help="journal path (default: a temporary file)")
    parser.add_argument(
        "--config",
        default=None,
        help="run the demo on this config's leads and followers (e.g. config/demo.yaml) instead of "
        "the built-in ones; --followers is then ignored",
    )


async def _admin(session: aiohttp.ClientSession, base: str, api_key: str) -> dict[str, Any]:
    async with session.get(f"{base}/_sim/accounts/{api_key}") as resp:
        resp.raise_for_status()
        data: dict[str, Any] = await resp.json()
        return data


async def run_demo(args: argparse.Namespace, journal_path: str) -> dict[str, Any]:
    sim = SimExchange()
    await sim.start()
    if args.config:
        data, env, accounts = config_from_file(args.config, journal_path)
    else:
        accounts = demo_accounts(args.followers)
        data, env = demo_config(accounts, journal_path)
    for account in accounts:
        balance = Decimal(account["balance"])
        sim.create_account(account["api_key"], account["secret"], balance, name=account["id"])
    cfg = parse_config(data, source="demo", allow_embedded_sim=True, env=env)
    daemon = Daemon(cfg, sim_urls=(sim.rest_url, sim.ws_url), api_port=0)
    recorder = Recorder()
    daemon_task = asyncio.create_task(daemon.run(), name="daemon")
    lead = accounts[0]
    lead_id = data["leads"][0]["id"]
    client = make_rest("binanceusdm", VenueMode.SIM, api_key=lead["api_key"], secret=lead["secret"],
                       rest_url=sim.rest_url, ws_url=sim.ws_url)  # fmt: skip
    view = None
    try:
        while daemon.engine is None or not daemon.engine.ready.is_set():
            if daemon_task.done():
                daemon_task.result()
                raise RuntimeError("the daemon stopped before it was ready")
            await asyncio.sleep(0.05)
        engine = daemon.engine
        engine.observers.append(recorder)
        await client.load_markets()
        symbols = data["leads"][0].get("symbols") or ["BTC/USDT:USDT", "ETH/USDT:USDT", "THIN/USDT:USDT"]
        # Quote amount per lead entry; the thin book gets orders it can absorb between refills.
        notional = {
            "BTC/USDT:USDT": Decimal(4000),
            "ETH/USDT:USDT": Decimal(3000),
            "THIN/USDT:USDT": Decimal(40),
        }
        markets = engine.leads[lead_id].markets
        script = ScriptedLead(
            client, sim.rest_url, markets, symbols=symbols, seed=args.seed, notional=notional
        )
        if not args.json and sys.stdout.isatty():
            view = DemoView(engine, recorder)
            view.start()
        started = time.monotonic()
        await script.run(args.seconds)
        # The lead is idle: let the copies settle, then one reconciliation pass, then settle again.
        await engine.wait_idle(15)
        assert daemon.reconciler is not None
        report = await daemon.reconciler.run_once("final")
        await engine.wait_idle(15)
        elapsed = time.monotonic() - started
        async with aiohttp.ClientSession() as session:
            lead_trades = (await _admin(session, sim.rest_url, lead["api_key"]))["trades"]
            follower_orders = []
            for account in accounts[len(data["leads"]) :]:
                follower_orders += (await _admin(session, sim.rest_url, account["api_key"]))["orders"]
        lags = copy_lags_ms(lead_trades, follower_orders, recorder)
        return summarize(status=snapshot(engine), recorder=recorder, lags_ms=lags, seconds=round(elapsed, 1),
                         lead_orders=script.orders, reconcile_drifts=len(report.drifts))  # fmt: skip
    finally:
        if view is not None:
            view.stop()
        daemon.request_stop("demo finished")
        await asyncio.gather(daemon_task, return_exceptions=True)
        await client.close()
        await sim.stop()


def _print_summary(summary: dict[str, Any]) -> None:
    lag = summary["copy_lag_ms"]
    print(f"\ncopybot demo: {summary['seconds']}s, {summary['lead_fills']} lead fills, "
          f"{summary['follower_orders']} follower orders {summary['orders_by_outcome']}")  # fmt: skip
    print(f"copy lag (lead fill -> follower order at the exchange): p50 {lag['p50']} ms, p99 {lag['p99']} ms "
          f"over {lag['samples']} orders")  # fmt: skip
    denials, clips = summary["denials_by_reason"] or "none", summary["clips_by_reason"] or "none"
    print(f"denials by reason: {denials}; clips: {clips}")
    for fid, f in summary["followers"].items():
        mark = "OK " if f["match"] else "OFF"
        detail = (
            ", ".join(
                f"{s} {p['position']}/{p['target']}"
                + (" (rest below the venue minimum)" if not p["match"] else "")
                for s, p in f["positions"].items()
            )
            or "flat"
        )
        head = f"  [{mark}] {fid} {f['state']} equity {f['equity']} orders {f['orders']}"
        print(f"{head}: position/target {detail}")
    print("all followers on target" if summary["all_match"] else "SOME FOLLOWERS ARE OFF TARGET")


def run(args: argparse.Namespace) -> int:
    if args.followers < 1:
        print("copybot demo: --followers must be at least 1", file=sys.stderr)
        return 2
    configure_logging("warning", json=False, stream=sys.stderr, cache=True)
    with tempfile.TemporaryDirectory(prefix="copybot-demo-") as tmp:
        journal_path = args.journal or str(Path(tmp) / "journal.sqlite")
        try:
            import uvloop

            summary = uvloop.run(run_demo(args, journal_path))
        except ImportError:
            summary = asyncio.run(run_demo(args, journal_path))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)
    return 0 if summary["all_match"] else 1
