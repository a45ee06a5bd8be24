"""Periodic upkeep beside the hot path: balances and stops, the kill-switch file. (The AUM passes
and history are bot.aum.service.AumService's, run by the app.)"""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING

import structlog

from bot.core import risk
from bot.core.errors import ErrorKind, short
from bot.core.trading_state import StateCode
from bot.core.types import ZERO, TradingState
from bot.live.follower import FollowerRuntime
from bot.live.venue_runtime import BACKGROUND_READS
from bot.live.work import SyncWork

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
                    SyncWork(symbol, lead, trig, follower.engine.mark(symbol) or ZERO, "portfolio_stop")
                )
        else:
            engine.set_follower_state(follower, trigger.action, trigger.stop, trigger.reason)


async def run_upkeep(engine: Engine) -> None:
    """Balances/stops every balance_refresh_s, the kill-switch file every second."""
    period = engine.cfg.executor.balance_refresh_s
    kill_file = engine.cfg.kill_switch_file
    next_balance = time.monotonic() + period
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
            engine.supervisor.succeeded("upkeep")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # upkeep must outlive a bad pass; the supervisor hears of it
            engine.supervisor.failed("upkeep", exc)
        await asyncio.sleep(1.0)
