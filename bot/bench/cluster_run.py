"""One row of `copybot bench --shards` (docs/benchmark.md, "Shards"): the lead and N followers on the
local exchange, and either the single process (`copybot run`, no cluster) or a fresh Redis, an
active and a standby lead feed (`--role feed`) and N follower shards (`--role shard --shard-id sK`),
each process on its own 127.0.0.x source address so the exchange counts its request weight apart.

The lead trades through its own ccxt client; a fan-out is complete when every partition's consumer
group has delivered and acknowledged the lead's latest stream entry (an entry is acknowledged only
once every follower of the partition has its outcome recorded). The copy lags come back from the
exchange's records, as in bot/bench/runner.py. Then, with more than one shard, one shard is killed
with SIGKILL while the lead trades on, and the time until its followers' orders arrive again (from
the shard that takes its partitions) is measured; last, the active feed is killed the same way and
the standby's first publish is timed."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bot.bench.cluster_report import AddressLoad, ClusterRow, cpu_seconds
from bot.bench.processes import Admin, BenchError, Child, Urls, free_port, peak_rss_mb
from bot.bench.redis_server import bench_redis
from bot.bench.report import LimitsTally, fill_lags
from bot.bench.runner import (
    LEAD_ID,
    LEAD_QTY,
    SYMBOL,
    Account,
    create_accounts,
    daemon_config,
    lead_trades,
    new_accounts,
    wait_fanout,
    watch_limits,
)
from bot.cluster.assignment import all_partitions, owned_by, partition_of
from bot.cluster.codec import decode_entry
from bot.cluster.keys import Keys
from bot.cluster.redis_client import connect
from bot.core import clientid
from bot.venues import VenueMode, make_rest

KEY_PREFIX = "bench"
KEYS = Keys(KEY_PREFIX)
TICKS_PER_S = os.sysconf("SC_CLK_TCK")
FAILOVER_SAMPLE = 5  # followers of the killed shard watched for their next order
# While a process is down the lead keeps trading, no faster than the survivors can fan out (about
# 1,000 orders/s on this machine), so the takeover is not measured behind a growing backlog.
FAILOVER_FILL_MIN_S = 0.5
FAILOVER_ORDERS_PER_S = 1000
FEED_FAILOVER_TIMEOUT_S = 60.0
PARTITIONS = 16  # cluster.partitions, the default, written out: the bench maps followers to shards


@dataclass(frozen=True)
class Limits:
    """The exchange's request limits for a row: lifted (weight counted, never refused), Binance's
    published 2,400 per minute per address, or a scaled-down figure."""

    lifted: bool
    weight_limit_1m: int | None = None  # with the limits on; None: Binance's 2,400

    @property
    def label(self) -> str:
        if self.lifted:
            return "lifted (counted only)"
        if self.weight_limit_1m is None:
            return "Binance: 2,400/min per address"
        return f"scaled: {self.weight_limit_1m:,}/min per address"


@dataclass
class Daemon:
    name: str
    child: Child
    api: str
    address: str


def _spawn_daemon(
    name: str, args: list[str], config: dict[str, Any], env: dict[str, str], workdir: Path, address: str
) -> Daemon:
    port = free_port()
    config = {
        **config,
        "api": {**config["api"], "port": port},
        "venues": {v: {**c, "source_address": address} for v, c in config["venues"].items()},
    }
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    child = Child(name, ["run", "--config", str(path), *args], workdir, env)
    return Daemon(name, child, f"http://127.0.0.1:{port}", address)


async def _ready(http: aiohttp.ClientSession, d: Daemon, deadline: float) -> None:
    while time.monotonic() < deadline:
        if not d.child.alive():
            raise BenchError(f"{d.name} exited before it was ready: {d.child.stderr_tail()}")
        try:
            async with http.get(f"{d.api}/readyz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise BenchError(f"{d.name} was not ready in time: {d.child.stderr_tail()}")


async def _until(check: Callable[[], Awaitable[bool]], deadline: float, every_s: float = 0.05) -> bool:
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(every_s)
    return False


class RedisView:
    """What the bench reads from the cluster's Redis: the shards' status lines, the lead's stream
    and its consumer groups."""

    def __init__(self, url: str) -> None:
        self.client = connect(url)

    async def status(self, shard: str) -> dict[str, Any]:
        raw = await self.client.get(KEYS.shard_status(shard))
        return dict(json.loads(raw)) if raw else {}

    async def served(self, shards: list[str]) -> int:
        return sum([int((await self.status(s)).get("followers", 0)) for s in shards])

    async def last_entry(self) -> tuple[str, int] | None:
        """(entry id, lease epoch) of the lead's newest stream entry."""
        rows = await self._newest(1)
        if not rows:
            return None
        item = decode_entry(rows[0][0], rows[0][1])
        return item.entry_id, item.epoch

    async def _newest(self, count: int) -> list[tuple[bytes, Any]]:
        rows: Any = await self.client.xrevrange(KEYS.stream(LEAD_ID), count=count)
        return list(rows or [])

    async def settled(self, entry_id: str) -> bool:
        """Every partition's group has delivered `entry_id` and holds nothing pending."""
        groups = await self.client.xinfo_groups(KEYS.stream(LEAD_ID))
        if not groups:
            return False

        def delivered(g: dict[Any, Any]) -> bool:
            last = g["last-delivered-id"]
            last = last.decode() if isinstance(last, bytes) else str(last)
            return tuple(map(int, last.split("-"))) >= tuple(map(int, entry_id.split("-")))

        return all(delivered(g) and int(g["pending"]) == 0 for g in groups)

    async def first_entry_after(self, epoch: int) -> int | None:
        """Publish time (ms, Redis's clock) of the first entry with a lease epoch above `epoch`."""
        first = None
        for entry_id, fields in await self._newest(200):
            item = decode_entry(entry_id, fields)
            if item.epoch <= epoch:
                break
            first = item.published_ms
        return first

    async def lease(self) -> tuple[int, str] | None:
        """(epoch, holder) of the lead's feed lease, None while nobody holds it."""
        raw: Any = await self.client.get(KEYS.lease(LEAD_ID))
        if raw is None:
            return None
        epoch, _, holder = bytes(raw).decode().partition(":")
        return int(epoch), holder

    async def close(self) -> None:
        await self.client.aclose()


