"""Periodic upkeep beside the hot path: the leads' balances, the kill-switch file. (Followers'
equity and stops: bot.live.work.Balance and bot.live.stops; the AUM passes and history are
bot.aum.service.AumService's, run by the app.)

Balance reads are background reads: paced within the venue address's request budget
(bot.live.budget), and a 429/418 pauses them. The pass runs as its own task, so the kill-switch
file is still checked every second while a pass waits for room."""

from __future__ import annotations

import asyncio
import os
import time
from typing import TYPE_CHECKING

import structlog

from bot.core.errors import short
from bot.live.budget import paced

if TYPE_CHECKING:
    from bot.live.engine import Engine

log = structlog.get_logger("copybot.upkeep")


async def refresh_leads(engine: Engine) -> None:
    """The leads' equity, which proportional sizing divides by. Followers' equity needs no pass:
    it is marked to market continuously and re-read at each reconcile (bot.live.work.Balance)."""
    if engine.lead_positions_from == "stream":
        return  # a shard: the equity comes with each fill the feed publishes (docs/cluster.md)
    for lead in engine.leads.values():
        budget = engine.venues[engine.cfg.lead(lead.id).venue].budget
        try:
            balance = await paced(budget, lead.adapter, lead.rest, lead.adapter.weight("balance"),
                                  lead.rest.fetch_balance)  # fmt: skip
            lead.equity = lead.adapter.equity(balance)
        except Exception as exc:
            log.warning("lead_balance_failed", lead=lead.id, error=short(exc))


async def run_upkeep(engine: Engine) -> None:
    """The leads' balances every balance_refresh_s (one pass at a time, in its own task: a pass
    paced by the request budget may wait), the kill-switch file every second."""
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
                    pass_task = asyncio.create_task(refresh_leads(engine), name="upkeep:leads")
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
