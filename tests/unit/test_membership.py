"""Runtime membership without an event loop: the join/leave arithmetic (bot.core.join_leave), the
rule between the file and runtime changes and the change merging (bot.service.roster), the CLI's
KEY=VALUE parsing, and the journal's records."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.commands.follower import parse_changes
from bot.config.models import parse_config
from bot.core.join_leave import adverse_bps, exits_only, join_refusal, reopened
from bot.journal.membership import FollowerOverride
from bot.journal.store import Journal
from bot.service import roster
from bot.service.roster import RosterError

D = Decimal


def test_exits_only_never_grows_nor_flips() -> None:
    assert exits_only(D("0.02"), D("0.01")) == D("0.01")  # the lead added: not copied
    assert exits_only(D("0.005"), D("0.01")) == D("0.005")  # the lead reduced: copied
    assert exits_only(D("-0.01"), D("0.01")) == 0  # the lead flipped: close, do not reopen
    assert exits_only(D("0.01"), D(0)) == 0  # nothing held: nothing opened
    assert exits_only(D("-0.03"), D("-0.02")) == D("-0.02")


def test_reopened_and_the_price_guard() -> None:
    assert reopened(D(1), D(0))
    assert reopened(D(0), D(1))
    assert reopened(D(1), D(-1))
    assert not reopened(D(1), D(2))
    assert adverse_bps(D(1), D(100), D(102)) == D(200)  # a long bought higher
    assert adverse_bps(D(-1), D(100), D(102)) == D(-200)  # a short sold higher: better
    assert join_refusal(D(1), D(100), D("100.4"), D(50)) is None
    refusal = join_refusal(D(1), D(100), D(101), D(50))
    assert refusal is not None
    assert "100.0 bps worse" in refusal
    assert join_refusal(D(1), D(100), None, D(50)) is not None  # no price: not copied blind
    assert join_refusal(D(1), D(100), D(200), None) is None  # no guard


def _config(**follower_changes: Any) -> Any:
    creds = {"api_key_env": "K", "secret_env": "S"}
    risk = {"max_order_notional": 1000, "max_position_notional": 1000, "max_total_exposure": 1000,
            "max_leverage": 5}  # fmt: skip
    followers = [
        {"id": fid, "venue": "v", "credentials": creds, "risk": dict(risk),
         "follows": [{"lead": "lead", "sizing": {"mode": "multiplier"}}]}
        for fid in ("a", "b")
    ]  # fmt: skip
    followers[0].update(follower_changes)
    data = {"venues": {"v": {"mode": "live"}}, "leads": [{"id": "lead", "venue": "v", "credentials": creds}],
            "followers": followers}  # fmt: skip
    return parse_config(data, "file.yaml", env={})


def test_a_runtime_change_holds_until_the_file_changes_that_follower() -> None:
    file_cfg = _config()
    changed = roster.with_changed(file_cfg, "a", {"risk": {"max_order_notional": 500}})
    row = FollowerOverride("a", "set", roster.block(changed.follower("a")), roster.fingerprint(file_cfg, "a"),
                           None, "api:ops", 0)  # fmt: skip
    eff = roster.effective(file_cfg, {"a": row})
    assert eff.cfg.follower("a").risk.max_order_notional == 500
    assert eff.superseded == []

    edited = _config(leverage=3)  # the file changes a: the file wins
    eff = roster.effective(edited, {"a": row})
    assert eff.cfg.follower("a").risk.max_order_notional == 1000
    assert eff.superseded == [row]

    gone = FollowerOverride("b", "remove", None, roster.fingerprint(file_cfg, "b"), None, "api:ops", 0)
    assert [f.id for f in roster.effective(file_cfg, {"b": gone}).cfg.followers] == ["a"]


def test_changes_merge_and_refuse_what_cannot_change_while_running() -> None:
    cfg = _config()
    new = roster.with_changed(
        cfg, "a", {"follows": {"lead": {"sizing": {"multiplier": "0.5"}, "on_leave": "close"}}}
    )
    follow = new.follower("a").follows[0]
    assert (follow.sizing.multiplier, follow.on_leave, follow.sizing.mode) == (
        D("0.5"),
        "close",
        "multiplier",
    )
    with pytest.raises(RosterError, match=r"changes\.venue: cannot change"):
        roster.with_changed(cfg, "a", {"venue": "w"})
    with pytest.raises(RosterError, match=r"changes\.follows\.other: the follower does not follow"):
        roster.with_changed(cfg, "a", {"follows": {"other": {"sizing": {"multiplier": 2}}}})
    with pytest.raises(RosterError, match=r"changes\.risk\.max_leverage: must be greater than 0"):
        roster.with_changed(cfg, "a", {"risk": {"max_leverage": 0}})
    follows = [{"lead": "nobody", "sizing": {"mode": "multiplier"}}]
    with pytest.raises(RosterError, match=r"follower\.follows\[0\]\.lead: unknown lead"):
        roster.with_added(cfg, {**roster.block(cfg.follower("b")), "id": "c", "follows": follows})
    with pytest.raises(RosterError) as exc:
        roster.with_added(cfg, roster.block(cfg.follower("b")))
    assert exc.value.status == 409
    assert roster.leave_policy(cfg.follower("a"), None) == "keep"
    with pytest.raises(RosterError, match="on_leave: must be one of"):
        roster.leave_policy(cfg.follower("a"), "vanish")


def test_cli_changes_keep_decimals_exact() -> None:
    assert parse_changes(
        ["risk.max_order_notional=0.1", "follows.alice.sizing.multiplier=2", "enabled=false"]
    ) == {
        "risk": {"max_order_notional": "0.1"},
        "follows": {"alice": {"sizing": {"multiplier": 2}}},
        "enabled": False,
    }
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_changes(["risk.max_order_notional"])


def test_journal_keeps_changes_overrides_and_holds(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "j.sqlite")
    try:
        journal.record_membership("a", "add", "api:ops@127.0.0.1", {"copied": ["lead:BTC/USDT:USDT"]})
        journal.save_override("a", "set", {"id": "a"}, "abc", "api:ops")
        journal.save_override("a", "leave", {"id": "a"}, "abc", "api:ops", on_leave="close")
        journal.set_hold("a", "lead", "BTC/USDT:USDT", "new_only")
        journal.set_hold("a", "lead", "ETH/USDT:USDT", "new_only")
        journal.clear_hold("a", "lead", "ETH/USDT:USDT")
        journal.flush()
        (change,) = journal.membership_changes("a")
        assert (change.action, change.actor) == ("add", "api:ops@127.0.0.1")
        assert change.detail == {"copied": ["lead:BTC/USDT:USDT"]}
        row = journal.overrides()["a"]
        assert (row.action, row.on_leave, row.config, row.file_hash) == ("leave", "close", {"id": "a"}, "abc")
        assert journal.holds("a") == {("lead", "BTC/USDT:USDT"): "new_only"}
        journal.drop_override("a")
        journal.flush()
        assert journal.overrides() == {}
    finally:
        journal.close()
