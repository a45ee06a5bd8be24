"""Periodic upkeep beside the hot path: balances and stops, the kill-switch file. (The AUM passes
and history are bot.aum.service.AumService's, run by the app.)

Balance reads are background reads: paced within the venue address's request budget
(bot.live.budget), so a pass over many followers spreads over as many minutes as the budget needs,
and a 429/418 pauses it. The pass runs as its own task, so the kill-switch file is still checked
every second while a long pass waits for room."""

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
from bot.live.budget import paced
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
        budget = engine.venues[engine.cfg.follower(follower.id).venue].budget
        adapter = follower.adapter
        async with sem:
            try:
                await paced(budget, adapter, follower.client, adapter.weight("balance"),
                            lambda: engine.refresh_balance(follower))  # fmt: skip
            except Exception as exc:
                if adapter.classify(exc) is ErrorKind.AUTH:
                    follower.disable(f"authentication failed: {short(exc)}", StateCode.AUTH_FAILED)
                return
        apply_stops(engine, follower)

    await asyncio.gather(*(one(f) for f in engine.followers.values()))
    for lead in engine.leads.values():
        budget = engine.venues[engine.cfg.lead(lead.id).venue].budget
        try:
            balance = await paced(budget, lead.adapter, lead.rest, lead.adapter.weight("balance"),
                                  lead.rest.fetch_balance)  # fmt: skip
            lead.equity = lead.adapter.equity(balance)
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
    """Balances/stops every balance_refresh_s (one pass at a time, in its own task: a pass paced by
    the request budget may take minutes), the kill-switch file every second."""
    period = engine.cfg.executor.balance_refresh_s
    kill_file = engine.cfg.kill_switch_file
    next_balance = time.monotonic() + period
    pass_task: asyncio.Task[None] | None = None
    try:
        while True:
            if kill_file:
                present = os.path.exists(kill_file)  # noqa: ASYNC240 - one stat a second
                if present != engine.kill_file_seen:
                    engine.set_kill_switch(present, kill_file)
            now = time.monotonic()
            try:
                if pass_task is not None and pass_task.done():
                    done, pass_task = pass_task, None
                    if not done.cancelled() and (failure := done.exception()) is not None:
                        raise failure
                if now >= next_balance and pass_task is None:
                    next_balance = now + period
                    pass_task = asyncio.create_task(refresh_and_check_stops(engine), name="upkeep:balances")
                engine.supervisor.succeeded("upkeep")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # upkeep must outlive a bad pass; the supervisor hears of it
                engine.supervisor.failed("upkeep", exc)
            await asyncio.sleep(1.0)
    finally:
        if pass_task is not None and not pass_task.done():
            pass_task.cancel()
            await asyncio.gather(pass_task, return_exceptions=True)
