"""A daemon's cluster role (docs/cluster.md, "Running it"): `feed` or `shard` on the engine, its
Redis client, and the cluster view served on /status, /metrics and `copybot status`. Imported only
when `copybot run --role feed|shard` is asked for: the single process (`--role all`) never loads
it nor redis-py."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog
from prometheus_client import Gauge

from bot.cluster.assignment import all_partitions, assign, partition_of
from bot.cluster.feed_role import FeedRole
from bot.cluster.keys import Keys
from bot.cluster.lead_tracker import LeadTracker
from bot.cluster.redis_client import RedisUnavailable, connect
from bot.cluster.shard_role import ShardRole
from bot.cluster.view import cluster_view
from bot.config.models import AppConfig, ClusterConfig
from bot.core.errors import short
from bot.live.engine import Engine

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger("copybot.cluster")

ROLES = ("all", "feed", "shard")


class ClusterGauges:
    def __init__(self, engine: Engine) -> None:
        r = engine.metrics.registry
        self.stream_length = Gauge(
            "copybot_cluster_stream_length", "Entries kept in a lead's fill stream", ["lead"], registry=r
        )
        self.lease_held = Gauge(
            "copybot_cluster_lease_held", "1 while some feed holds the lead's lease", ["lead"], registry=r
        )
        self.lease_epoch = Gauge(
            "copybot_cluster_lease_epoch",
            "The lead's lease epoch (rises at every takeover)",
            ["lead"],
            registry=r,
        )
        self.backlog = Gauge(
            "copybot_cluster_partition_backlog",
            "Lead fills published and not yet delivered to a follower partition",
            ["lead", "partition"],
            registry=r,
        )
        self.pending = Gauge(
            "copybot_cluster_partition_pending",
            "Lead fills delivered to a partition's shard and not yet settled (acknowledged)",
            ["lead", "partition"],
            registry=r,
        )
        self.live_shards = Gauge("copybot_cluster_live_shards", "Shards with a fresh heartbeat", registry=r)
        self.shard_lag = Gauge(
            "copybot_cluster_shard_copy_lag_ms",
            "A shard's in-process copy lag (lead fill in to follower order out), by quantile",
            ["shard", "quantile"],
            registry=r,
        )
        self.shard_partitions = Gauge(
            "copybot_cluster_shard_partitions", "Follower partitions a shard consumes", ["shard"], registry=r
        )

    def update(self, view: dict[str, Any]) -> None:
        for lead in view["leads"]:
            name, lease = lead["lead"], lead["lease"]
            self.stream_length.labels(name).set(lead["stream"]["length"])
            self.lease_held.labels(name).set(1 if lease else 0)
            if lease:
                self.lease_epoch.labels(name).set(lease["epoch"])
            for group in lead["groups"]:
                if group["lag"] is not None:
                    self.backlog.labels(name, group["group"]).set(group["lag"])
                self.pending.labels(name, group["group"]).set(group["pending"])
        self.live_shards.set(len(view["shards"]))
        for shard, status in view["shard_status"].items():
            if status is None:
                continue
            self.shard_partitions.labels(shard).set(len(status["partitions"]))
            for q, value in (status.get("internal_lag_ms") or {}).items():
                if value is not None:
                    self.shard_lag.labels(shard, q).set(value)


class ClusterRole:
    def __init__(
        self,
        role: str,
        cfg: AppConfig,
        cluster: ClusterConfig,
        engine: Engine,
        client: Redis,
        tracker: LeadTracker | None = None,
    ) -> None:
        self.role = role
        self.cfg = cfg
        self.cluster = cluster
        self.engine = engine
        self.client = client
        self.keys = Keys(cluster.key_prefix)
        self.feed: FeedRole | None = None
        self.shard: ShardRole | None = None
        self.gauges = ClusterGauges(engine)
        self._view: tuple[float, dict[str, Any]] | None = None
        if role == "feed":
            self.feed = FeedRole(engine, client, self.keys, cluster.id, lease_ttl_s=cluster.lease_ttl_s,
                                 renew_every_s=cluster.renew_every_s,
                                 stream_maxlen=cluster.stream_maxlen)  # fmt: skip
        elif role == "shard":
            self.shard = ShardRole(engine, client, self.keys, cluster.id, partitions=cluster.partitions,
                                   heartbeat_s=cluster.heartbeat_s, heartbeat_ttl_s=cluster.heartbeat_ttl_s,
                                   claim_idle_s=cluster.claim_idle_s, tracker=tracker)  # fmt: skip
        else:
            raise ValueError(f"unknown cluster role {role!r}")

    @staticmethod
    def lead_tracker(cfg: AppConfig, engine: Engine, client: Redis) -> LeadTracker:
        """A shard's leads from the streams: its `load` is engine.start's `lead_state`, so the
        shard reads no lead account (docs/cluster.md, "Lead positions")."""
        assert cfg.cluster is not None
        return LeadTracker(engine, client, Keys(cfg.cluster.key_prefix))

    @staticmethod
    async def connect(cfg: AppConfig) -> Redis:
        """The Redis client, checked with a PING before any venue is contacted (a failure is one
        line at start: RedisUnavailable)."""
        cluster = cfg.cluster
        if cluster is None:
            raise ValueError("a cluster role needs a cluster: section (docs/cluster.md)")
        # a blocking read per partition, two acknowledgements at a time per partition, the rest
        client = connect(cluster.redis_url, username=cluster.username, password=cfg.redis_password(),
                         max_connections=3 * cluster.partitions + 32)  # fmt: skip
        try:
            await client.ping()
        except Exception as exc:
            await client.aclose()
            where = _where(cluster.redis_url)
            raise RedisUnavailable(f"cluster: Redis at {where} did not answer: {short(exc)}") from None
        return client

    @classmethod
    async def start(
        cls,
        role: str,
        cfg: AppConfig,
        engine: Engine,
        client: Redis,
        *,
        aum_of: Callable[[], dict[str, tuple[Decimal, int]]] | None = None,
        tracker: LeadTracker | None = None,
    ) -> ClusterRole:
        """Spawn the role's tasks through the engine's supervisor: `feed:<lead>` per lead, or
        `shard`. `aum_of`: the follower capital per lead this process serves (a shard publishes it
        with its status line, for the cluster's AUM)."""
        cluster = cfg.cluster
        if cluster is None:
            raise ValueError(f"--role {role} needs a cluster: section (docs/cluster.md)")
        self = cls(role, cfg, cluster, engine, client, tracker)
        if self.shard is not None and aum_of is not None:
            of = aum_of
            self.shard.aum_of = lambda: {lead: {"aum": str(amount), "followers": n}
                                         for lead, (amount, n) in of().items()}  # fmt: skip
        if self.feed is not None:
            await self.feed.seed()
            self.feed.spawn()
        if self.shard is not None:
            engine.supervisor.spawn("shard", self.shard.run)
        log.info("cluster_role_started", role=role, id=cluster.id, redis=_where(cluster.redis_url))
        return self

    async def view(self, *, max_age_s: float = 0.5) -> dict[str, Any]:
        """The cluster as Redis sees it, with who serves what; cached for `max_age_s` so a busy
        scrape does not cost Redis a round of XINFO each time."""
        now = time.monotonic()
        if self._view is not None and now - self._view[0] < max_age_s:
            return self._view[1]
        cluster = self.cluster
        leads = [lead.id for lead in self.cfg.leads]
        view = await cluster_view(self.client, self.keys, leads, heartbeat_ttl_s=cluster.heartbeat_ttl_s)
        live = view["shards"]
        owners = assign(all_partitions(cluster.partitions), live) if live else {}
        followers = [f.id for f in self.cfg.followers if f.enabled]
        by_partition: dict[str, list[str]] = {}
        for fid in followers:
            by_partition.setdefault(partition_of(fid, cluster.partitions), []).append(fid)
        statuses = {}
        for shard in live:
            raw = await self.client.get(self.keys.shard_status(shard))
            statuses[shard] = json.loads(raw) if raw else None
        view |= {
            "role": self.role,
            "id": cluster.id,
            "partitions": {
                p: {"shard": owners.get(p), "followers": len(by_partition.get(p, []))}
                for p in all_partitions(cluster.partitions)
            },
            "follower_shard": {fid: owners.get(partition_of(fid, cluster.partitions)) for fid in followers},
            "shard_status": statuses,
            "aum": cluster_aum(statuses),
        }
        if self.feed is not None:
            view["feed"] = self.feed.status()
        if self.shard is not None:
            view["shard"] = {"owned": self.shard.owned(), "settling": self.shard.settling()}
        self.gauges.update(view)
        self._view = (now, view)
        return view


def cluster_aum(statuses: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per lead, the follower capital of the whole cluster: the sum of what each live shard serves
    (its last status line, at most a heartbeat old). The lead's own equity (`aum.include_lead`) is
    not in it: each shard's AUM report counts it once for itself."""
    out: dict[str, dict[str, Any]] = {}
    for shard, status in sorted(statuses.items()):
        for lead, row in ((status or {}).get("aum") or {}).items():
            total = out.setdefault(lead, {"aum": Decimal(0), "followers": 0, "by_shard": {}})
            total["aum"] += Decimal(row["aum"])
            total["followers"] += int(row["followers"])
            total["by_shard"][shard] = row["aum"]
    return {lead: {**row, "aum": str(row["aum"])} for lead, row in out.items()}


def _where(url: str) -> str:
    """The Redis URL without its query (which could carry options), for a log line."""
    return url.split("?", 1)[0]
