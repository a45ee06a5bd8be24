"""The processes the benchmark drives: the local exchange and the daemon, each in its own process
group so that nothing they start survives the benchmark, and the machine they run on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import resource
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bot.bench.report import Machine
from bot.venues.source_address import address_problem

# The exchange's request-weight, order-count and connection limits are lifted for the benchmark (a
# fan-out of many orders must never meet them, and copy lags stay comparable with earlier runs); it
# still counts the weight per address, which the report shows beside Binance's 2,400 per minute.
SIM_REQUEST_BUDGET = 10_000_000


class BenchError(RuntimeError):
    """A benchmark step that could not complete; the message names the step."""


def machine() -> Machine:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ram_kb = 0
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_kb = int(line.split()[1])
    return Machine(os.cpu_count() or 0, model, ram_kb / 1024 / 1024, platform.python_version())


def raise_fd_limit() -> int:
    """Lift the soft open-file limit to the hard one; children inherit it. 1,000 followers hold
    more sockets than the common default of 1,024."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else 1 << 20
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
    return soft


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def loopback_addresses(count: int, *, first: int = 2) -> list[str]:
    """One source address per process (a cluster shard's `venues.<name>.source_address`):
    127.0.0.2, 127.0.0.3, ... Linux routes all of 127.0.0.0/8 to the loopback interface, so each
    binds without setup and the local exchange, listening on 127.0.0.1, counts each apart. Elsewhere
    (macOS routes only 127.0.0.1) the first that cannot be bound is named."""
    if count < 1 or first < 1 or first + count - 1 > 254:
        raise BenchError(f"127.0.0.{first} to 127.0.0.{first + count - 1} is not a loopback range")
    addresses = [f"127.0.0.{first + i}" for i in range(count)]
    for address in addresses:
        problem = address_problem(address)
        if problem is not None:
            raise BenchError(f"source address for a shard: {problem} (add it to the loopback interface)")
    return addresses


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the process's peak resident set size."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


class Child:
    """A `python -m bot.cli ...` subprocess in its own session, output to files in `workdir`."""

    def __init__(self, name: str, args: list[str], workdir: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.args = args
        self.workdir = workdir
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.stdout_path = workdir / f"{name}.out"
        self.stderr_path = workdir / f"{name}.err"
        self.spawned_at = 0.0

    async def spawn(self) -> None:
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.spawned_at = time.monotonic()
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.cli", *self.args,
                stdout=out, stderr=err, stdin=asyncio.subprocess.DEVNULL,
                env=self.env, start_new_session=True,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise BenchError(f"{self.name}: not started")
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def stderr_tail(self, chars: int = 2000) -> str:
        with contextlib.suppress(OSError):
            return self.stderr_path.read_text(errors="replace")[-chars:]
        return ""

    async def terminate(self, timeout: float) -> int | None:
        """SIGTERM, wait up to `timeout`, then SIGKILL the whole process group. The exit code of
        the SIGTERM (None when it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.returncode is not None:
            return self.proc.returncode
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.kill()
            await self.proc.wait()
            return None

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)


# The personalities a benchmark can put accounts on, and the ccxt client of each.
VENUE_EXCHANGES = {"binance": "binanceusdm", "bybit": "bybit"}


Urls = dict[str, tuple[str, str]]  # venue -> (REST url, websocket url)


async def start_sim(workdir: Path, timeout: float = 30.0, *, lifted: bool = True,
                    venues: tuple[str, ...] = ("binance",),
                    weight_limit_1m: int | None = None) -> tuple[Child, Urls]:  # fmt: skip
    """The local exchange in its own process, serving the Binance personality and, when asked, the
    Bybit one; (child, {venue: (rest url, ws url)}) once it listens. `lifted`: without the request
    limits of either venue (Binance's weight, order and connection limits: SIM_REQUEST_BUDGET;
    Bybit's per-UID limits: `copybot sim --no-rate-limits`). `weight_limit_1m`, with the limits on:
    Binance's request weight per source address per minute in place of its published 2,400 (a
    scaled-down run; the report names it)."""
    from importlib import resources

    data = yaml.safe_load(resources.files("bot.sim").joinpath("default.yaml").read_text(encoding="utf-8"))
    if lifted:
        data["request_budget"] = SIM_REQUEST_BUDGET
    elif weight_limit_1m is not None:
        data["weight_limit_1m"] = weight_limit_1m
    config = workdir / "sim.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    served = "both" if "bybit" in venues else "binance"
    args = ["sim", "--venue", served, "--rest-port", "0", "--ws-port", "0", "--config", str(config)]
    child = Child("sim", [*args, "--no-rate-limits"] if lifted else args, workdir)
    await child.spawn()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = child.stdout_path.read_text(errors="replace").split("\n", 1)[0]
        if line.endswith("}"):
            printed = json.loads(line)
            if "rest" in printed:  # --venue binance prints its one pair of hosts
                return child, {"binance": (str(printed["rest"]), str(printed["ws"]))}
            return child, {v: (str(u["rest"]), str(u["ws"])) for v, u in printed.items()}
        if not child.alive():
            raise BenchError(f"the local exchange exited early: {child.stderr_tail()}")
        await asyncio.sleep(0.05)
    child.kill()
    raise BenchError(f"the local exchange printed no URLs within {timeout:.0f}s: {child.stderr_tail()}")


class Admin:
    """The local exchange's admin API."""

    def __init__(self, session: aiohttp.ClientSession, rest_url: str) -> None:
        self.session = session
        self.base = rest_url.rstrip("/")

    async def create_account(
        self, api_key: str, secret: str, balance: str, name: str, venue: str = "binance"
    ) -> None:
        body = {"api_key": api_key, "secret": secret, "balance": balance, "name": name, "venue": venue}
        async with self.session.post(f"{self.base}/_sim/accounts", json=body) as resp:
            if resp.status >= 300:
                raise BenchError(f"POST /_sim/accounts for {name}: HTTP {resp.status} {await resp.text()}")

    async def account(self, api_key: str, since_ns: int | None = None) -> dict[str, Any]:
        params = {"since_ns": str(since_ns)} if since_ns is not None else None
        async with self.session.get(f"{self.base}/_sim/accounts/{api_key}", params=params) as resp:
            if resp.status != 200:
                raise BenchError(f"GET /_sim/accounts/<key>: HTTP {resp.status} {await resp.text()}")
            data: dict[str, Any] = await resp.json()
            return data

    async def limits(self) -> dict[str, Any]:
        """Weight used this minute, 429s and bans per source address (GET /_sim/limits)."""
        async with self.session.get(f"{self.base}/_sim/limits") as resp:
            if resp.status != 200:
                raise BenchError(f"GET /_sim/limits: HTTP {resp.status} {await resp.text()}")
            data: dict[str, Any] = await resp.json()
            return data

    async def reset_limits(self) -> None:
        async with self.session.delete(f"{self.base}/_sim/limits") as resp:
            if resp.status != 200:
                raise BenchError(f"DELETE /_sim/limits: HTTP {resp.status} {await resp.text()}")

    async def orders_of(
        self, api_keys: list[str], since_ns: int, concurrency: int = 16
    ) -> list[dict[str, Any]]:
        """Every order of these accounts since `since_ns`, read a few accounts at a time."""
        gate = asyncio.Semaphore(concurrency)

        async def one(key: str) -> list[dict[str, Any]]:
            async with gate:
                orders: list[dict[str, Any]] = (await self.account(key, since_ns))["orders"]
                return orders

        batches = await asyncio.gather(*(one(k) for k in api_keys))
        return [o for batch in batches for o in batch]
