"""Admitting followers to the running daemon: each joiner is checked as at start (key, login,
positions and balance: bot.live.membership.prepare_joiner), its capital is admitted under each
lead's AUM cap after the followers already there (bot.aum.service.AumService.preview_join), and
what it copies of the leads' open positions is decided (bot.live.membership.plan_join). Nothing is
registered here: a refusal of any joiner closes what was opened and leaves the engine as it was,
so a reload stays all or nothing (bot/service/membership.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from bot.aum.cap import Admission
from bot.aum.definition import FollowerCapital
from bot.aum.service import AumService
from bot.config.models import AppConfig, FollowerConfig
from bot.core.errors import short
from bot.core.types import TradingState
from bot.live import membership as live
from bot.live.engine import Engine
from bot.live.follower import FollowerRuntime
from bot.service.roster import RosterError
from bot.service.wiring import follower_settings


@dataclass
class Joiner:
    cfg: FollowerConfig
    runtime: FollowerRuntime
    plan: live.JoinPlan
    admissions: list[Admission]


async def admit(
    engine: Engine,
    aum: AumService,
    joiners: list[FollowerConfig],
    candidate: AppConfig,
    *,
    elsewhere: Mapping[str, Decimal] | None = None,
) -> list[Joiner]:
    """Check every joiner before any is registered; `candidate` is the config with them (the
    start-up checks read it from engine.cfg, restored on a refusal). `elsewhere`: per lead, the
    follower capital a cluster's other shards serve (AumService.preview_join). Raises RosterError
    (409)."""
    before_cfg = engine.cfg
    engine.cfg = candidate
    settings = follower_settings(candidate)
    done: list[Joiner] = []
    ahead: list[FollowerCapital] = []  # joiners of this same change come before the next one
    fid = ""
    try:
        for fcfg in joiners:
            fid = fcfg.id
            runtime = await live.prepare_joiner(engine, fcfg, settings[fid])
            try:
                admissions = aum.preview_join(
                    fid, runtime.settings.sizings, runtime.balance.equity, ahead, elsewhere
                )
                refused = [a for a in admissions if a.fraction <= 0]
                if refused:
                    raise RosterError(f"follower {fid!r} refused: {refused[0].reason}", 409)
                policies = {f.lead: live.JoinPolicy(f.on_join, f.join_max_adverse_bps) for f in fcfg.follows}
                plan = await live.plan_join(engine, runtime, policies)
            except BaseException:
                await live.close_client(runtime)
                raise
            done.append(Joiner(fcfg, runtime, plan, admissions))
            equity = runtime.balance.equity
            ahead += [
                FollowerCapital(fid, a.lead, a.admitted, equity, TradingState.ACTIVE) for a in admissions
            ]
    except BaseException as exc:
        for joiner in done:
            await live.close_client(joiner.runtime)
        engine.cfg = before_cfg
        if isinstance(exc, RosterError) or not isinstance(exc, Exception):
            raise
        # A refused key, missing credentials, the venue unreachable: not admitted, nothing changed.
        raise RosterError(f"follower {fid!r} refused: {short(exc)}", 409) from exc
    return done
