"""`copybot sim`: run the local exchange until SIGINT/SIGTERM.

Prints one JSON line on stdout once every host listens, so a parent process (the benchmark, the
demo) can read the ports it got: `{"rest": ..., "ws": ...}` for `--venue binance` (the default),
otherwise `{"binance": {"rest", "ws"}, "bybit": {"rest", "ws"}}` (only the venues served).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from bot.sim.bybit.endpoints import DEFAULT_LIMITS
from bot.sim.config import SimConfigError, load_sim_config
from bot.sim.server import SimExchange

HELP = "Run the local exchange (Binance USD-M and/or Bybit V5 linear: REST + user streams) on loopback."
VENUES = {"binance": ("binance",), "bybit": ("bybit",), "both": ("binance", "bybit")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--rest-port", type=int, default=0, help="REST port; 0 picks a free one")
    parser.add_argument("--ws-port", type=int, default=0, help="user-stream port; 0 picks a free one")
    parser.add_argument(
        "--venue", choices=sorted(VENUES), default="binance", help="personalities to serve (default binance)"
    )
    parser.add_argument("--bybit-rest-port", type=int, default=0, help="Bybit REST port; 0 picks one")
    parser.add_argument("--bybit-ws-port", type=int, default=0, help="Bybit private ws port; 0 picks one")
    parser.add_argument(
        "--config", type=Path, help="market YAML (default: the packaged bot/sim/default.yaml)"
    )
    parser.add_argument("--accounts", type=Path, help="YAML list of accounts to preload")
    parser.add_argument("--listen-key-ttl", type=float, help="listenKey lifetime in seconds")
    parser.add_argument("--seed", type=int, help="offset added to every market's random-walk seed")
    parser.add_argument("--tick-interval", type=float, help="seconds between price steps; 0 freezes prices")
    parser.add_argument(
        "--bybit-clock-offset-ms",
        type=int,
        help="how far the Bybit personality's clock runs ahead of this host's (negative: behind); "
        "overrides bybit.clock_offset_ms of the config",
    )
    parser.add_argument(
        "--no-rate-limits",
        action="store_true",
        help="lift the request-weight, order-count and connection-attempt limits, and Bybit's per-UID "
        "request limits (for benchmarks)",
    )


def _load_accounts(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    if not isinstance(data, list):
        raise SimConfigError(f"{path}: expected a YAML list of accounts")
    for i, item in enumerate(data):
        if not isinstance(item, dict) or "api_key" not in item or "secret" not in item:
            raise SimConfigError(f"{path}: account #{i} needs api_key and secret")
    return data


async def _serve(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {
        "listen_key_ttl_s": args.listen_key_ttl,
        "tick_interval_s": args.tick_interval,
    }
    unlimited = 10**12
    if args.no_rate_limits:
        for key in ("weight_limit_1m", "order_limit_10s", "order_limit_1m", "ws_connect_limit"):
            overrides[key] = unlimited
    config = load_sim_config(args.config, **overrides)
    bybit = config.bybit
    if args.no_rate_limits:  # Bybit's per-UID limits per endpoint and second as well
        lifted = dict.fromkeys((*DEFAULT_LIMITS, *bybit.rate_limits), unlimited)
        bybit = bybit.model_copy(update={"rate_limits": lifted, "default_rate_limit": unlimited})
    if args.bybit_clock_offset_ms is not None:
        bybit = bybit.model_copy(update={"clock_offset_ms": args.bybit_clock_offset_ms})
    config = config.model_copy(update={"bybit": bybit})
    if args.seed is not None:
        markets = tuple(m.model_copy(update={"seed": m.seed + args.seed}) for m in config.markets)
        config = config.model_copy(update={"markets": markets})
    sim = SimExchange(config, venues=VENUES[args.venue])
    for item in _load_accounts(args.accounts) if args.accounts else []:
        sim.create_account(
            str(item["api_key"]),
            str(item["secret"]),
            Decimal(str(item.get("balance", "10000"))),
            name=str(item.get("name", "")),
            withdrawals_enabled=bool(item.get("withdrawals_enabled", False)),
            venue=str(item.get("venue", "binance")),
        )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await sim.start(
        args.host,
        args.rest_port,
        args.ws_port,
        args.bybit_rest_port,
        args.bybit_ws_port,
    )
    try:
        line = {"rest": sim.rest_url, "ws": sim.ws_url} if sim.venues == ("binance",) else sim.urls
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        await sim.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        try:
            import uvloop

            return uvloop.run(_serve(args))
        except ImportError:
            return asyncio.run(_serve(args))
    except (SimConfigError, OSError, ValueError) as exc:
        print(f"copybot sim: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # `python -m bot.sim.cli`, the same command without the dispatcher
    _parser = argparse.ArgumentParser(prog="copybot sim", description=HELP)
    add_arguments(_parser)
    sys.exit(run(_parser.parse_args()))
