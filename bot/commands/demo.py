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

from bot.commands.common import CommandError
from bot.config.models import ConfigError, load_config, parse_config
from bot.core.rounding import shown
from bot.demo.churn import Churn, run_flows
from bot.demo.lead_script import ScriptedLead
from bot.demo.report import Recorder, copy_lags_ms, summarize
from bot.demo.setup import (
    JOINER_PROFILE,
    VENUE_EXCHANGES,
    config_from_file,
    demo_accounts,
    demo_config,
    follower_block,
    joiner_account,
)
from bot.demo.view import DemoView, LogRelay
from bot.service.app import Daemon
from bot.service.logs import configure_logging
from bot.service.status import snapshot
from bot.sim.bybit.venue import exec_uuid
from bot.sim.server import SimExchange
from bot.venues import VenueMode, make_rest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--followers", type=int, default=3, help="number of followers (default 3)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the lead trades (default 30)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON, no live view")
    parser.add_argument("--seed", type=int, default=7, help="seed of the scripted lead")
    parser.add_argument(
        "--venues",
        default="binance",
        help="venues of the local exchange, comma-separated (binance, bybit): the lead trades on the first, "
        "followers take them in turn; the summary shows copy lag per venue pair (default binance)",
    )
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


def parse_venues(text: str) -> tuple[str, ...]:
    venues = tuple(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    unknown = [v for v in venues if v not in VENUE_EXCHANGES]
    if not venues or unknown:
        raise ValueError(
            f"--venues: {', '.join(unknown) or 'none given'}: use some of {', '.join(VENUE_EXCHANGES)}"
        )
    return venues


async def run_demo(
    args: argparse.Namespace, journal_path: str, relay: LogRelay | None = None
) -> dict[str, Any]:
    venues = parse_venues(args.venues)
    began = time.monotonic()
    sim = SimExchange(venues=venues)
    await sim.start()
    several = len(venues) > 1
    if args.config:
        data, env, accounts = config_from_file(args.config, journal_path)
        for account in accounts:
            account["venue"] = venues[0]
        joiner = joiner_account("joiner", venues[0])
        joiner_venue = data["leads"][0]["venue"]
    else:
        accounts = demo_accounts(args.followers, venues)
        data, env = demo_config(accounts, journal_path, sim.urls if several else None)
        n = args.followers
        joiner = joiner_account(f"f{n + 1}", venues[n % len(venues)])
        joiner_venue = joiner["venue"] if several else "local"
    lead_id = data["leads"][0]["id"]
    # The follower that joins mid-run (bot/demo/churn.py): its account and keys exist from the
    # start, as an operator's would before `copybot follower add`; the daemon learns of it then.
    name = joiner["id"].upper()
    env[f"DEMO_{name}_KEY"], env[f"DEMO_{name}_SECRET"] = joiner["api_key"], joiner["secret"]
    joiner_cfg = follower_block(JOINER_PROFILE, joiner, joiner_venue, lead_id)
    leaver = data["followers"][-1]["id"]
    accounts.append(joiner)
    for account in accounts:
        balance = Decimal(account["balance"])
        sim.create_account(account["api_key"], account["secret"], balance, name=account["id"],
                           venue=account["venue"])  # fmt: skip
    cfg = parse_config(data, source="demo", allow_embedded_sim=True, env=env)
    first = sim.urls[venues[0]]
    daemon = Daemon(cfg, sim_urls=(first["rest"], first["ws"]), api_port=0)
    recorder = Recorder()
    daemon_task = asyncio.create_task(daemon.run(), name="daemon")
    lead = accounts[0]
    client = make_rest(VENUE_EXCHANGES[lead["venue"]], VenueMode.SIM, api_key=lead["api_key"],
                       secret=lead["secret"], rest_url=first["rest"], ws_url=first["ws"])  # fmt: skip
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
            client, first["rest"], markets, symbols=symbols, seed=args.seed, notional=notional
        )
        if not args.json and sys.stdout.isatty():
            view = DemoView(engine, recorder, relay)
            view.start()
        started = time.monotonic()
        churn = Churn(daemon, joiner_cfg, leaver)
        await asyncio.gather(script.run(args.seconds), churn.run(args.seconds))
        # The lead is idle: let the copies settle, then one reconciliation pass, then settle again.
        await engine.wait_idle(15)
        assert daemon.reconciler is not None
        report = await daemon.reconciler.run_once("final")
        await engine.wait_idle(15)
        retired = await churn.wait_retired(15)
        elapsed = time.monotonic() - started
        async with aiohttp.ClientSession() as session:
            lead_trades = (await _admin(session, first["rest"], lead["api_key"]))["trades"]
            orders: list[dict[str, Any]] = []
            for account in accounts[len(data["leads"]) :]:
                orders += (await _admin(session, first["rest"], account["api_key"]))["orders"]
            leaver_key = next(a["api_key"] for a in accounts if a["id"] == leaver)
            rows = (await _admin(session, first["rest"], leaver_key))["positions"]
            held_after = {p["symbol"]: p["positionAmt"] for p in rows}
        # The admin view names trades by the engine's id; a Bybit lead's fills carry execIds.
        fill_id = exec_uuid if lead["venue"] == "bybit" else str
        status = snapshot(engine)
        status["followers"].pop(leaver, None)  # reported below, as the follower that left
        lags = copy_lags_ms(lead_trades, orders, recorder, fill_id)
        summary = summarize(status=status, recorder=recorder, lags_ms=lags, seconds=round(elapsed, 1),
                            lead_orders=script.orders, reconcile_drifts=len(report.drifts))  # fmt: skip
        summary["membership"] = churn.report(retired, held_after)
        # The leaver's target is flat: with on_leave close it is on target once closed and retired.
        summary["all_match"] = summary["all_match"] and retired and not held_after
        summary["aum_flows"] = await run_flows(daemon, lead_id, time.monotonic() - began)
        # Per venue pair: the daemon's own figures, each venue's stamps on this host's clock through
        # the clock offset it measured for that venue (what /status shows).
        summary["copy_lag_ms_by_venue"] = status["copy_lag_ms_by_venue"]
        venue_of = {a["id"]: a["venue"] for a in accounts}
        for fid, row in summary["followers"].items():
            row["venue"] = venue_of.get(fid)
        return summary
    finally:
        if view is not None:
            view.stop()
        daemon.request_stop("demo finished")
        await asyncio.gather(daemon_task, return_exceptions=True)
        await client.close()
        await sim.stop()


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items()) or "none"


