"""Reconciliation: on start and every `interval_s`, compare positions with targets through the same
path as live events (a SyncWork into the follower's own queue), and re-check the lead's positions
against the venue, adopting the venue's when they differ (a fill missed while down, a close done
by hand)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from bot.core.errors import short
from bot.core.types import ZERO
from bot.live.follower import FollowerRuntime
from bot.live.lead_view import follower_symbols
from bot.live.venue_runtime import BACKGROUND_READS
from bot.live.work import SyncWork

if TYPE_CHECKING:
    from bot.live.engine import Engine

log = structlog.get_logger("copybot.reconcile")


@dataclass
class Drift:
    follower: str
    symbol: str
    position: str
    target: str


@dataclass
class ReconcileReport:
    started_ms: int
    reason: str
    drifts: list[Drift] = field(default_factory=list)
    lead_corrections: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


class Reconciler:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.cfg = engine.cfg.reconcile
        self.last: ReconcileReport | None = None
        self.runs = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.interval_s)
            try:
                await self.run_once("periodic")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a failed pass is retried at the next interval
                log.warning("reconcile_failed", error=short(exc))

    async def _check_lead(self, lead_id: str, report: ReconcileReport) -> None:
        lead = self.engine.leads[lead_id]
        fills_before = lead.fills
        server_ms = int(await lead.rest.fetch_time())
        snapshot = lead.adapter.positions(await lead.rest.fetch_positions())
        if lead.fills != fills_before or not self.engine.idle():
            return  # fills arrived meanwhile: the snapshot cannot be ordered against them
        venue = {s: p.qty for s, p in snapshot.items() if p.qty != 0}
        if venue != lead.positions:
            correction = {"lead": lead_id, "tracked": {s: str(q) for s, q in lead.positions.items()},
                          "venue": {s: str(q) for s, q in venue.items()}}  # fmt: skip
            report.lead_corrections.append(correction)
            log.warning("lead_position_drift", **correction)
            # Adopt the venue's view with its time, so a fill it already holds that arrives later
            # (a backfill after a reconnect) is recognised as included, not applied twice.
            lead.seed(snapshot, server_ms)

    async def run_once(self, reason: str) -> ReconcileReport:
        engine = self.engine
        self.runs += 1
        report = ReconcileReport(int(time.time() * 1000), reason)
        for lead_id in engine.leads:
            try:
                await self._check_lead(lead_id, report)
            except Exception as exc:
                report.skipped.append(f"lead {lead_id}: {short(exc)}")
        sem = asyncio.Semaphore(BACKGROUND_READS)
        await asyncio.gather(*(self._check_follower(f, report, sem) for f in engine.followers.values()))
        if report.drifts:
            engine.alert("reconcile_drift", "followers", {"drifts": len(report.drifts), "reason": reason})
        self.last = report
        log.info("reconciled", reason=reason, drifts=len(report.drifts), skipped=len(report.skipped),
                 lead_corrections=len(report.lead_corrections))  # fmt: skip
        return report

    async def _check_follower(
        self, follower: FollowerRuntime, report: ReconcileReport, sem: asyncio.Semaphore
    ) -> None:
        if follower.busy or not follower.queue.empty():
            report.skipped.append(f"{follower.id}: busy")
            return
        async with sem:
            try:
                await self.engine.resync_follower(follower)
            except Exception as exc:
                report.skipped.append(f"{follower.id}: {short(exc)}")
                return
        symbols = set(follower.confirmed)
        for lead in follower.settings.sizings:
            symbols |= follower_symbols(follower, lead, self.engine.leads[lead].positions)
        for symbol in sorted(symbols):
            market = follower.markets.get(symbol)
            if market is None:
                continue
            lead = self._lead_for(follower, symbol)
            follower.ensure_ratio(lead, symbol, follower.engine.mark(symbol) or ZERO)
            target, _ = follower.target(symbol)
            position = follower.position(symbol)
            if abs(target - position) < market.step:
                continue
            report.drifts.append(Drift(follower.id, symbol, str(position), str(target)))
            self.engine.metrics.drift.labels(follower.id).inc()
            if self.cfg.mode == "correct":
                trigger = f"rc{int(time.time() * 1000)}"
                price = follower.engine.mark(symbol) or ZERO
                follower.submit(SyncWork(symbol, lead, trigger, price, "reconcile"))

    def _lead_for(self, follower: FollowerRuntime, symbol: str) -> str:
        """The lead whose position drives this symbol (the first that holds it)."""
        for lead in follower.settings.sizings:
            if follower.engine.lead_position(lead, symbol):
                return lead
        return next(iter(follower.settings.sizings))
