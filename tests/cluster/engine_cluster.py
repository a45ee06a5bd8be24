"""The cluster end to end: `copybot run --role feed|shard` as real subprocesses, a real redis-server,
the local exchange in the test's process driven by real ccxt (tests/integration/harness.py).

`Cluster` writes one config file that every process shares (each gets `--shard-id` and its own API
port), starts and kills processes, and reads what the tests check: the lead's stream in Redis, the
shards' status lines, the venue's own records of every account."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
import urllib.request
from dataclasses import dataclass
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import yaml
from redis.asyncio import Redis

from bot.cluster.codec import StreamFill, decode_entry
from bot.cluster.keys import Keys
from bot.sim.config import load_sim_config
from tests.cluster.redis_server import RedisServer
from tests.integration.harness import BTC, ETH, Harness, follower

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "e2e"
KEYS = Keys(PREFIX)
STEP = Decimal("0.001")
MULTIPLIERS = [Decimal("0.05") * (1 + i % 3) for i in range(8)]
FOLLOWERS = [f"f{i}" for i in range(len(MULTIPLIERS))]
# Timings small enough for a test, in the same proportions as the defaults: a lease lapses after
# 1.5 s (renewed every 0.3 s), a shard is dead 1 s after its last beat, a fill unsettled for 2 s is
# claimed; an order can land for recv_window + margin = 1.3 s after it was signed.
CLUSTER = {
    "lease_ttl_s": 1.5,
    "lease_renew_s": 0.3,
    "claim_idle_s": 2,
    "partitions": 8,
    "heartbeat_s": 0.3,
    "heartbeat_ttl_s": 1.0,
}


@dataclass
class Proc:
    """One process; it listens on a port of its own choosing (`--api-port 0`, read from its log:
    a port picked here could be taken by then)."""

    role: str
    name: str
    proc: asyncio.subprocess.Process
    log: Path
    log_from: int  # where this run's lines start in its log (a restart appends)
    bound: int | None = None

    @property
    def port(self) -> int:
        if self.bound is None:
            with self.log.open("rb") as f:
                f.seek(self.log_from)
                for line in f:
                    if b'"api_listening"' in line:
                        self.bound = int(json.loads(line)["port"])
        return self.bound or 0

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=3) as resp:  # noqa: S310
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")
        except OSError:
            return 0, None

    async def status(self, path: str = "/status") -> tuple[int, Any]:
        return await asyncio.to_thread(self.get, path)

    async def metrics(self) -> str:
        def read() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=3) as resp:  # noqa: S310
                return str(resp.read().decode())

        return await asyncio.to_thread(read)


class Cluster:
    def __init__(self, h: Harness, redis: RedisServer, tmp: Path) -> None:
        self.h = h
        self.redis = redis
        self.tmp = tmp
        self.procs: dict[str, Proc] = {}
        self.logs: list[Path] = []
        rows = [follower(fid, {"mode": "multiplier", "multiplier": str(m)})
                for fid, m in zip(FOLLOWERS, MULTIPLIERS, strict=True)]  # fmt: skip
        h.build_config(
            rows,
            executor={"recv_window_ms": 1000, "landing_margin_ms": 300, "order_timeout_ms": 3000,
                      "drain_timeout_s": 3},
        )  # fmt: skip
        config = json.loads(json.dumps(h.config, default=str))
        config["leads"][0]["symbols"] = [BTC, ETH]
        config["cluster"] = {"redis_url": redis.url, "id": "unset", "key_prefix": PREFIX, **CLUSTER}
        config["logging"] = {"level": "info", "json": True}
        self.config = tmp / "copybot.yaml"
        self.config.write_text(yaml.safe_dump(config), encoding="utf-8")
        # Each role gets only the keys it needs, as on its own host: a shard no lead key (the feed
        # publishes the lead's positions), a feed no follower key (docs/cluster.md).
        self.env_vars = {
            group: {v for row in config[group] for k, v in row["credentials"].items() if k.endswith("_env")}
            for group in ("leads", "followers")
        }

    async def spawn(self, role: str, name: str) -> Proc:
        log = self.tmp / f"{name}.log"
        if log not in self.logs:
            self.logs.append(log)
        start = log.stat().st_size if log.exists() else 0
        with log.open("ab") as out:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.cli", "run", "--config", str(self.config), "--role", role,
                "--shard-id", name, "--api-port", "0",
                cwd=ROOT, env={**os.environ, **self.env_for(role), "PYTHONPATH": str(ROOT)},
                stdout=out, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
        self.procs[name] = Proc(role, name, proc, log, start)
        return self.procs[name]

    def env_for(self, role: str) -> dict[str, str]:
        withheld = self.env_vars["leads" if role == "shard" else "followers"]
        return {k: v for k, v in self.h.env.items() if k not in withheld}

    async def ready(self, proc: Proc, timeout_s: float = 40) -> None:
        deadline = time.monotonic() + timeout_s
        while (await proc.status("/readyz"))[0] != 200:
            if proc.proc.returncode is not None:
                raise AssertionError(f"{proc.name} exited {proc.proc.returncode}: {self.tail()}")
            assert time.monotonic() < deadline, f"{proc.name} not ready: {self.tail()}"
            await asyncio.sleep(0.1)

    def kill9(self, name: str) -> float:
        self.procs[name].proc.send_signal(signal.SIGKILL)
        return time.monotonic()

    async def stop_all(self) -> dict[str, int]:
        """SIGTERM to every process still running; their exit codes (a clean stop is 0: the feed
        releases its lease, a shard drains and leaves)."""
        running = [p for p in self.procs.values() if p.proc.returncode is None]
        for p in running:
            with contextlib.suppress(ProcessLookupError):
                p.proc.send_signal(signal.SIGCONT)
                p.proc.send_signal(signal.SIGTERM)
        codes = {}
        for p in running:
            try:
                codes[p.name] = await asyncio.wait_for(p.proc.wait(), 20)
            except TimeoutError:
                p.proc.kill()
                codes[p.name] = await p.proc.wait()
        return codes

    def tail(self, chars: int = 1500) -> str:
        return "\n".join(f"--- {log.name}\n" + log.read_text(errors="replace")[-chars:] for log in self.logs)

    # -- what Redis holds ---------------------------------------------------------------------

    @staticmethod
    async def stream(client: Redis) -> list[tuple[str, str, int, int]]:
        """(entry id, trade id, lease epoch, published ms) of every fill in the lead's stream (its
        position snapshots left out)."""
        out = []
        for entry_id, fields in await client.xrange(KEYS.stream("lead")):
            item = decode_entry(entry_id, fields)
            if not isinstance(item, StreamFill):
                continue
            out.append((item.entry_id, item.fill.trade_id, item.epoch, item.published_ms))
        return out

    @staticmethod
    async def holder(client: Redis) -> str | None:
        value = await client.get(KEYS.lease("lead"))
        return None if value is None else value.decode().partition(":")[2]

    @staticmethod
    async def owned(client: Redis, shard: str) -> list[str]:
        raw = await client.get(KEYS.shard_status(shard))
        return list(json.loads(raw)["partitions"]) if raw else []

    @staticmethod
    async def serving(client: Redis, shard: str) -> int:
        """How many followers the shard has prepared and feeds (its last status line)."""
        raw = await client.get(KEYS.shard_status(shard))
        return int(json.loads(raw)["followers"]) if raw else 0

    # -- what the venue holds -----------------------------------------------------------------

    async def lead_trade_ids(self) -> list[str]:
        return [str(t["id"]) for t in (await self.h.admin("lead"))["trades"]]

    async def off_target(self) -> dict[str, Any]:
        """Followers whose position at the venue is not the lead's times their multiplier (down to
        the lot step), and any client order id used twice; empty when all are on target."""
        lead = await self.h.positions("lead")
        off: dict[str, Any] = {}
        for fid, m in zip(FOLLOWERS, MULTIPLIERS, strict=True):
            data = await self.h.admin(fid)
            held = {p["symbol"]: Decimal(p["positionAmt"]) for p in data["positions"]}
            for symbol in ("BTCUSDT", "ETHUSDT"):
                target = (lead.get(symbol, Decimal(0)) * m).quantize(STEP, rounding=ROUND_DOWN)
                if held.get(symbol, Decimal(0)) != target:
                    off[f"{fid}:{symbol}"] = (str(held.get(symbol, Decimal(0))), str(target))
            ids = [o["clientOrderId"] for o in data["orders"]]
            if len(ids) != len(set(ids)):
                off[f"{fid}:client_ids"] = "a client order id was used twice"
        return off

    async def not_doubled(self) -> None:
        """No follower traded more than its share of the lead's volume (a doubled order would)."""
        lead_data = await self.h.admin("lead")
        volume = {s: Decimal(0) for s in ("BTCUSDT", "ETHUSDT")}
        for t in lead_data["trades"]:
            volume[t["symbol"]] += Decimal(t["qty"])
        fills = len(lead_data["trades"])
        for fid, m in zip(FOLLOWERS, MULTIPLIERS, strict=True):
            data = await self.h.admin(fid)
            for symbol, v in volume.items():
                traded = sum(Decimal(o["executedQty"]) for o in data["orders"] if o["symbol"] == symbol)
                assert traded <= v * m + fills * STEP, (fid, symbol, traded, v * m)


def sim_config() -> Any:
    # client ids reusable once closed, as on Binance: only the engine's own rules stop a double
    return load_sim_config(tick_interval_s=0)


async def trade_steadily(h: Harness, count: int, every_s: float) -> list[Any]:
    """The lead alternates opening and adding / reducing, `count` market orders."""
    orders = []
    plan = [(BTC, "buy", "0.1"), (ETH, "buy", "1"), (BTC, "buy", "0.05"), (BTC, "sell", "0.1"),
            (ETH, "sell", "0.5"), (BTC, "sell", "0.05")]  # fmt: skip
    for i in range(count):
        symbol, side, qty = plan[i % len(plan)]
        orders.append(await h.trade(symbol, side, qty))
        await asyncio.sleep(every_s)
    return orders


async def until(check: Any, timeout_s: float, what: str, every_s: float = 0.05) -> float:
    start = time.monotonic()
    while not await check():
        assert time.monotonic() - start < timeout_s, f"timed out ({timeout_s} s) waiting for {what}"
        await asyncio.sleep(every_s)
    return time.monotonic() - start