def _print_summary(summary: dict[str, Any]) -> None:
    lag = summary["copy_lag_ms"]
    outcomes = _counts(summary["orders_by_outcome"])
    print(f"\ncopybot demo: {summary['seconds']}s, {summary['lead_fills']} lead fills, "
          f"{summary['follower_orders']} follower orders ({outcomes})")  # fmt: skip
    print(f"copy lag, exchange to exchange: p50 {lag['p50']} ms, p99 {lag['p99']} ms "
          f"over {lag['samples']} orders")  # fmt: skip
    print(
        "  (lead fill at the exchange -> follower order at the exchange; the live view's\n"
        "   'last copy lag' is copybot's own part of it: fill received -> order sent)"
    )
    by_venue = summary.get("copy_lag_ms_by_venue", {})
    if len(by_venue) > 1:
        print("copy lag per venue pair, as the daemon measures it (each venue's clock offset applied):")
        for pair, v in by_venue.items():
            print(f"  {pair}: p50 {v['p50']} ms, p99 {v['p99']} ms over {v['samples']} orders")
    print(f"denials by reason: {_counts(summary['denials_by_reason'])}")
    print(f"clips by reason: {_counts(summary['clips_by_reason'])}")
    for fid, f in summary["followers"].items():
        mark = "OK " if f["match"] else "OFF"
        print(f"  [{mark}] {fid} ({f.get('venue')}) {f['state']}, equity {shown(f['equity'])}, "
              f"{f['orders']} orders; position / target:")  # fmt: skip
        for symbol, p in f["positions"].items():
            rest = "" if p["match"] else "  (rest below the venue minimum)"
            print(f"        {symbol:<16} {p['position']} / {p['target']}{rest}")
        if not f["positions"]:
            print("        flat")
    _print_membership(summary)
    print("all followers on target" if summary["all_match"] else "SOME FOLLOWERS ARE OFF TARGET")


