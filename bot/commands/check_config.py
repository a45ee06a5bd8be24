"""`copybot check-config`: validate a config without trading; `--connect` also logs in to every
account, checks what the venue says about it, and opens its user data stream for a few seconds, so
a wrong stream host or a key without stream access is found before a trial, not during it."""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

from bot.commands.common import EXIT_CONFIG, CommandError, load_or_report
from bot.config.models import AppConfig, ConfigError, load_config
from bot.core.errors import short
from bot.core.rounding import shown
from bot.venues import VenueMode, adapter_for, make_pro, make_rest
from bot.venues.ccxt_stream import is_connected
from bot.venues.source_address import session as bound_session


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config file")
    parser.add_argument("--connect", action="store_true", help="log in to every lead and follower account")
    parser.add_argument(
        "--stream-seconds",
        type=float,
        default=3.0,
        help="with --connect: how long each account's user data stream must stay open (default 3)",
    )
    parser.add_argument("--json", action="store_true", help="with --connect: print the accounts as JSON")


async def _probe_stream(client: Any, seconds: float) -> str:
    """Open the account's user data stream (ccxt.pro, as the daemon does) and keep it open for
    `seconds`: "ok" when it connected and nothing failed meanwhile."""
    loop = asyncio.get_running_loop()
    watch = asyncio.ensure_future(client.watch_my_trades())
    started = loop.time()
    connected_ms: float | None = None
    try:
        while loop.time() - started < seconds:
            if watch.done() and watch.exception() is not None:
                return f"FAILED: {short(watch.exception())}"  # type: ignore[arg-type]
            if connected_ms is None and is_connected(client):
                connected_ms = (loop.time() - started) * 1000
            await asyncio.sleep(0.05)
        if connected_ms is None:
            return f"FAILED: no stream connection within {seconds:g} s"
        return f"ok (connected in {connected_ms:.0f} ms, open {seconds:g} s)"
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)


async def _check_account(cfg: AppConfig, account_id: str, role: str, stream_seconds: float) -> dict[str, Any]:
    venue_name = cfg.lead(account_id).venue if role == "lead" else cfg.follower(account_id).venue
    venue = cfg.venues[venue_name]
    row: dict[str, Any] = {
        "account": account_id,
        "role": role,
        "venue": f"{venue_name} ({venue.exchange}, {venue.mode})",
    }
    client = stream = None
    # Bound to the venue's source address, both clients go out through one session (the daemon's
    # way, bot.live.venue_runtime); unbound, each opens its own, as ccxt does by default.
    session = bound_session(venue.source_address) if venue.source_address is not None else None
    try:
        creds = cfg.credentials_for(account_id)
        kwargs: dict[str, Any] = {
            "api_key": creds.api_key,
            "secret": creds.secret,
            "rest_url": venue.rest_url,
            "ws_url": venue.ws_url,
            "options": dict(venue.options),
            "timeout_ms": venue.timeout_ms,
        }
        if session is not None:
            kwargs["session"] = session
        client = make_rest(venue.exchange, VenueMode(venue.mode), **kwargs)
        markets = await client.load_markets()
        row["markets"] = len(markets)
        adapter = adapter_for(venue.exchange)
        row["balance"] = shown(adapter.equity(await client.fetch_balance()))
        try:
            mode = await client.fetch_position_mode()
            row["position_mode"] = "hedge" if mode.get("hedged") else "one-way"
        except Exception as exc:
            row["position_mode"] = f"unknown ({type(exc).__name__})"
        problem = await adapter.key_problem(
            client, VenueMode(venue.mode), allow_withdrawal=cfg.allow_withdrawal_keys
        )
        row["key"] = "ok" if problem is None else f"REFUSED: {problem}"
        stream = make_pro(venue.exchange, VenueMode(venue.mode), **kwargs)
        stream.set_markets(client.markets, client.currencies)
        row["stream"] = await _probe_stream(stream, stream_seconds)
    except Exception as exc:
        row.setdefault("key", f"FAILED: {short(exc)}")
        row.setdefault("stream", f"FAILED: {short(exc)}")
    finally:
        for c in (client, stream):
            if c is not None:
                await c.close()
        if session is not None:
            await session.close()
    return row


async def _connect_all(cfg: AppConfig, stream_seconds: float) -> list[dict[str, Any]]:
    jobs = [_check_account(cfg, lead.id, "lead", stream_seconds) for lead in cfg.leads]
    jobs += [_check_account(cfg, f.id, "follower", stream_seconds) for f in cfg.followers]
    return list(await asyncio.gather(*jobs))


def _print_rows(rows: list[dict[str, Any]]) -> None:
    """A table on a wide terminal; one block of `key: value` lines per account when narrow or piped."""
    from rich.console import Console
    from rich.table import Table

    columns = ("account", "role", "venue", "markets", "balance", "position_mode", "key", "stream")
    console = Console()
    if console.is_terminal and console.width >= 140:
        table = Table(title="accounts")
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*(str(row.get(c, "-")) for c in columns))
        console.print(table)
        return
    for row in rows:
        print(f"{row['account']} ({row['role']})")
        for column in columns[2:]:
            print(f"  {column}: {row.get(column, '-')}")


def demo_layout(path: str) -> AppConfig | None:
    """The config when it is valid only as a demo layout (sim venues without URLs, which
    `copybot demo --config` fills in with its own local exchange), else None."""
    try:
        cfg = load_config(path, allow_embedded_sim=True)
    except ConfigError:
        return None
    return cfg if any(v.mode == VenueMode.SIM and not v.rest_url for v in cfg.venues.values()) else None


def run(args: argparse.Namespace) -> int:
    demo = demo_layout(args.config)
    if demo is not None:
        print(f"{args.config}: valid as the demo's layout ({len(demo.leads)} lead(s), "
              f"{len(demo.followers)} follower(s)).\n"
              "Its sim venues have no URLs: the demo starts the local exchange and fills them in.\n"
              f"Run it with: copybot demo --config {args.config}")  # fmt: skip
        if args.connect:
            raise CommandError("--connect needs venues with URLs: a demo layout has none until the demo runs")
        return 0
    cfg = load_or_report(args.config)
    if cfg is None:
        return EXIT_CONFIG
    print(f"{args.config}: valid ({len(cfg.leads)} lead(s), {len(cfg.followers)} follower(s))")
    if not args.connect:
        return 0
    rows = asyncio.run(_connect_all(cfg, args.stream_seconds))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _print_rows(rows)
    ok = all(r.get("key") == "ok" and str(r.get("stream", "")).startswith("ok") for r in rows)
    return 0 if ok else 1