async def run_row(
    *,
    http: aiohttp.ClientSession,
    admin: Admin,
    urls: Urls,
    shards: int,
    followers: int,
    fills: int,
    workdir: Path,
    limits: Limits,
    addresses: list[str],
    ready_timeout: float,
) -> ClusterRow:
    """One row; `shards` 0 is the single process. `addresses`: enough 127.0.0.x for every daemon
    (two feeds and the shards, or one)."""
    lead, accounts = new_accounts(followers)
    await create_accounts(admin, lead, accounts)
    tag = f"n{shards}-{followers}"
    config, env = daemon_config(
        lead,
        accounts,
        urls,
        api_port=0,
        lifted=limits.lifted,
        weight_limit_1m=limits.weight_limit_1m,
        journal=workdir / f"journal-{tag}.sqlite",
    )
    env = {**os.environ, **env}
    layout = "single process" if shards == 0 else f"{shards} shard{'s' if shards > 1 else ''}"
    print(
        f"copybot bench: {layout}, {followers} follower(s), {limits.label} ...", file=sys.stderr, flush=True
    )
    (workdir / tag).mkdir(parents=True, exist_ok=True)
    measure = partial(_measure, http, admin, urls, layout, limits, lead, accounts, fills, ready_timeout)
    if shards == 0:
        return await measure([_spawn_daemon("all", [], config, env, workdir / tag, addresses[0])], None)
    async with bench_redis(workdir / tag) as redis:
        # The cluster's default timings (docs/config.md, "cluster"): the failover times are theirs.
        cluster = {"redis_url": redis.url, "id": "unset", "key_prefix": KEY_PREFIX, "partitions": PARTITIONS}
        config = {**config, "cluster": cluster}
        feeds = [
            _spawn_daemon(
                f"feed-{x}",
                ["--role", "feed", "--shard-id", f"feed-{x}"],
                config,
                env,
                workdir / tag,
                addresses[i],
            )
            for i, x in enumerate("ab")
        ]
        shard_procs = [
            _spawn_daemon(
                f"s{k + 1}",
                ["--role", "shard", "--shard-id", f"s{k + 1}"],
                config,
                env,
                workdir / tag,
                addresses[2 + k],
            )
            for k in range(shards)
        ]
        view = RedisView(redis.url)
        try:
            return await measure([*feeds, *shard_procs], view)
        finally:
            await view.close()


