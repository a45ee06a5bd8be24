"""The one owner of trading states: every change of a follower's or the global state goes through
`StateOwner.request`, which applies the transition table (bot/core/trading_state.py) and, when the
state changes, writes the journal row, counts the metric, logs and alerts. Nothing else assigns a
state: `Standing` is only mutated here. See docs/architecture.md, "Supervision and trading state".
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from bot.core.trading_state import StateChange, StateCode, decide
from bot.core.types import TradingState
from bot.live.metrics import Metrics
from bot.live.ports import JournalPort

log = structlog.get_logger("copybot.state")

GLOBAL = "*"  # the subject (and journal row) of the global trading state

_STOPS = frozenset({StateCode.PORTFOLIO_STOP, StateCode.DAILY_LOSS, StateCode.MAX_DRAWDOWN})
_DISABLED = frozenset(
    {StateCode.AUTH_FAILED, StateCode.KEY_REFUSED, StateCode.STARTUP_FAILED, StateCode.WORKER_FAILURES}
)

_STRICTNESS = {TradingState.ACTIVE: 0, TradingState.REDUCE_ONLY: 1, TradingState.HALTED: 2}


def alert_kind(code: StateCode) -> str:
    """The alert (and journal event) kind a state change is reported under (bot/service/alerts.py)."""
    if code in _STOPS:
        return "stop_triggered"
    if code in _DISABLED:
        return "follower_disabled"
    if code is StateCode.KILL_SWITCH:
        return "kill_switch"
    return "state_changed"


@dataclass(slots=True)
class Standing:
    """A subject's current trading state. Read anywhere; written by StateOwner alone."""

    state: TradingState = TradingState.ACTIVE
    code: StateCode = StateCode.STARTED
    reason: str = ""


Alert = Callable[[str, str, dict[str, Any], str], None]  # kind, subject, detail, severity


class StateOwner:
    def __init__(self, journal: JournalPort, metrics: Metrics, alert: Alert) -> None:
        self.journal = journal
        self.metrics = metrics
        self.alert = alert
        self.global_standing = Standing()

    def request(
        self, subject: str, standing: Standing, requested: TradingState, code: StateCode, reason: str
    ) -> StateChange:
        """Ask for `requested`; the transition table decides. A refused loosening (a stop asking to
        resume) changes nothing and records nothing, nor does a stop asking again for the state it already
        caused; an operator's request that keeps the state with a new reason is recorded."""
        change = decide(subject, standing.state, requested, code, reason)
        if change.after is not requested:
            log.info("state_request_refused", subject=subject, state=standing.state.value,
                     requested=requested.value, code=code.value, reason=reason)  # fmt: skip
            return change
        if not change.changed and (not code.by_operator or standing.reason == reason):
            return change  # a stop re-firing each pass, or an operator repeating themselves
        standing.state, standing.code, standing.reason = change.after, code, reason
        self.journal.set_follower_state(subject, change.after, reason, code)
        self.metrics.state_changes.labels(subject, change.after.value, code.value).inc()
        detail = {"from": change.before.value, "to": change.after.value, "code": code.value, "reason": reason}
        operator = code is StateCode.OPERATOR or change.after is TradingState.ACTIVE
        if code is StateCode.KILL_SWITCH and _STRICTNESS[change.after] < _STRICTNESS[change.before]:
            # The operator removed the kill file: good news, told as such (info, "released").
            log.info("state_changed", subject=subject, **detail)
            self.alert("kill_switch_released", subject, detail, "info")
            return change
        log.warning("state_changed", subject=subject, **detail)
        self.alert(alert_kind(code), subject, detail, "warning" if operator else "critical")
        return change

    def request_global(self, requested: TradingState, code: StateCode, reason: str) -> StateChange:
        return self.request(GLOBAL, self.global_standing, requested, code, reason)

    def restore(self, standings: Mapping[str, Standing]) -> None:
        """Take back the states a previous run left in the journal, except those whose condition a
        restart checks afresh (StateCode.rechecked_at_start). Restoring is not a change: no alert."""
        for subject, row in self.journal.follower_states().items():
            if row.state is TradingState.ACTIVE or row.code.rechecked_at_start:
                continue
            target = self.global_standing if subject == GLOBAL else standings.get(subject)
            if target is None:
                continue
            target.state, target.code, target.reason = row.state, row.code, row.reason or ""
            log.warning("state_restored", subject=subject, state=row.state.value, code=row.code.value,
                        reason=row.reason)  # fmt: skip
