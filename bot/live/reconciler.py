"""Reconciliation: on start and every `interval_s`, compare positions with targets through the same
path as live events (a SyncWork into the follower's own queue), and re-check the lead's positions
against the venue, adopting the venue's when they differ (a fill missed while down, a close done
by hand). Its reads are background reads, paced within the venue address's request budget
(bot.live.budget): with many followers a pass spreads over the minutes the budget allows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import structlog

from bot.core.errors import ErrorKind, short
from bot.core.planner import plan_legs
from bot.core.trading_state import StateCode
from bot.core.types import ZERO, PositionSnapshot
from bot.live import manual_trades
from bot.live.budget import ESSENTIAL_SHARE, note_error, paced, used_weight
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
        if self.engine.lead_positions_from != "venue":
            return  # a cluster role: the lead feed checks the lead (docs/cluster.md, "Lead positions")
        # The start's pass is part of start-up: it may use start-up's share of the budget.
        share = ESSENTIAL_SHARE if report.reason == "start" else None
        lead = self.engine.leads[lead_id]
        fills_before = lead.fills
        snapshot, server_ms = await read_lead_positions(self.engine, lead_id, share=share)
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
        await asyncio.gather(
            *(self._check_follower(f, report, sem, reason) for f in engine.followers.values())
        )
        if report.drifts:
            # One alert per follower, naming each symbol and how far off it was, so whoever reads
            # it knows what was corrected without opening the journal.
            by_follower: dict[str, list[Drift]] = {}
            for drift in report.drifts:
                by_follower.setdefault(drift.follower, []).append(drift)
            for fid, drifts in by_follower.items():
                detail = {
                    "follower": fid,
                    "reason": reason,
                    "mode": self.cfg.mode,
                    "drifts": [
                        {"symbol": d.symbol, "position": d.position, "target": d.target,
                         "size": str(Decimal(d.target) - Decimal(d.position))}
                        for d in drifts
                    ],
                }  # fmt: skip
                engine.alert("reconcile_drift", fid, detail)
        self.last = report
        log.info("reconciled", reason=reason, drifts=len(report.drifts), skipped=len(report.skipped),
                 lead_corrections=len(report.lead_corrections))  # fmt: skip
        return report

    async def converge(self, followers: list[FollowerRuntime], reason: str) -> ReconcileReport:
        """Followers whose positions were just read (a shard took them over): as the start pass
        does, read the owner's hand trades (bot/live/manual_trades.py), then compare with their
        targets and, in `correct` mode, queue what converges them."""
        report = ReconcileReport(int(time.time() * 1000), reason)
        sem = asyncio.Semaphore(BACKGROUND_READS)

        async def one(follower: FollowerRuntime) -> None:
            try:
                async with sem:
                    await manual_trades.check(self.engine, follower, share=ESSENTIAL_SHARE)
            except Exception as exc:  # the owner's quantity unknown: nothing is corrected
                report.skipped.append(f"{follower.id}: {short(exc)}")
                return
            self._compare(follower, report)

        await asyncio.gather(*(one(f) for f in followers))
        return report

    async def _check_follower(
        self, follower: FollowerRuntime, report: ReconcileReport, sem: asyncio.Semaphore, reason: str
    ) -> None:
        if follower.busy or not follower.queue.empty():
            report.skipped.append(f"{follower.id}: busy")
            return
        share = ESSENTIAL_SHARE if reason == "start" else None
        if reason == "start" and not follower.needs_resync:
            # Start-up has just read its positions and balance: reading them again would double the
            # start's request weight (with many followers, most of a minute's budget).
            try:
                async with sem:
                    await manual_trades.check(self.engine, follower, share=share)
            except Exception as exc:  # the owner's quantity unknown: nothing is corrected
                report.skipped.append(f"{follower.id}: {short(exc)}")
                return
            self._compare(follower, report)
            return
        budget = self.engine.venues[self.engine.cfg.follower(follower.id).venue].budget
        adapter = follower.adapter
        weight = adapter.weight("positions") + adapter.weight("balance")
        async with sem:
            await budget.acquire(weight, share=share)
            if follower.busy or not follower.queue.empty():  # it became busy while paced
                report.skipped.append(f"{follower.id}: busy")
                return
            try:
                await self.engine.resync_follower(follower)
                budget.observe(used_weight(adapter, follower.client))
                await manual_trades.check(self.engine, follower, share=share)
            except Exception as exc:
                note_error(budget, adapter, follower.client, exc)
                report.skipped.append(f"{follower.id}: {short(exc)}")
                if adapter.classify(exc) is ErrorKind.AUTH:
                    follower.disable(f"authentication failed: {short(exc)}", StateCode.AUTH_FAILED)
                return
        self.engine.pnl.sync(follower, self._live_mark(follower))  # closed at the venue (TP/SL) is booked
        self._compare(follower, report)
        if reason != "start" and self.engine.pnl.wants_income(follower, self.cfg.income_every_s):
            # Fees and funding from the account's income log, on this cadence and in this budget.
            async with sem:
                try:
                    await self.engine.pnl.read_income(follower, budget)
                except Exception as exc:
                    log.warning("income_read_failed", follower=follower.id, error=short(exc))

    def _live_mark(self, follower: FollowerRuntime) -> Callable[[str], Decimal | None]:
        """The follower venue's live mark (None while its feed is down: a stale price would book a
        venue's close at the wrong price); the shared price when no feed runs for that venue."""
        venue = self.engine.cfg.follower(follower.id).venue
        if venue in self.engine.mark_feeds:
            return lambda symbol: self.engine.venue_mark(venue, symbol)
        return self.engine.mark

    def _compare(self, follower: FollowerRuntime, report: ReconcileReport) -> None:
        symbols = set(follower.confirmed)
        for lead in follower.settings.sizings:
            symbols |= follower_symbols(follower, lead, self.engine.leads[lead].positions)
        for symbol in sorted(symbols):
            market = follower.markets.get(symbol)
            if market is None:
                continue
            if symbol in follower.manual.pending:
                # The owner's hand trades could not be read: his quantity is not known, so nothing
                # is corrected (bot/live/manual_trades.py reads it again at the next pass).
                report.skipped.append(f"{follower.id}: {symbol} manual trades unread")
                continue
            lead = self._lead_for(follower, symbol)
            follower.ensure_ratio(lead, symbol, follower.engine.mark(symbol) or ZERO)
            target, _ = follower.target(symbol)
            position = follower.own(symbol)  # drift on copybot's own quantity (bot.core.manual)
            if abs(target - position) < market.step:
                continue
            price = follower.engine.mark(symbol) or ZERO
            if price > 0 and not plan_legs(target, position, market, price).legs:
                # A rest below the venue's minimum: no order can close it, it waits for the next
                # lead move (the planner defers it, status shows it). Not a drift to alert on.
                continue
            report.drifts.append(Drift(follower.id, symbol, str(position), str(target)))
            self.engine.metrics.drift.labels(follower.id).inc()
            if self.cfg.mode == "correct":
                trigger = f"rc{int(time.time() * 1000)}"
                follower.submit(SyncWork(symbol, lead, trigger, price, "reconcile"))

    def _lead_for(self, follower: FollowerRuntime, symbol: str) -> str:
        """The lead whose position drives this symbol (the first that holds it)."""
        for lead in follower.settings.sizings:
            if follower.engine.lead_position(lead, symbol):
                return lead
        return next(iter(follower.settings.sizings))


async def read_lead_positions(
    engine: Engine, lead_id: str, *, share: float | None = None
) -> tuple[dict[str, PositionSnapshot], int]:
    """The lead's positions from the venue and the venue's time just before the read (what
    `LeadRuntime.seed` takes), paced in the lead venue's request budget."""
    lead = engine.leads[lead_id]
    budget = engine.venues[engine.cfg.lead(lead_id).venue].budget
    adapter, rest = lead.adapter, lead.rest
    server_ms = int(await paced(budget, adapter, rest, adapter.weight("time"), rest.fetch_time, share=share))
    rows = await paced(budget, adapter, rest, adapter.weight("positions"), rest.fetch_positions, share=share)
    return adapter.positions(rows), server_ms
