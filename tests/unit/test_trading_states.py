"""The one owner of trading states: each path (operator, stops, kill switch, auth failure, worker
failures) through StateOwner.request, with its journal row, metric and alert; refusals that the
transition table makes; what a restart restores; and a guard that nothing else assigns a state."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from bot.core.trading_state import StateCode, decide
from bot.core.types import TradingState
from bot.journal.store import Journal
from bot.live.metrics import Metrics
from bot.live.trading_states import GLOBAL, Standing, StateOwner

A, R, H = TradingState.ACTIVE, TradingState.REDUCE_ONLY, TradingState.HALTED
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal.open(tmp_path / "journal.sqlite")
    yield j
    j.close()


class Alerts:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any], str]] = []

    def __call__(self, kind: str, subject: str, detail: dict[str, Any], severity: str) -> None:
        self.sent.append((kind, subject, detail, severity))


def owner(journal: Journal) -> tuple[StateOwner, Metrics, Alerts]:
    metrics, alerts = Metrics(), Alerts()
    return StateOwner(journal, metrics, alerts), metrics, alerts


def changes(metrics: Metrics, subject: str, state: TradingState, code: StateCode) -> float:
    value = metrics.registry.get_sample_value(
        "copybot_state_changes_total", {"subject": subject, "state": state.value, "code": code.value}
    )
    return value or 0.0


@pytest.mark.parametrize(
    ("path", "code", "requested", "alert_kind", "severity"),
    [
        ("operator halt", StateCode.OPERATOR, H, "state_changed", "warning"),
        ("operator reduce-only", StateCode.OPERATOR, R, "state_changed", "warning"),
        ("portfolio stop closing", StateCode.PORTFOLIO_STOP, R, "stop_triggered", "critical"),
        ("daily loss", StateCode.DAILY_LOSS, R, "stop_triggered", "critical"),
        ("drawdown", StateCode.MAX_DRAWDOWN, R, "stop_triggered", "critical"),
        ("auth failure", StateCode.AUTH_FAILED, H, "follower_disabled", "critical"),
        ("key refused", StateCode.KEY_REFUSED, H, "follower_disabled", "critical"),
        ("start-up failure", StateCode.STARTUP_FAILED, H, "follower_disabled", "critical"),
        ("repeated worker failure", StateCode.WORKER_FAILURES, H, "follower_disabled", "critical"),
    ],
)
def test_each_follower_path_writes_journal_metric_and_alert(
    journal: Journal, path: str, code: StateCode, requested: TradingState, alert_kind: str, severity: str
) -> None:
    states, metrics, alerts = owner(journal)
    standing = Standing()
    change = states.request("f1", standing, requested, code, f"{path}: details")
    assert (change.before, change.after, change.changed) == (A, requested, True)
    assert (standing.state, standing.code, standing.reason) == (requested, code, f"{path}: details")
    journal.flush()
    row = journal.follower_states()["f1"]
    assert (row.state, row.code, row.reason) == (requested, code, f"{path}: details")
    assert changes(metrics, "f1", requested, code) == 1
    assert alerts.sent == [
        (alert_kind, "f1", {"from": "ACTIVE", "to": requested.value, "code": code.value,
                            "reason": f"{path}: details"}, severity)
    ]  # fmt: skip


def test_kill_switch_halts_globally_and_its_release_may_resume(journal: Journal) -> None:
    states, metrics, alerts = owner(journal)
    states.request_global(H, StateCode.KILL_SWITCH, "kill switch file /run/KILL")
    assert states.global_standing.state is H
    with structlog.testing.capture_logs() as logs:
        states.request_global(A, StateCode.KILL_SWITCH, "kill switch file /run/KILL removed")
    assert states.global_standing.state is A  # the file is an operator's act: it may loosen
    journal.flush()
    assert journal.follower_states()[GLOBAL].code is StateCode.KILL_SWITCH
    # Removing the file is good news: a "released" alert at info, and an info log line, no error.
    assert [a[0] for a in alerts.sent] == ["kill_switch", "kill_switch_released"]
    assert [a[3] for a in alerts.sent] == ["critical", "info"]
    assert [(e["event"], e["log_level"]) for e in logs] == [("state_changed", "info")]
    assert changes(metrics, GLOBAL, H, StateCode.KILL_SWITCH) == 1


@pytest.mark.parametrize("code", [StateCode.DAILY_LOSS, StateCode.MAX_DRAWDOWN, StateCode.WORKER_FAILURES])
@pytest.mark.parametrize("current", [R, H])
def test_nothing_but_an_operator_loosens(journal: Journal, code: StateCode, current: TradingState) -> None:
    states, metrics, alerts = owner(journal)
    standing = Standing(current, StateCode.OPERATOR, "held by the operator")
    change = states.request("f1", standing, A, code, "a stop asking to resume")
    assert (change.after, standing.state, standing.reason) == (current, current, "held by the operator")
    journal.flush()
    assert "f1" not in journal.follower_states()
    assert not alerts.sent
    assert states.request("f1", standing, A, StateCode.OPERATOR, "resume").after is A


def test_a_stop_firing_again_records_nothing_new(journal: Journal) -> None:
    states, metrics, alerts = owner(journal)
    standing = Standing()
    states.request("f1", standing, R, StateCode.DAILY_LOSS, "daily_loss: lost 600 >= 500")
    states.request("f1", standing, R, StateCode.DAILY_LOSS, "daily_loss: lost 650 >= 500")
    assert len(alerts.sent) == 1
    assert standing.reason == "daily_loss: lost 600 >= 500"
    assert changes(metrics, "f1", R, StateCode.DAILY_LOSS) == 1
    # An operator re-stating the same state with a new reason is recorded.
    states.request("f1", standing, R, StateCode.OPERATOR, "operator: keep it reduce-only")
    assert len(alerts.sent) == 2
    assert standing.code is StateCode.OPERATOR


def test_restore_keeps_decisions_and_rechecks_conditions(journal: Journal) -> None:
    states, _, _ = owner(journal)
    standings = {f: Standing() for f in ("op", "stop", "auth", "worker", "key")}
    states.request("op", standings["op"], H, StateCode.OPERATOR, "operator: maintenance")
    states.request("stop", standings["stop"], R, StateCode.DAILY_LOSS, "daily_loss: lost 600")
    states.request("auth", standings["auth"], H, StateCode.AUTH_FAILED, "authentication failed")
    states.request("worker", standings["worker"], H, StateCode.WORKER_FAILURES, "worker failed 5 times")
    states.request("key", standings["key"], H, StateCode.KEY_REFUSED, "key refused: may withdraw")
    states.request_global(H, StateCode.KILL_SWITCH, "kill switch file")
    journal.flush()

    after_restart, _, _ = owner(journal)
    fresh = {f: Standing() for f in standings}
    after_restart.restore(fresh)
    assert {f: s.state for f, s in fresh.items()} == {"op": H, "stop": R, "auth": A, "worker": A, "key": A}
    assert fresh["stop"].code is StateCode.DAILY_LOSS
    assert after_restart.global_standing.state is A  # the file is looked at again at start


def test_journal_v1_rows_get_their_code_from_the_reason(tmp_path: Path) -> None:
    import sqlite3

    from bot.journal.schema import MIGRATIONS

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(MIGRATIONS[0] + "; PRAGMA user_version = 1;")
        db.executemany(
            "INSERT INTO follower_state(follower, state, reason, updated_ts) VALUES (?,?,?,0)",
            [("a", "HALTED", "authentication failed: -2015"), ("b", "REDUCE_ONLY", "daily_loss: lost 1"),
             ("c", "HALTED", "operator: maintenance"), ("d", "HALTED", "key refused: withdrawals")],
        )  # fmt: skip
    journal = Journal.open(path)
    try:
        codes = {f: row.code for f, row in journal.follower_states().items()}
    finally:
        journal.close()
    assert codes == {
        "a": StateCode.AUTH_FAILED,
        "b": StateCode.DAILY_LOSS,
        "c": StateCode.OPERATOR,
        "d": StateCode.KEY_REFUSED,
    }


def test_decide_is_the_transition_table() -> None:
    assert decide("f", H, A, StateCode.DAILY_LOSS, "").after is H
    assert decide("f", H, A, StateCode.OPERATOR, "").after is A
    assert decide("f", A, H, StateCode.WORKER_FAILURES, "").changed


def test_nothing_outside_the_owner_assigns_a_trading_state() -> None:
    """Static guard: the fields of Standing are assigned in bot/live/trading_states.py only, and no
    module assigns `.state`/`.state_reason` on a follower or the engine."""
    offenders = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith("bot/sim/") or rel == "bot/live/trading_states.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(), rel)):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign):
                targets = [t for target in node.targets for t in _flatten(target)]
            elif isinstance(node, ast.AugAssign | ast.AnnAssign):
                targets = [node.target]
            for t in targets:
                if isinstance(t, ast.Attribute) and t.attr in ("state", "state_reason", "code", "reason"):
                    owner_expr = ast.unparse(t.value)
                    if t.attr in ("state", "state_reason") or "standing" in owner_expr:
                        offenders.append(f"{rel}:{node.lineno}: {ast.unparse(t)}")
    assert offenders == []


def _flatten(target: ast.expr) -> list[ast.expr]:
    if isinstance(target, ast.Tuple | ast.List):
        return [t for elt in target.elts for t in _flatten(elt)]
    return [target]