def _print_membership(summary: dict[str, Any]) -> None:
    """Who joined and left mid-run, and the lead's AUM over the run as net flows + performance."""
    joined, left = summary["membership"]["joined"], summary["membership"]["left"]
    print("followers joining and leaving mid-run (the runtime path of `copybot follower add` / `remove`):")
    if joined:
        copied = ", ".join(joined["copied"]) or "nothing open"
        skipped = "; ".join(f"{k}: {v}" for k, v in joined["not_copied"].items())
        print(f"  + {joined['id']} joined at {joined['at_s']} s with equity {shown(joined['equity'])} "
              f"(on_join {joined['on_join']}): copied {copied}"
              + (f"; not copied {skipped}" if skipped else ""))  # fmt: skip
    if left:
        held = ", ".join(f"{s} {q}" for s, q in left["held_at_leave"].items()) or "nothing"
        after = "flat at the exchange" if left["flat"] else f"still holds {left['positions_after']}"
        print(f"  - {left['id']} left at {left['at_s']} s (on_leave {left['on_leave']}): held {held}; "
              f"now {after}{', retired' if left['retired'] else ', NOT retired yet'}")  # fmt: skip
    flows = summary["aum_flows"]
    print(f"AUM of {flows['lead']} over the run: start {shown(flows['start_aum'])} + net flows "
          f"{shown(flows['net_flows'])} (in {shown(flows['inflows'])}, out {shown(flows['outflows'])}) "
          f"+ performance {shown(flows['performance'])} = end {shown(flows['end_aum'])}")  # fmt: skip
    for f in flows["flows"]:
        print(f"    {f['kind']:<10} {f['follower']:<10} {shown(f['amount']):>14}  by {f['actor']}")


def run(args: argparse.Namespace) -> int:
    if args.followers < 1:
        print("copybot demo: --followers must be at least 1", file=sys.stderr)
        return 2
    try:
        parse_venues(args.venues)
    except ValueError as exc:
        print(f"copybot demo: {exc}", file=sys.stderr)
        return 2
    if args.config:
        try:  # the whole file checked before the exchange starts; the demo fills in the venue URLs
            layout = load_config(args.config, allow_embedded_sim=True)
        except ConfigError as exc:
            raise CommandError(f"invalid config: {exc}", 2) from None
        if any(v.mode is not VenueMode.SIM or v.rest_url for v in layout.venues.values()):
            raise CommandError(
                f"--config {args.config}: the demo runs on its own local exchange; give it a layout whose "
                "venues are `mode: sim` without URLs, like config/demo.yaml",
                2,
            )
        try:
            config_from_file(args.config, "unused")
        except ValueError as exc:
            raise CommandError(str(exc), 2) from None
    relay = LogRelay(sys.stderr)
    configure_logging("warning", json=False, stream=relay, cache=True)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix="copybot-demo-") as tmp:
        journal_path = args.journal or str(Path(tmp) / "journal.sqlite")
        try:
            import uvloop

            summary = uvloop.run(run_demo(args, journal_path, relay))
        except ImportError:
            summary = asyncio.run(run_demo(args, journal_path, relay))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)
    return 0 if summary["all_match"] else 1
