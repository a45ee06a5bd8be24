"""The account stops (portfolio stop, daily loss, drawdown), evaluated whenever a follower's
equity can have moved: on every mark change, after each of its fills and after each read of its
account. Mark changes are coalesced to one pass per event-loop turn, after the fan-out of the fill
that moved them has been queued (docs/architecture.md, "Follower equity")."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Protocol

from bot.core import risk
from bot.core.trading_state import StateChange, StateCode
from bot.core.types import ZERO, TradingState
from bot.live import protect
from bot.live.follower import FollowerRuntime
from bot.live.supervisor import Supervisor
from bot.live.work import SyncWork


class Engine(Protocol):
    """What the stops need of the engine (bot.live.engine.Engine is one)."""

    @property
    def followers(self) -> Mapping[str, FollowerRuntime]: ...
    @property
    def supervisor(self) -> Supervisor: ...
    def set_follower_state(
        self, follower: FollowerRuntime, state: TradingState, code: StateCode, reason: str
    ) -> StateChange: ...


def apply_stops(engine: Engine, follower: FollowerRuntime) -> None:
    """Each stop that fires asks the state owner for its state. The portfolio stop first closes
    every position (REDUCE_ONLY, target zero), and the follower asks for HALTED once flat."""
    limits = follower.settings.limits
    if limits.portfolio_stop is None and limits.daily_loss_limit is None and limits.max_drawdown is None:
        return
    for trigger in risk.check_stops(_account_state(follower), limits):
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


def _account_state(follower: FollowerRuntime) -> risk.FollowerRiskState:
    """The account figures alone, all check_stops reads: built on every mark change for every
    holder, so it skips the positions and marks risk_state() gathers for planning."""
    b = follower.balance
    return risk.FollowerRiskState(
        follower=follower.id,
        state=follower.state,
        global_state=follower.engine.global_state(),
        kill_switch=follower.engine.kill_switch(),
        equity=b.equity,
        peak_equity=b.peak,
        day_start_equity=b.day_start,
        allocation_base=b.allocation_base,
        positions={},
        marks={},
    )


def check(engine: Engine, follower: FollowerRuntime) -> None:
    """Revalue one follower and apply its stops (a HALTED follower has nothing tighter to get)."""
    if follower.state is TradingState.HALTED or not follower.balance.read_ms:
        return
    follower.balance.revalue(follower.engine.mark)
    apply_stops(engine, follower)


class MarkWatch:
    """Runs the stops of every follower holding a position once per loop turn in which a mark
    changed. Every holder is revalued, not only those holding the symbol that moved: a follower on
    another venue holds it under another name (bot.live.lead_view), and a revaluation costs
    microseconds per position."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.passes = 0
        self._scheduled = False

    def changed(self) -> None:
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._run)

    def _run(self) -> None:
        self._scheduled = False
        self.passes += 1
        now = time.monotonic()
        for follower in self.engine.followers.values():
            if not follower.balance.ledger.positions:
                continue
            try:
                check(self.engine, follower)
                if follower.protected:
                    _poke_if_crossed(follower, now)
            except Exception as exc:  # one follower's bad figures must not skip the others' stops
                self.engine.supervisor.failed("stops", exc, follower=follower.id)
            else:
                self.engine.supervisor.succeeded("stops")


def _poke_if_crossed(follower: FollowerRuntime, now: float) -> None:
    """A mark past a resting TP/SL trigger: re-read the account now (bot/live/protect.py), so a
    triggered order pauses the copy before the next lead fill is planned on a stale position."""
    symbol = protect.crossed(follower, now)
    if symbol is None:
        return
    follower.reread = True  # not needs_resync: a batch under way goes on copying meanwhile
    lead = next((ld for ld in follower.settings.sizings if follower.engine.lead_position(ld, symbol)),
                next(iter(follower.settings.sizings)))  # fmt: skip
    mark = follower.engine.mark(symbol) or ZERO
    follower.submit(SyncWork(symbol, lead, f"pt{int(time.time() * 1000)}", mark, "protect"))
