"""The journal's records of followers joining and leaving while the daemon runs (schema v3):

- `membership_changes`: every change, who made it (`api:<actor>`, `reload`, `start`), when and what;
- `follower_overrides`: a change made through the API, re-applied at the next start unless the
  config file changed that follower since (docs/config.md, "Runtime changes and the file");
- `follow_holds`: a lead position a follower does not copy (it joined with `new_only`, or the join
  price guard refused it) until the lead closes or reopens it.

Mixed into bot.journal.store.Journal; the SQL stays in bot/journal."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.core.redaction import redact_text
from bot.journal.writer import JournalBase


@dataclass(frozen=True, slots=True)
class MembershipChange:
    ts: int
    follower: str
    action: str  # add, set, pause, resume, leave, remove, reload_refused, override_superseded...
    actor: str
    detail: Any


@dataclass(frozen=True, slots=True)
class FollowerOverride:
    follower: str
    action: str  # "set": `config` is the follower's block; "leave": leaving by `on_leave`; "remove"
    config: dict[str, Any] | None
    file_hash: str  # the file's block for this follower when the change was made ("" if absent)
    on_leave: str | None
    actor: str
    updated_ts: int


class MembershipRecords(JournalBase):
    """Methods of Journal (bot.journal.store) for runtime membership."""

    def record_membership(
        self, follower: str, action: str, actor: str, detail: Mapping[str, Any] | None = None
    ) -> None:
        text = None if detail is None else redact_text(json.dumps(dict(detail), default=str))
        self._put(
            "INSERT INTO membership_changes(ts, follower, action, actor, detail) VALUES (?,?,?,?,?)",
            (time.time_ns() // 1_000_000, follower, action, redact_text(actor), text),
        )

    def membership_changes(self, follower: str | None = None, limit: int = 100) -> list[MembershipChange]:
        """Most recent first."""
        rows = self._read(
            "SELECT ts, follower, action, actor, detail FROM membership_changes"
            " WHERE (? IS NULL OR follower = ?) ORDER BY id DESC LIMIT ?",
            (follower, follower, limit),
        )
        return [MembershipChange(r[0], r[1], r[2], r[3], json.loads(r[4]) if r[4] else None) for r in rows]

    def save_override(
        self,
        follower: str,
        action: str,
        config: Mapping[str, Any] | None,
        file_hash: str,
        actor: str,
        on_leave: str | None = None,
    ) -> None:
        text = None if config is None else json.dumps(dict(config), default=str, sort_keys=True)
        self._put(
            "INSERT INTO follower_overrides(follower, action, config, file_hash, on_leave, actor, updated_ts)"
            " VALUES (?,?,?,?,?,?,?) ON CONFLICT(follower) DO UPDATE SET action = excluded.action,"
            " config = excluded.config, file_hash = excluded.file_hash, on_leave = excluded.on_leave,"
            " actor = excluded.actor, updated_ts = excluded.updated_ts",
            (follower, action, text, file_hash, on_leave, redact_text(actor), time.time_ns() // 1_000_000),
        )

    def drop_override(self, follower: str) -> None:
        self._put("DELETE FROM follower_overrides WHERE follower = ?", (follower,))

    def overrides(self) -> dict[str, FollowerOverride]:
        rows = self._read(
            "SELECT follower, action, config, file_hash, on_leave, actor, updated_ts FROM follower_overrides"
            " ORDER BY updated_ts, follower"
        )
        return {
            r[0]: FollowerOverride(r[0], r[1], json.loads(r[2]) if r[2] else None, r[3], r[4], r[5], r[6])
            for r in rows
        }

    def set_hold(self, follower: str, lead: str, symbol: str, reason: str) -> None:
        self._put(
            "INSERT OR REPLACE INTO follow_holds(follower, lead, symbol, reason, ts) VALUES (?,?,?,?,?)",
            (follower, lead, symbol, redact_text(reason), time.time_ns() // 1_000_000),
        )

    def clear_hold(self, follower: str, lead: str, symbol: str) -> None:
        self._put(
            "DELETE FROM follow_holds WHERE follower = ? AND lead = ? AND symbol = ?",
            (follower, lead, symbol),
        )

    def holds(self, follower: str) -> dict[tuple[str, str], str]:
        """(lead, symbol) -> why this follower does not copy the lead's open position there."""
        rows = self._read("SELECT lead, symbol, reason FROM follow_holds WHERE follower = ?", (follower,))
        return {(r[0], r[1]): r[2] for r in rows}
