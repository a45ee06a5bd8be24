"""Throughput of the local exchange driven by the real ccxt client.

Starts `copybot sim` as a subprocess on loopback, creates K accounts through the admin API, and runs K
concurrent ccxt clients in this process placing small market orders until N orders are done or the
time limit is reached. Prints orders/s, client round trip p50/p99, and the server's own time per
order (ackTimeNs - recvTimeNs from the admin API).

    python scripts/bench_sim.py --clients 16 --orders 5000 --max-seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

import aiohttp

from bot.core.stats import percentile
from bot.venues import VenueMode, make_rest
from bot.venues.clients import share_markets

SYMBOL = "BTC/USDT:USDT"


def start_sim() -> tuple[subprocess.Popen[str], dict[str, str]]:
    """`python -m bot.cli sim`; falls back to `python -m bot.sim.cli` if the dispatcher cannot start
    (another command's module failing to import must not stop the benchmark)."""
    for module in (["bot.cli", "sim"], ["bot.sim.cli"]):
        cmd = [
            sys.executable,
            "-m",
            *module,
            "--host",
            "127.0.0.1",
            "--tick-interval",
            "0",
            "--no-rate-limits",
        ]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if line.strip():
            return proc, json.loads(line)
        err = proc.stderr.read() if proc.stderr else ""
        proc.wait(timeout=5)
        print(
            f"`python -m {' '.join(module)}` did not start: {err.strip().splitlines()[-1:]}", file=sys.stderr
        )
    raise SystemExit("could not start the local exchange")


def pct(values: list[float], q: float) -> float:
    value = percentile(values, q)
    assert value is not None, "no samples"
    return value


async def bench(urls: dict[str, str], k: int, total: int, max_seconds: float) -> None:
    async with aiohttp.ClientSession() as http:
        for i in range(k):
            spec = {"api_key": f"bench-{i}", "secret": f"secret-{i}", "balance": "1000000", "name": f"b{i}"}
            async with http.post(urls["rest"] + "/_sim/accounts", json=spec) as r:
                r.raise_for_status()
    clients = [
        make_rest(
            "binanceusdm",
            VenueMode.SIM,
            api_key=f"bench-{i}",
            secret=f"secret-{i}",
            rest_url=urls["rest"],
            ws_url=urls["ws"],
        )
        for i in range(k)
    ]
    await clients[0].load_markets()
    for client in clients[1:]:
        share_markets(clients[0], client)
    rtts: list[float] = []
    errors = 0
    started_ns = time.time_ns()
    deadline = time.monotonic() + max_seconds
    remaining = total

    async def worker(client: Any, n: int) -> None:
        nonlocal remaining, errors
        while remaining > 0 and time.monotonic() < deadline:
            remaining -= 1
            side = "buy" if n % 2 == 0 else "sell"
            n += 1
            t0 = time.perf_counter()
            try:
                await client.create_order(SYMBOL, "market", side, 0.002)
            except Exception:  # counted, not fatal: the figure is throughput
                errors += 1
                continue
            rtts.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    try:
        await asyncio.gather(*(worker(c, i) for i, c in enumerate(clients)))
    finally:
        elapsed = time.perf_counter() - t0
        for client in clients:
            await client.close()
    server_us: list[float] = []
    async with aiohttp.ClientSession() as http:
        for i in range(k):
            url = f"{urls['rest']}/_sim/accounts/bench-{i}?since_ns={started_ns}"
            async with http.get(url) as r:
                for order in (await r.json())["orders"]:
                    server_us.append((order["ackTimeNs"] - order["recvTimeNs"]) / 1000)
    print(f"clients={k} orders={len(rtts)} errors={errors} seconds={elapsed:.2f}")
    print(f"throughput: {len(rtts) / elapsed:.0f} orders/s")
    if rtts:
        print(
            f"round trip ms: p50={pct(rtts, 0.5) * 1000:.2f} p99={pct(rtts, 0.99) * 1000:.2f} "
            f"mean={statistics.fmean(rtts) * 1000:.2f}"
        )
    if server_us:
        p50, p99 = pct(server_us, 0.5), pct(server_us, 0.99)
        print(f"server time per order (recv->ack) us: p50={p50:.0f} p99={p99:.0f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--max-seconds", type=float, default=30.0)
    args = parser.parse_args()
    proc, urls = start_sim()
    print(f"sim pid={proc.pid} {urls} cpus={os.cpu_count()}")
    try:
        runner: Any = asyncio.run
        try:
            import uvloop

            runner = uvloop.run
        except ImportError:
            pass
        runner(bench(urls, args.clients, args.orders, args.max_seconds))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