async def _measure(
    http: aiohttp.ClientSession,
    admin: Admin,
    urls: Urls,
    layout: str,
    limits: Limits,
    lead: Account,
    accounts: list[Account],
    fills: int,
    ready_timeout: float,
    daemons: list[Daemon],
    view: RedisView | None,
) -> ClusterRow:
    n = len(accounts)
    by_id = {a.id: a for a in accounts}
    shard_names = [d.name for d in daemons if d.name.startswith("s")]
    rest_url, ws_url = urls["binance"]
    client = make_rest(
        "binanceusdm",
        VenueMode.SIM,
        api_key=lead.api_key,
        secret=lead.secret,
        rest_url=rest_url,
        ws_url=ws_url,
    )
    await admin.reset_limits()
    tally = LimitsTally()
    stop_watch = asyncio.Event()
    watcher = asyncio.create_task(watch_limits(admin, tally, stop_watch), name="bench:limits")
    notes: list[str] = []
    shard_failover = feed_failover = None
    cpu = rss = None
    codes: dict[str, int | None] = {}
    trades: list[dict[str, Any]] = []
    try:
        started = time.monotonic()
        for d in daemons:
            await d.child.spawn()
        deadline = started + ready_timeout
        for d in daemons:
            await _ready(http, d, deadline)
        if view is not None and not await _until(lambda: _all_served(view, shard_names, n), deadline, 0.2):
            raise BenchError(f"the shards did not serve all {n} followers in time")
        startup = time.monotonic() - started
        await client.load_markets()
        since_ns = time.time_ns()
        cpu0 = _cpu(daemons)
        for i in range(fills):
            if i and i % 10 == 0:
                print(f"copybot bench:   {layout}: lead fill {i}/{fills}", file=sys.stderr, flush=True)
            side = "buy" if i % 2 == 0 else "sell"
            placed_ns = time.time_ns()
            before = await view.last_entry() if view is not None else None
            await client.create_order(SYMBOL, "market", side, str(LEAD_QTY))
            timeout = 30.0 + n / 50 if not limits.lifted else 5.0 + n / 250
            if view is None:
                await wait_fanout(admin, lead, by_id, placed_ns, timeout=timeout)
            elif not await _settled(view, before, time.monotonic() + timeout):
                notes.append(f"fill {i + 1}: fan-out not settled within {timeout:.0f} s")
            await asyncio.sleep(0.05)
        cpu1 = _cpu(daemons)
        cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
        rss = sum(peak_rss_mb(d.child.pid) or 0 for d in daemons)
        trades = await lead_trades(admin, lead, since_ns)
        if view is not None and len(shard_names) > 1:
            taken = n / len(shard_names)  # the victim's followers, prepared again by the others
            victim_s = 60.0 + taken * 0.03 if limits.lifted else 120.0 + taken * 0.5
            shard_failover = await _shard_failover(admin, client, view, daemons[-1], by_id, victim_s, notes)
        if view is not None:
            feed_failover = await _feed_failover(view, client, daemons[:2], n, notes)
        for d in daemons:
            codes[d.name] = await d.child.terminate(timeout=60) if d.child.alive() else None
        orders = await admin.orders_of([a.api_key for a in accounts], since_ns)
    finally:
        for d in daemons:
            d.child.kill()
        await client.close()
        stop_watch.set()
        await watcher

    def cids(trade_id: str) -> list[str]:
        return [
            clientid.client_order_id(lead.id, trade_id, a.id, SYMBOL, 0, clientid.DOTTED) for a in accounts
        ]

    lags = fill_lags(trades, orders, n, cids)
    roles = {d.address: d.name for d in daemons}
    loads = {
        addr: AddressLoad(roles.get(addr, "lead (bench)" if addr == "127.0.0.1" else addr), *t)
        for addr, t in tally.per_address().items()
    }
    placed = sum(f.orders for f in lags)
    return ClusterRow(
        layout,
        len(shard_names),
        n,
        lags,
        limits.label,
        startup_s=startup,
        cpu_s=cpu,
        follower_orders=placed,
        addresses=loads,
        rss_mb=rss,
        shard_failover_s=shard_failover,
        feed_failover_s=feed_failover,
        exit_codes=codes,
        notes=tuple(notes),
    )


def _cpu(daemons: list[Daemon]) -> float | None:
    readings = [cpu_seconds(d.child.pid, TICKS_PER_S) for d in daemons if d.child.alive()]
    if any(r is None for r in readings):
        return None
    return sum(r for r in readings if r is not None)


