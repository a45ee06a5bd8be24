"""The daemon's life: start in order, serve, and on SIGTERM/SIGINT stop taking new work, drain
in-flight orders for a bounded time, close the clients, exit 0."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from bot.aum.service import AumService, AumSettings
from bot.aum.slippage import SlippageBook
from bot.config.models import AppConfig
from bot.journal.store import Journal
from bot.live.engine import Engine
from bot.live.reconciler import Reconciler
from bot.live.upkeep import run_upkeep
from bot.service.alerts import AlertSink
from bot.service.api import bound_port, start_api
from bot.service.daily import DailySummary
from bot.service.membership import Membership
from bot.service.notify import Notifications
from bot.service.roster import Effective, RosterError, effective
from bot.service.sdnotify import Notifier, WatchdogPinger
from bot.service.wiring import follower_settings

if TYPE_CHECKING:
    from bot.service.cluster_role import ClusterRole

log = structlog.get_logger("copybot.app")

LOOP_LAG_LIMIT_S = 5.0
FEED_RELOAD = (
    "--role feed: a feed serves no follower, so the followers in the file are the shards' to "
    "reload (systemctl reload 'copybot-shard@*'); its leads change only with a restart, one feed "
    'at a time (docs/cluster.md, "Changing followers")'
)


def journal_path(cfg: AppConfig, role: str = "all") -> Path:
    """A relative journal path lives in systemd's $STATE_DIRECTORY when there is one, else next to
    the working directory. A cluster role's journal carries its role and cluster id in the file
    name (`copybot.sqlite` -> `copybot.shard-<id>.sqlite`), so processes sharing a config and a
    folder each keep their own."""
    path = Path(cfg.journal.path)
    if role != "all" and cfg.cluster is not None:
        path = path.with_name(f"{path.stem}.{role}-{cfg.cluster.id}{path.suffix}")
    state_dir = os.environ.get("STATE_DIRECTORY")
    if not path.is_absolute() and state_dir:
        return Path(state_dir.split(":")[0]) / path.name
    return path


def aum_settings(cfg: AppConfig) -> AumSettings:
    return AumSettings(
        cap=cfg.aum.cap,
        max_slippage_bps=cfg.aum.max_slippage_bps,
        include_lead=cfg.aum.include_lead,
        follower_order=tuple(f.id for f in cfg.followers),
    )


class LoopMonitor:
    """Measures how late the event loop wakes up: a blocked loop is not a healthy daemon."""

    def __init__(self, period_s: float = 0.5) -> None:
        self.period_s = period_s
        self.lag_s = 0.0
        self.last_tick = time.monotonic()

    async def run(self) -> None:
        while True:
            start = time.monotonic()
            await asyncio.sleep(self.period_s)
            self.last_tick = time.monotonic()
            self.lag_s = max(0.0, self.last_tick - start - self.period_s)

    def responsive(self) -> bool:
        return time.monotonic() - self.last_tick < LOOP_LAG_LIMIT_S and self.lag_s < LOOP_LAG_LIMIT_S


class Daemon:
    def __init__(
        self,
        cfg: AppConfig,
        *,
        sim_urls: tuple[str, str] | None = None,
        api_port: int | None = None,
        on_ready: Callable[[Daemon], None] | None = None,
        load_config: Callable[[], AppConfig] | None = None,
        role: str = "all",
    ) -> None:
        self.cfg = cfg
        self.role = role  # "all": one process; "feed" / "shard": a cluster role (docs/cluster.md)
        self.cluster: ClusterRole | None = None
        self.sim_urls = sim_urls
        self.api_port = api_port
        self.on_ready = on_ready
        self.load_config = load_config  # re-reads the config file on SIGHUP (bot/service/membership.py)
        self.membership: Membership | None = None
        self.stop_event = asyncio.Event()
        self.journal: Journal | None = None
        self.engine: Engine | None = None
        self.aum: AumService | None = None
        self.reconciler: Reconciler | None = None
        self.api_runner: Any = None
        self.bound_api_port: int | None = None
        self.notifier = Notifier()
        self.loop_monitor = LoopMonitor()

    def healthy(self) -> bool:
        """What the systemd watchdog vouches for: the loop responsive, every lead stream fresh, and
        no supervised task dead. A failing follower worker alone does not stop the pings (its
        supervisor retries it or disables that follower; restarting the process would interrupt
        every other follower), but it is named in the watchdog's STATUS= line and on /readyz."""
        engine = self.engine
        return bool(
            engine
            and engine.streams_fresh()
            and self.loop_monitor.responsive()
            and not engine.supervisor.dead()
        )

    def health_status(self) -> str:
        """What is wrong, for the watchdog's STATUS= line; empty when nothing is."""
        engine = self.engine
        if engine is None:
            return ""
        dead, failing = engine.supervisor.dead(), engine.supervisor.failing()
        stale = [lead for lead, feed in engine.feeds.items() if not feed.is_fresh()]
        problems = [f"dead: {', '.join(dead)}"] if dead else []
        problems += [f"failing: {', '.join(failing)}"] if failing else []
        problems += [f"stale streams: {', '.join(stale)}"] if stale else []
        problems += (
            [] if self.loop_monitor.responsive() else [f"event loop lag {self.loop_monitor.lag_s:.1f} s"]
        )
        return "; ".join(problems)

    def request_stop(self, reason: str = "signal") -> None:
        if not self.stop_event.is_set():
            log.info("stop_requested", reason=reason)
            self.stop_event.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self.request_stop, sig.name)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                pass
        try:  # from the first moment: SIGHUP's default action would end the process
            loop.add_signal_handler(signal.SIGHUP, self.request_reload)
        except (NotImplementedError, RuntimeError):
            pass
        redis = None
        if self.role != "all":  # Redis first: unreachable, it is the start's one error line
            from bot.service.cluster_role import ClusterRole

            redis = await ClusterRole.connect(self.cfg)
        journal = self.journal = Journal.open(journal_path(self.cfg, self.role))
        start = self._start_config(journal)
        url = self.cfg.webhook_url()
        alerts_cfg = self.cfg.alerts
        notifications = Notifications(
            self.cfg.notify_urls(),
            group_window_s=float(alerts_cfg.group_window_s),
            max_per_hour=alerts_cfg.max_messages_per_hour,
        )
        alerts = AlertSink(url, notifications=notifications)
        alerts.start()
        slippage = SlippageBook()  # the engine records each follower fill; the AUM report reads it
        engine = Engine(
            start.cfg,
            journal,
            follower_settings(start.cfg),
            slippage=slippage,
            sim_urls=self.sim_urls,
            alerts=alerts,
        )
        self.engine = engine
        metrics = engine.metrics
        aum = self.aum = AumService(
            engine,
            journal,
            aum_settings(self.cfg),
            slippage=slippage,
            on_aum=lambda lead, value: metrics.aum.labels(lead).set(float(value)),
            read_book=engine.read_lead_book,
        )
        self.notifier.status("starting: loading markets and account state")
        try:
            single = self.role == "all"
            tracker = None
            if redis is not None and self.role == "shard":  # the leads from the streams, no lead key
                from bot.service.cluster_role import ClusterRole

                tracker = ClusterRole.lead_tracker(self.cfg, engine, redis)
            # a feed serves no follower: no mark feeds either
            await engine.start(lead_feeds=single, followers=single, marks=self.role != "feed",
                               lead_state=None if tracker is None else tracker.load)  # fmt: skip
            if redis is not None:
                from bot.service.cluster_role import ClusterRole

                self.cluster = await ClusterRole.start(self.role, self.cfg, engine, redis,
                                                       aum_of=aum.follower_aum, tracker=tracker)  # fmt: skip
            membership = self.membership = self._membership(start)
            membership.restore(start)  # before any fill is processed: no await since engine.start()
            if self.cfg.api.enabled:
                port = self.cfg.api.port if self.api_port is None else self.api_port
                self.api_runner = await start_api(
                    engine,
                    aum,
                    self.cfg.api.host,
                    port,
                    self.cfg.api_token(),
                    journal=journal,
                    # in a cluster role only reading and reloading the file (bot/service/membership_routes.py)
                    membership=membership,
                    cluster=self.cluster,
                )
                self.bound_api_port = bound_port(self.api_runner)
                log.info("api_listening", host=self.cfg.api.host, port=self.bound_api_port)
            # Admit followers under each lead's AUM cap before anything is copied.
            await aum.refresh_capacity()
            aum.apply_cap()
            await self._wait_streams_live(timeout=30.0)
            self.reconciler = Reconciler(engine)
            if self.cfg.reconcile.on_start:
                await self.reconciler.run_once("start")
            reconciler = self.reconciler
            supervisor = engine.supervisor
            engine.supervisor.spawn("reconciler", reconciler.run)
            engine.supervisor.spawn("upkeep", lambda: run_upkeep(engine))
            period = self.cfg.executor.balance_refresh_s
            engine.supervisor.spawn(
                "aum",
                lambda: aum.run(
                    period,
                    on_success=lambda: supervisor.succeeded("aum"),
                    on_failure=lambda exc: supervisor.failed("aum", exc),
                ),
            )
            engine.supervisor.spawn("loop-monitor", self.loop_monitor.run)
            if alerts_cfg.daily_summary_utc and notifications.enabled:
                daily = DailySummary(journal, list(engine.leads), alerts_cfg.daily_summary_utc,
                                     notifications.send_text)  # fmt: skip
                engine.supervisor.spawn("daily-summary", daily.run)
            engine.supervisor.spawn("membership", membership.run)
            pinger = WatchdogPinger(self.notifier)
            # The pinger returns at once without a notify socket: not a task to supervise then.
            engine.add_task(
                asyncio.create_task(pinger.run(self.healthy, self.health_status), name="watchdog")
            )
            engine.ready.set()
            self.notifier.ready(f"copying: {len(engine.leads)} lead(s), {len(engine.followers)} follower(s)")
            log.info("ready", leads=len(engine.leads), followers=len(engine.followers), role=self.role)
            if self.on_ready:
                self.on_ready(self)
            await self.stop_event.wait()
        finally:
            self.notifier.stopping("draining in-flight orders")
            # A shard's reload holds its partitions' locks: it stops with the consumers, or their
            # release would wait for it (the file is read again at the next start).
            first = ["membership", "shard"] if self.cluster is not None else []
            drained = await engine.stop(first=first)
            if redis is not None:
                await redis.aclose()
            if self.api_runner is not None:
                await self.api_runner.cleanup()
            await alerts.stop()
            journal.close()
            self.notifier.close()
            log.info("stopped", drained=drained)
        return 0

    def _membership(self, start: Effective) -> Membership:
        """Runtime membership: of the whole daemon, or of the partitions a shard serves."""
        assert self.engine is not None
        assert self.aum is not None
        assert self.journal is not None
        args = (self.engine, self.aum, self.journal, self.cfg, start)
        shard = None if self.cluster is None else self.cluster.shard
        if shard is None:
            return Membership(*args, load_file=self.load_config, aum_settings=aum_settings)
        from bot.cluster.shard_members import ShardMembers
        from bot.service.shard_membership import ShardMembership

        return ShardMembership(*args, members=ShardMembers(shard), load_file=self.load_config,
                               aum_settings=aum_settings)  # fmt: skip

    def request_reload(self) -> None:
        """SIGHUP (`systemctl reload`): re-read the config file and apply its followers (in a shard,
        those of the partitions it serves: bot/service/shard_membership.py)."""
        if self.membership is None:
            log.warning("reload_ignored", reason="the daemon is still starting")
            return
        if self.role == "feed":
            log.warning("reload_ignored", role=self.role, reason=FEED_RELOAD)
            return
        self.membership.request_reload()

    def _start_config(self, journal: Journal) -> Effective:
        """The file plus the runtime changes still valid (bot.service.roster); the file alone when
        those cannot be applied. A cluster role has no runtime changes: the file is the cluster's."""
        if self.role != "all":
            return Effective(self.cfg)
        try:
            return effective(self.cfg, journal.overrides())
        except RosterError as exc:
            log.error("runtime_changes_not_applied", error=str(exc))
            journal.record_event("runtime_changes_not_applied", "config", {"error": str(exc)})
            return Effective(self.cfg)

    async def reload(self, new_file: AppConfig | None = None, actor: str = "reload") -> dict[str, Any]:
        """What SIGHUP does (bot.service.membership.Membership.reload): apply the config file's
        followers to the running daemon, all or nothing. `new_file` replaces reading the file."""
        assert self.membership is not None, "the daemon is not running"
        return await self.membership.reload(new_file, actor)

    async def _wait_streams_live(self, timeout: float) -> None:
        assert self.engine is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stop_event.is_set():
            if all(feed.live for feed in self.engine.feeds.values()):
                return
            await asyncio.sleep(0.02)
        log.warning("streams_not_live_at_start", timeout_s=timeout)
