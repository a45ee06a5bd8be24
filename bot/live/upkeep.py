"""Periodic upkeep beside the hot path: balances and stops, the kill-switch file, AUM snapshots."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING

import structlog

from bot.aum import service as aum_runtime
from bot.aum.definition import FollowerCapital, lead_aum
from bot.core import risk
from bot.core.errors import ErrorKind, short
from bot.core.trading_state import StateCode
from bot.core.types import ZERO, TradingState
from bot.live.follower import FollowerRuntime, SyncWork
from bot.live.venue_runtime import BACKGROUND_READS

if TYPE_CHECKING:
    from bot.live.engine import Engine

log = structlog.get_logger("copybot.upkeep")


async def refresh_and_check_stops(engine: Engine) -> None:
    sem = asyncio.Semaphore(BACKGROUND_READS)

    async def one(follower: FollowerRuntime) -> None:
        if follower.state is TradingState.HALTED:
            return
        async with sem:
            try:
                await engine.refresh_balance(follower)
            except Exception as exc:
                if follower.adapter.classify(exc) is ErrorKind.AUTH:
                    follower.disable(f"authentication failed: {short(exc)}", StateCode.AUTH_FAILED)
                return
        apply_stops(engine, follower)

    await asyncio.gather(*(one(f) for f in engine.followers.values()))
    for lead in engine.leads.values():
        try:
            lead.equity = lead.adapter.equity(await lead.rest.fetch_balance())
        except Exception as exc:
            log.warning("lead_balance_failed", lead=lead.id, error=short(exc))


def apply_stops(engine: Engine, follower: FollowerRuntime) -> None:
    """Each stop that fires asks the state owner for its state. The portfolio stop first closes
    every position (REDUCE_ONLY, target zero), and the follower asks for HALTED once flat."""
    for trigger in risk.check_stops(follower.risk_state(), follower.settings.limits):
        if trigger.stop is StateCode.PORTFOLIO_STOP:
            if follower.closing_reason is not None:
                continue
            engine.set_follower_state(follower, TradingState.REDUCE_ONLY, trigger.stop, trigger.reason)
            follower.closing_reason = trigger.reason
            for symbol in [s for s, q in follower.confirmed.items() if q]:
                lead = next(iter(follower.settings.sizings))
                trig = f"ps{int(time.time() * 1000)}"
                follower.submit(
                    SyncWork(symbol, lead, trig, engine.marks.get(symbol, ZERO), "portfolio_stop")
                )
        else:
            engine.set_follower_state(follower, trigger.action, trigger.stop, trigger.reason)


def snapshot_aum(engine: Engine) -> dict[str, str]:
    include_lead = engine.cfg.aum.include_lead
    out: dict[str, str] = {}
    now_ms = int(time.time() * 1000)
    for lead_id, followers in engine.followers_of.items():
        rows = [
            FollowerCapital(
                follower=f.id,
                lead=lead_id,
                allocation=f.settings.sizings[lead_id].allocation,
                equity=f.balance.equity,
                state=f.state,
                leads_followed=len(f.settings.sizings),
            )
            for f in followers
        ]
        snap = lead_aum(lead_id, rows, lead_equity=engine.leads[lead_id].equity, include_lead=include_lead)
        engine.metrics.aum.labels(lead_id).set(float(snap.aum))
        engine.journal.record_aum(now_ms, lead_id, snap.aum, snap.followers,
                                  {f: str(a) for f, a in snap.contributions})  # fmt: skip
        out[lead_id] = str(snap.aum)
    return out


async def run_upkeep(engine: Engine) -> None:
    """Balances/stops every balance_refresh_s, the kill-switch file every second, AUM each minute."""
    period = engine.cfg.executor.balance_refresh_s
    kill_file = engine.cfg.kill_switch_file
    next_balance = time.monotonic() + period
    next_aum = time.monotonic()
    while True:
        if kill_file:
            present = os.path.exists(kill_file)  # noqa: ASYNC240 - one stat a second
            if present != engine.kill_file_seen:
                engine.set_kill_switch(present, kill_file)
        now = time.monotonic()
        try:
            if now >= next_balance:
                next_balance = now + period
                await refresh_and_check_stops(engine)
                await aum_runtime.refresh_capacity(engine)
                aum_runtime.apply_aum_cap(engine)
            if now >= next_aum:
                next_aum = now + 60
                snapshot_aum(engine)
            engine.supervisor.succeeded("upkeep")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # upkeep must outlive a bad pass; the supervisor hears of it
            engine.supervisor.failed("upkeep", exc)
        await asyncio.sleep(1.0)