async def _all_served(view: RedisView, shards: list[str], n: int) -> bool:
    """Every shard sees every other, owns exactly its rendezvous share of the partitions and has
    prepared its followers: a shard that started first and took every partition has handed the
    others' back."""
    live = set(shards)
    for shard in shards:
        status = await view.status(shard)
        if set(status.get("live", [])) != live:
            return False
        if sorted(status.get("partitions", [])) != owned_by(shard, all_partitions(PARTITIONS), shards):
            return False
    return await view.served(shards) == n


async def _settled(view: RedisView, before: tuple[str, int] | None, deadline: float) -> bool:
    """A stream entry newer than `before` (the lead's fill) is published and settled by every
    partition."""

    async def published() -> bool:
        return await view.last_entry() != before

    if not await _until(published, deadline, 0.01):
        return False
    entry = await view.last_entry()
    return entry is not None and await _until(lambda: view.settled(entry[0]), deadline, 0.02)


async def _trade_until(
    client: Any, check: Callable[[], Awaitable[bool]], timeout_s: float, followers: int
) -> bool:
    """The lead trades (alternating sides) at once and then every FAILOVER_FILL_MIN_S, or as often
    as `followers` orders take at FAILOVER_ORDERS_PER_S, until `check` holds."""
    every = max(FAILOVER_FILL_MIN_S, followers / FAILOVER_ORDERS_PER_S)
    deadline = time.monotonic() + timeout_s
    next_fill, side = time.monotonic(), "buy"
    while time.monotonic() < deadline:
        if time.monotonic() >= next_fill:
            await client.create_order(SYMBOL, "market", side, str(LEAD_QTY))
            next_fill, side = next_fill + every, "sell" if side == "buy" else "buy"
        if await check():
            return True
        await asyncio.sleep(0.05)
    return False


async def _shard_failover(
    admin: Admin,
    client: Any,
    view: RedisView,
    victim: Daemon,
    by_id: dict[str, Account],
    timeout_s: float,
    notes: list[str],
) -> float | None:
    """Seconds from the SIGKILL of `victim` until every sampled follower of its partitions has an
    order at the exchange again (placed by the shard that took the partition over)."""
    owned = set((await view.status(victim.name)).get("partitions", []))
    sample = [fid for fid in by_id if partition_of(fid, PARTITIONS) in owned][:FAILOVER_SAMPLE]
    if not sample:
        notes.append(f"shard failover not measured: {victim.name} owned no follower")
        return None
    victim.child.kill()
    kill_ns = time.time_ns()
    served: dict[str, int] = {}

    async def all_served() -> bool:
        for fid in (f for f in sample if f not in served):
            orders = (await admin.account(by_id[fid].api_key, kill_ns))["orders"]
            recv = [int(o["recvTimeNs"]) for o in orders if int(o["recvTimeNs"]) > kill_ns]
            if recv:
                served[fid] = min(recv)
        return len(served) == len(sample)

    if not await _trade_until(client, all_served, timeout_s, len(by_id)):
        notes.append(
            f"shard failover: {len(sample) - len(served)} of {len(sample)} sampled followers of "
            f"{victim.name} not served again within {timeout_s:.0f} s"
        )
        return None
    return (max(served.values()) - kill_ns) / 1e9


async def _feed_failover(
    view: RedisView, client: Any, feeds: list[Daemon], followers: int, notes: list[str]
) -> float | None:
    """Seconds from the SIGKILL of the feed holding the lease until the standby's first publish,
    the lead trading meanwhile (`_trade_until`)."""
    lease = await view.lease()
    active = next((d for d in feeds if lease is not None and d.name == lease[1]), None)
    if lease is None or active is None:
        notes.append("feed failover not measured: no feed held the lease")
        return None
    active.child.kill()
    kill_ms = time.time_ns() / 1e6
    first: list[int] = []

    async def published() -> bool:
        at = await view.first_entry_after(lease[0])
        if at is not None:
            first.append(at)
        return at is not None

    if not await _trade_until(client, published, FEED_FAILOVER_TIMEOUT_S, followers):
        notes.append(f"feed failover: the standby published nothing within {FEED_FAILOVER_TIMEOUT_S:.0f} s")
        return None
    return (first[0] - kill_ms) / 1000
