"""`copybot bench --shards 1,2,4`: the single process and then N follower shards at each follower
count, one local exchange for all rows, a fresh Redis per cluster row (bot/bench/cluster_run.py).
Method and figures: docs/benchmark.md, "Shards"."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import aiohttp

from bot.bench.cluster_report import ClusterReport, ClusterRow
from bot.bench.cluster_run import Limits, run_row
from bot.bench.processes import Admin, loopback_addresses, machine, start_sim

# Start-up under the limits reads about 13 weight per follower within 90% of a minute's budget
# (docs/benchmark.md); the wait for readiness allows twice that.
STARTUP_WEIGHT_PER_FOLLOWER = 13


def shard_counts(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shards: expected e.g. 1,2,4, got {text!r}") from None
    if not values or any(v < 1 or v > 32 for v in values):
        raise argparse.ArgumentTypeError(f"--shards: every count must be 1 to 32, got {text!r}")
    return values


def ready_timeout(followers: int, processes: int, limits: Limits) -> float:
    if limits.lifted:
        return 120.0 + followers * 0.05
    per_minute = limits.weight_limit_1m or 2400
    minutes = followers * STARTUP_WEIGHT_PER_FOLLOWER / max(processes, 1) / per_minute
    return 180.0 + 2 * 60 * minutes


async def run_cluster_bench(args: argparse.Namespace, workdir: Path) -> ClusterReport:
    limits = Limits(lifted=not args.venue_limits, weight_limit_1m=args.weight_limit_1m)
    # Two feeds, then one address per shard; the single process takes the first.
    addresses = loopback_addresses(2 + max(args.shards))
    sim, urls = await start_sim(workdir, lifted=limits.lifted, weight_limit_1m=limits.weight_limit_1m)
    rows: list[ClusterRow] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            admin = Admin(http, urls["binance"][0])
            for n in args.followers:
                # the single process first, as the reference, unless it was measured already
                for shards in [*([] if args.no_single else [0]), *args.shards]:
                    timeout = ready_timeout(n, shards or 1, limits)
                    rows.append(
                        await run_row(
                            http=http, admin=admin, urls=urls, shards=shards, followers=n, fills=args.fills,
                            workdir=workdir, limits=limits, addresses=addresses, ready_timeout=timeout,
                        )
                    )  # fmt: skip
    finally:
        await sim.terminate(timeout=10)
        sim.kill()
    return ClusterReport(machine(), rows, args.fills, _command())


def _command() -> str:
    argv = sys.argv[1:]
    if "bench" in argv:
        argv = argv[argv.index("bench") + 1 :]
    return "copybot bench " + shlex.join(argv)
