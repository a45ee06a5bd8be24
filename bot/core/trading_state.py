"""Trading states and the one table that says who may move them.

A follower (or the whole process, subject "*") is ACTIVE, REDUCE_ONLY or HALTED. Every change goes
through `decide()`, which the live engine's one setter calls (bot/live/state_owner.py); nothing else
assigns a state. Each change carries a `StateCode` (for metrics, restore-at-start and control flow)
and a free-text reason (for people). See docs/architecture.md, "Supervision and trading state".
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from bot.core.types import TradingState


class StateCode(StrEnum):
    """Why a trading state is what it is."""

    STARTED = "started"  # the initial ACTIVE state
    OPERATOR = "operator"  # the control API or CLI
    KILL_SWITCH = "kill_switch"  # the kill-switch file appeared (or went away)
    PORTFOLIO_STOP = "portfolio_stop"
    DAILY_LOSS = "daily_loss"
    MAX_DRAWDOWN = "max_drawdown"
    AUTH_FAILED = "auth_failed"  # the venue refused the key while running
    KEY_REFUSED = "key_refused"  # the key may withdraw, or its permissions could not be read
    STARTUP_FAILED = "startup_failed"  # the account could not be prepared
    WORKER_FAILURES = "worker_failures"  # the follower's worker failed repeatedly within a window

    @property
    def by_operator(self) -> bool:
        """An operator's act may loosen a state; nothing else may (a stop never resumes trading)."""
        return self in (StateCode.OPERATOR, StateCode.KILL_SWITCH)

    @property
    def rechecked_at_start(self) -> bool:
        """Conditions a restart checks afresh, so their HALTED state is not restored from the journal:
        the key and the account are checked again, the kill-switch file is looked at again, and a
        restarted process has a fresh worker."""
        return self in (
            StateCode.AUTH_FAILED,
            StateCode.KEY_REFUSED,
            StateCode.STARTUP_FAILED,
            StateCode.WORKER_FAILURES,
            StateCode.KILL_SWITCH,
        )


_A, _R, _H = TradingState.ACTIVE, TradingState.REDUCE_ONLY, TradingState.HALTED
# (current, requested) -> who may make the move. Tightening is open to stops and operators alike;
# loosening is the operator's call alone, so a stop can never resume trading by itself.
_TRANSITIONS: dict[tuple[TradingState, TradingState], str] = {
    (_A, _A): "anyone",
    (_A, _R): "anyone",
    (_A, _H): "anyone",
    (_R, _A): "operator",
    (_R, _R): "anyone",
    (_R, _H): "anyone",
    (_H, _A): "operator",
    (_H, _R): "operator",
    (_H, _H): "anyone",
}


def transition(current: TradingState, requested: TradingState, *, by_operator: bool) -> TradingState:
    """The state after a request: granted if the table allows it for this requester, else unchanged."""
    if _TRANSITIONS[(current, requested)] == "operator" and not by_operator:
        return current
    return requested


@dataclass(frozen=True, slots=True)
class StateChange:
    subject: str  # a follower id, or "*" for the global state
    before: TradingState
    after: TradingState
    code: StateCode
    reason: str

    @property
    def changed(self) -> bool:
        return self.before is not self.after


def decide(
    subject: str, current: TradingState, requested: TradingState, code: StateCode, reason: str
) -> StateChange:
    """What a request does to `current`: a change when the table grants it, else `before == after`."""
    after = transition(current, requested, by_operator=code.by_operator)
    return StateChange(subject, current, after, code, reason)
