"""`copybot check-config`: validate a config without trading; `--connect` also logs in to every
account and checks what the venue says about it."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from bot.commands.common import EXIT_CONFIG, load_or_report
from bot.config.models import AppConfig
from bot.core.errors import short
from bot.venues import VenueMode, adapter_for, make_rest

HELP = "Validate a config file; with --connect, log in to every account and print what the venue says."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="YAML config file")
    parser.add_argument("--connect", action="store_true", help="log in to every lead and follower account")


async def _check_account(cfg: AppConfig, account_id: str, role: str) -> dict[str, Any]:
    venue_name = cfg.lead(account_id).venue if role == "lead" else cfg.follower(account_id).venue
    venue = cfg.venues[venue_name]
    row: dict[str, Any] = {
        "account": account_id,
        "role": role,
        "venue": f"{venue_name} ({venue.exchange}, {venue.mode})",
    }
    client = None
    try:
        creds = cfg.credentials_for(account_id)
        client = make_rest(venue.exchange, VenueMode(venue.mode), api_key=creds.api_key, secret=creds.secret,
                           rest_url=venue.rest_url, ws_url=venue.ws_url, options=dict(venue.options),
                           timeout_ms=venue.timeout_ms)  # fmt: skip
        markets = await client.load_markets()
        row["markets"] = len(markets)
        adapter = adapter_for(venue.exchange)
        row["balance"] = str(adapter.equity(await client.fetch_balance()))
        try:
            mode = await client.fetch_position_mode()
            row["position_mode"] = "hedge" if mode.get("hedged") else "one-way"
        except Exception as exc:
            row["position_mode"] = f"unknown ({type(exc).__name__})"
        problem = await adapter.key_problem(
            client, VenueMode(venue.mode), allow_withdrawal=cfg.allow_withdrawal_keys
        )
        row["key"] = "ok" if problem is None else f"REFUSED: {problem}"
    except Exception as exc:
        row["key"] = f"FAILED: {short(exc)}"
    finally:
        if client is not None:
            await client.close()
    return row


async def _connect_all(cfg: AppConfig) -> list[dict[str, Any]]:
    jobs = [_check_account(cfg, lead.id, "lead") for lead in cfg.leads]
    jobs += [_check_account(cfg, f.id, "follower") for f in cfg.followers]
    return list(await asyncio.gather(*jobs))


def run(args: argparse.Namespace) -> int:
    cfg = load_or_report(args.config)
    if cfg is None:
        return EXIT_CONFIG
    print(f"{args.config}: valid ({len(cfg.leads)} lead(s), {len(cfg.followers)} follower(s))")
    if not args.connect:
        return 0
    rows = asyncio.run(_connect_all(cfg))
    from rich.console import Console
    from rich.table import Table

    table = Table(title="accounts")
    for column in ("account", "role", "venue", "markets", "balance", "position_mode", "key"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(row.get(c, "-")) for c in ("account", "role", "venue", "markets", "balance",
                                                         "position_mode", "key")))  # fmt: skip
    Console().print(table)
    ok = all(r.get("key") == "ok" for r in rows)
    return 0 if ok else 1
