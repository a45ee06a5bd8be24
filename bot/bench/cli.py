"""`copybot bench`: copy lag, fan-out, start-up and memory of the daemon against a polling copier,
on the local exchange in its own process. Method and latest figures: docs/benchmark.md."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import aiohttp

from bot.bench import cluster_report
from bot.bench.baseline import run_baseline
from bot.bench.cluster_cli import run_cluster_bench, shard_counts
from bot.bench.processes import VENUE_EXCHANGES, Admin, BenchError, machine, raise_fd_limit, start_sim
from bot.bench.report import Report, RunResult, render_markdown, to_json
from bot.bench.runner import LEAD_QTY, run_copybot, top_functions

HELP = "Benchmark copy lag and fan-out on the local exchange against a polling copier."

CI_BASELINE_FILLS = 5
CI_BASELINE_MAX = 10


def _followers(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--followers: expected e.g. 1,10,100, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"--followers: every count must be at least 1, got {text!r}")
    return values


def _venues(text: str) -> list[str]:
    venues = list(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    unknown = [v for v in venues if v not in VENUE_EXCHANGES]
    if not venues or unknown:
        raise argparse.ArgumentTypeError(
            f"expected some of {', '.join(VENUE_EXCHANGES)}, comma-separated; got {text!r}"
        )
    return venues


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--followers", type=_followers, default=[1, 10, 100, 1000],
                        help="follower counts to measure (default 1,10,100,1000)")  # fmt: skip
    parser.add_argument("--follower-venues", type=_venues, default=["binance"],
                        help="venues of the local exchange the followers are on, comma-separated: each "
                             "follower count runs once per venue, the lead always on --lead-venue "
                             "(default binance; e.g. binance,bybit adds the cross-venue rows)")  # fmt: skip
    parser.add_argument("--lead-venue", choices=sorted(VENUE_EXCHANGES), default="binance",
                        help="venue of the lead (default binance)")  # fmt: skip
    parser.add_argument("--fills", type=int, default=30, help="lead market orders per run (default 30)")
    parser.add_argument("--out", default="bench-out", help="folder for results.md and results.json")
    parser.add_argument("--baseline-max", type=int, default=10,
                        help="largest baseline follower count (default 10; 0 skips it)")  # fmt: skip
    parser.add_argument("--no-baseline-wait", action="store_true",
                        help=f"CI: baseline N <= {CI_BASELINE_MAX}, {CI_BASELINE_FILLS} fills")  # fmt: skip
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the largest run's daemon and report its top functions")  # fmt: skip
    parser.add_argument("--venue-limits", action="store_true",
                        help="keep Binance's request-weight and order limits in the exchange and the daemon "
                             "(default: lifted, so copy lags compare with earlier reports)")  # fmt: skip
    parser.add_argument("--steady-s", type=float, default=0.0,
                        help="keep each copybot run going this many seconds from its first fill, with the "
                             "daemon's default reconcile and balance intervals, and report the weight per "
                             "minute after start-up (use with --venue-limits; 150 or more for two whole "
                             "minutes)")  # fmt: skip
    parser.add_argument("--shards", type=shard_counts, default=None,
                        help="instead of the copy-lag rows: the single process and then a Redis, two lead "
                             "feeds and N follower shards (copybot run --role feed|shard), each on its own "
                             "127.0.0.x address, for each count, e.g. 1,2,4 (docs/benchmark.md, "
                             "\"Shards\")")  # fmt: skip
    parser.add_argument("--no-single", action="store_true",
                        help="with --shards: leave out the single-process row (a long one under "
                             "--venue-limits, when it was measured already)")  # fmt: skip
    parser.add_argument("--weight-limit-1m", type=int, default=None,
                        help="with --venue-limits: the exchange's request weight per address per minute "
                             "in place of Binance's 2,400 (scaled down; the report says so)")  # fmt: skip


async def run_bench(args: argparse.Namespace, workdir: Path) -> Report:
    lifted = not args.venue_limits
    venues = (args.lead_venue, *args.follower_venues)
    sim, urls = await start_sim(workdir, lifted=lifted, venues=venues)
    # The admin API is served on every REST host; the baseline polls a Binance lead.
    rest_url, ws_url = urls.get("binance") or urls[args.lead_venue]
    pairs = [(args.lead_venue, f) for f in args.follower_venues]
    results: list[RunResult] = []
    profile: dict[str, list[str]] = {}
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
            admin = Admin(http, rest_url)
            for n in args.followers:
                for lead_venue, follower_venue in pairs:
                    pair = f"{lead_venue} -> {follower_venue}"
                    print(
                        f"copybot bench: copybot with {n} follower(s), {pair} ...",
                        file=sys.stderr,
                        flush=True,
                    )
                    # Under the venue's limits start-up reads are paced: ~13 weight a follower,
                    # 2,160 a minute.
                    ready_timeout = 180.0 if lifted else max(180.0, n * 0.6)
                    results.append(await run_copybot(http=http, admin=admin, urls=urls, followers=n,
                                                     fills=args.fills, workdir=workdir, lifted=lifted,
                                                     lead_venue=lead_venue, follower_venue=follower_venue,
                                                     steady_s=args.steady_s,
                                                     ready_timeout=ready_timeout))  # fmt: skip
            if args.profile:
                # A separate run, so the profiler's overhead stays out of the measured rows.
                n, prof = max(args.followers), workdir / "daemon.prof"
                print(
                    f"copybot bench: profiled copybot with {n} follower(s) ...", file=sys.stderr, flush=True
                )
                lead_venue, follower_venue = pairs[0]
                run = await run_copybot(http=http, admin=admin, urls=urls, followers=n, fills=args.fills,
                                        workdir=workdir, profile=prof, lifted=lifted, lead_venue=lead_venue,
                                        follower_venue=follower_venue)  # fmt: skip
                results.append(replace(run, copier="copybot+cProfile"))
                if prof.exists():
                    profile = {k: top_functions(prof, k) for k in ("tottime", "cumtime")}
            baseline_max, fills = args.baseline_max, args.fills
            if args.no_baseline_wait:
                baseline_max, fills = min(baseline_max, CI_BASELINE_MAX), min(fills, CI_BASELINE_FILLS)
            if args.lead_venue != "binance":
                baseline_max = 0  # the polling baseline reads a Binance lead's trades
            for n in (n for n in (1, 10, 100) if n <= baseline_max):
                print(f"copybot bench: baseline with {n} follower(s) ...", file=sys.stderr, flush=True)
                results.append(await run_baseline(admin=admin, rest_url=rest_url, ws_url=ws_url,
                                                  followers=n, fills=fills, qty=LEAD_QTY))  # fmt: skip
    finally:
        await sim.terminate(timeout=10)
        sim.kill()
    return Report(machine(), results, args.fills, profile)


def run(args: argparse.Namespace) -> int:
    if args.fills < 1:
        print("copybot bench: --fills must be at least 1", file=sys.stderr)
        return 2
    if args.steady_s < 0:
        print("copybot bench: --steady-s must be 0 or more", file=sys.stderr)
        return 2
    if args.weight_limit_1m is not None and (not args.venue_limits or args.weight_limit_1m < 1):
        print("copybot bench: --weight-limit-1m needs --venue-limits and a positive count", file=sys.stderr)
        return 2
    raise_fd_limit()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.shards:
        return _run_shards(args, out)
    with tempfile.TemporaryDirectory(prefix="copybot-bench-") as tmp:
        try:
            report = asyncio.run(run_bench(args, Path(tmp)))
        except BenchError as exc:
            print(f"copybot bench: {exc}", file=sys.stderr)
            return 1
    _write(out, "results", render_markdown(report), to_json(report))
    failed = [r for r in report.results if r.copier == "copybot" and r.exit_code != 0]
    return 1 if failed else 0


def _run_shards(args: argparse.Namespace, out: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="copybot-bench-") as tmp:
        try:
            report = asyncio.run(run_cluster_bench(args, Path(tmp)))
        except BenchError as exc:
            print(f"copybot bench: {exc}", file=sys.stderr)
            return 1
    _write(out, "shards", cluster_report.render_markdown(report), cluster_report.to_json(report))
    failed = [
        r
        for r in report.rows
        if r.missing_orders or any(c != 0 for c in r.exit_codes.values() if c is not None)
    ]
    return 1 if failed else 0


def _write(out: Path, stem: str, markdown: str, data: str) -> None:
    """The report as `<stem>.md` (also printed) and `<stem>.json` in `out`."""
    (out / f"{stem}.md").write_text(markdown)
    (out / f"{stem}.json").write_text(data)
    print(markdown)
