"""The shard role end to end: `copybot run --role feed` and two `--role shard` processes on the local
exchange and a real redis-server. A shard killed with SIGKILL in the middle of a fan-out has its
followers served by the other within 5 s and gets its partitions back when it returns; Redis killed
and restarted (AOF on) while the lead trades loses and doubles nothing. At the end every follower
is on target at the venue, no client order id was used twice, no follower traded more than its
share, and the lead's stream holds every lead trade exactly once."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.cluster.assignment import all_partitions, partition_of
from bot.commands.aum import cluster_aum_lines
from bot.commands.control import status_lines
from tests.cluster.engine_cluster import (
    CLUSTER,
    FOLLOWERS,
    Cluster,
    sim_config,
    trade_steadily,
    until,
)
from tests.cluster.redis_server import RedisServer
from tests.integration.harness import BTC, Harness

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]
PARTITIONS = all_partitions(int(CLUSTER["partitions"]))


async def start(c: Cluster, client: Redis, shards: list[str]) -> None:
    await c.spawn("feed", "feed-a")
    for shard in shards:
        await c.spawn("shard", shard)
    for proc in c.procs.values():
        await c.ready(proc)

    async def split() -> bool:
        owned = [set(await Cluster.owned(client, s)) for s in shards]
        return (
            all(owned) and set().union(*owned) == set(PARTITIONS) and sum(map(len, owned)) == len(PARTITIONS)
        )

    await until(split, 30, "the shards splitting the partitions")

    async def all_served() -> bool:  # every follower prepared and in a shard's fan-out
        return sum([await Cluster.serving(client, s) for s in shards]) == len(FOLLOWERS)

    await until(all_served, 30, "every follower served")


async def on_target(c: Cluster, timeout_s: float, what: str) -> float:
    last: list[object] = [None]

    async def check() -> bool:
        last[0] = await c.off_target()
        return not last[0]

    try:
        return await until(check, timeout_s, what, every_s=0.1)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: off target {last[0]}\n{c.tail()}") from None


async def stream_complete(c: Cluster, client: Redis) -> None:
    expected = await c.lead_trade_ids()

    async def complete() -> bool:
        return len(await Cluster.stream(client)) >= len(expected)

    await until(complete, 20, "every lead trade in the stream")
    published = [trade_id for _, trade_id, _, _ in await Cluster.stream(client)]
    assert len(published) == len(set(published)), "a fill was published twice"
    assert set(published) == set(expected), f"missing: {set(expected) - set(published)}"


async def test_a_killed_shards_followers_are_served_by_another_within_5_s_and_handed_back(
    tmp_path: Path, redis_server: RedisServer, redis_client: Redis
) -> None:
    async with Harness(tmp_path, sim_config()) as h:
        c = Cluster(h, redis_server, tmp_path)
        try:
            await start(c, redis_client, ["shard-a", "shard-b"])
            mine = set(await Cluster.owned(redis_client, "shard-a"))
            victims = [f for f in FOLLOWERS if partition_of(f, len(PARTITIONS)) in mine]
            assert victims, "shard-a serves no follower: change the follower ids"
            await h.trade(BTC, "buy", "0.1")
            await on_target(c, 15, "the first fill copied")
            for fid in victims:  # shard-a's next orders are held: its fan-out is in flight when killed
                await h.fault(
                    api_key=h.keys[fid][0], method="POST", path="/fapi/v1/order", delay_ms=700, count=1
                )
            await h.trade(BTC, "buy", "0.05")

            async def in_flight() -> bool:  # shard-a has handed the fill on; an order is on the wire
                code, status = await c.procs["shard-a"].status()
                return code == 200 and any(status["followers"][f]["busy"] for f in victims)

            await until(in_flight, 5, "shard-a's fan-out in flight", every_s=0.02)
            killed = c.kill9("shard-a")

            async def b_serves_all() -> bool:
                return await Cluster.serving(redis_client, "shard-b") == len(FOLLOWERS)

            await until(b_serves_all, 10, "shard-b serving every follower", every_s=0.02)
            await on_target(c, 10, "shard-a's followers on target")
            served_s = time.monotonic() - killed
            await trade_steadily(h, 6, every_s=0.1)  # shard-b alone
            await on_target(c, 15, "shard-b alone")

            await c.spawn("shard", "shard-a")  # back: its partitions are handed back
            await c.ready(c.procs["shard-a"])

            async def handed_back() -> bool:
                return set(await Cluster.owned(redis_client, "shard-a")) == mine

            await until(handed_back, 20, "shard-a's partitions handed back")
            await trade_steadily(h, 6, every_s=0.1)
            await on_target(c, 20, "every follower on target after the handback")
            await c.not_doubled()
            await stream_complete(c, redis_client)
            # No shard holds the lead's key (engine_cluster.py withholds it): the lead's position
            # each shard sizes from came through Redis, and it is the venue's, as is the feed's
            venue_lead = {s: q for s, q in (await h.positions("lead")).items() if q}
            for name in ("shard-a", "shard-b", "feed-a"):
                code, st = await c.procs[name].status()
                lead_status = st["leads"]["lead"]
                held = {
                    s.split(":")[0].replace("/", ""): Decimal(q) for s, q in lead_status["positions"].items()
                }
                assert held == venue_lead, name
                assert Decimal(lead_status["equity"]) > 0, name

            async def cluster_aum_whole() -> bool:  # every shard's status line counted, both back
                code, report = await c.procs["shard-a"].status("/aum")
                row = (report.get("cluster") or {}).get("aum", {}).get("lead", {}) if code == 200 else {}
                both = set(row.get("by_shard", ())) == {"shard-a", "shard-b"}
                return both and row["followers"] == len(FOLLOWERS)

            await until(cluster_aum_whole, 10, "the cluster's AUM over both shards")
            own = {s: (await c.procs[s].status("/aum"))[1] for s in ("shard-a", "shard-b")}
            code, status = await c.procs["shard-a"].status()
            metrics = await c.procs["shard-a"].metrics()
        finally:
            codes = await c.stop_all()
    assert codes == {"feed-a": 0, "shard-a": 0, "shard-b": 0}, codes
    print(f"shard-a's followers on target {served_s:.2f} s after its kill")
    assert served_s < 5.0, served_s
    assert code == 200
    view = status["cluster"]
    assert set(view["follower_shard"]) == set(FOLLOWERS)
    assert {view["follower_shard"][f] for f in victims} == {"shard-a"}
    assert sorted(view["shard"]["owned"]) == sorted(mine)
    assert view["leads"][0]["lease"]["holder"] == "feed-a"
    assert {p: row["shard"] for p, row in view["partitions"].items()} == {
        p: "shard-a" if p in mine else "shard-b" for p in PARTITIONS
    }
    # The cluster's follower capital is each shard's own: every follower counted once, by its shard.
    total = view["aum"]["lead"]
    assert total["followers"] == len(FOLLOWERS)
    served = {s: next(r for r in own[s]["leads"] if r["lead"] == "lead") for s in own}
    assert sum(r["followers"] for r in served.values()) == len(FOLLOWERS)
    shards_own = sum(Decimal(r["aum"]) for r in served.values())
    assert Decimal(total["aum"]) == pytest.approx(shards_own, rel=Decimal("0.01"))
    assert own["shard-a"]["cluster"]["aum"]["lead"]["by_shard"].keys() == {"shard-a", "shard-b"}
    (printed,) = cluster_aum_lines(own["shard-b"]["cluster"])  # what `copybot aum` adds in a cluster
    assert printed.startswith("cluster lead: follower capital ")
    lines = status_lines(status)  # what `copybot status` prints
    assert "cluster: this process is shard shard-a; live shards: shard-a, shard-b" in lines
    assert any(line.startswith("lead lead: feed lease feed-a (epoch 1); stream ") for line in lines)
    # every entry published with the lead's positions; each shard has applied up to the newest
    (lead_line,) = [line for line in lines if line.startswith("lead lead: feed lease")]
    stored = re.search(r"positions stored at entry (\d+) of (\d+)$", lead_line)
    assert stored is not None, lead_line
    assert stored[1] == stored[2], lead_line
    assert all(line.endswith(f"lead entries applied: lead {stored[1]}")
               for line in lines if line.startswith("shard ")), lines  # fmt: skip
    assert any(line.startswith(f"shard shard-a: partitions {', '.join(sorted(mine))}; ") for line in lines)
    capital = f"{Decimal(total['aum']):.2f}"
    assert f"lead lead: follower capital {capital} over {len(FOLLOWERS)} followers in the cluster" in lines
    assert "copybot_cluster_live_shards 2.0" in metrics
    assert 'copybot_cluster_lease_held{lead="lead"} 1.0' in metrics


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis-aof", appendonly=True)
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def test_a_redis_restart_with_aof_during_trading_loses_and_doubles_nothing(
    tmp_path: Path, aof_redis: RedisServer
) -> None:
    client = Redis.from_url(aof_redis.url, socket_timeout=10)
    async with Harness(tmp_path, sim_config()) as h:
        c = Cluster(h, aof_redis, tmp_path)
        try:
            await start(c, client, ["shard-a"])
            trading = asyncio.create_task(trade_steadily(h, 24, every_s=0.1))
            await asyncio.sleep(0.8)
            aof_redis.kill()  # SIGKILL, mid-trading
            await client.aclose()
            shard = c.procs["shard-a"]

            async def unready() -> bool:  # /readyz says why: Redis does not answer
                code, body = await shard.status("/readyz")
                return code == 503 and "redis_error" in body

            await until(unready, 3, "the shard's /readyz reporting Redis down")
            # down longer than the heartbeat ttl: the shard stops its partitions (the others would
            # count it dead) and takes them again once Redis is back
            await asyncio.sleep(1.2)
            aof_redis.start()  # same port, same folder: the AOF is replayed
            client = Redis.from_url(aof_redis.url, socket_timeout=10)
            await trading

            async def ready_again() -> bool:
                return (await shard.status("/readyz"))[0] == 200

            await until(ready_again, 10, "the shard ready again")
            await on_target(c, 30, "every follower on target after the restart")
            await c.not_doubled()
            await stream_complete(c, client)
        finally:
            codes = await c.stop_all()
            await client.aclose()
    assert codes == {"feed-a": 0, "shard-a": 0}, codes
