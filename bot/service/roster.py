"""The set of followers as config: the file, the runtime changes journaled on top of it, and the
checks a change must pass before it reaches the running engine. Pure functions over the validated
config models (bot.config.models); bot/service/membership.py applies the result.

The rule between the file and runtime changes (docs/config.md, "Runtime changes and the file"):
the file is the source of truth at start and at every reload; a change made through the API is
journaled with a fingerprint of that follower's block in the file as it was then, and re-applied
on top of the file at the next start or reload only while the file still has that same block. As
soon as the file changes that follower (or adds one with the id), the file wins and the runtime
change is dropped, with a journal entry saying so.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.config.models import AppConfig, ConfigError, FollowerConfig
from bot.journal.membership import FollowerOverride

# What cannot change while a follower runs: its account and the leads it follows. Remove it and
# add it again instead.
FIXED_KEYS = ("venue", "credentials", "leverage", "margin_mode")
# Sections a reload may change besides `followers`; any other difference needs a restart.
RELOADABLE_SECTIONS = ("followers", "aum")
ON_LEAVE = ("close", "keep", "follow_exits")


class RosterError(Exception):
    """A change refused, with the key path(s) in the message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def block(follower: FollowerConfig) -> dict[str, Any]:
    """A follower's config block as JSON-able data (what the file says, defaults filled in)."""
    return follower.model_dump(mode="json")


def fingerprint(cfg: AppConfig, follower_id: str) -> str:
    """The file's block for one follower, hashed ("" when the file does not list it)."""
    found = [f for f in cfg.followers if f.id == follower_id]
    if not found:
        return ""
    text = json.dumps(block(found[0]), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Effective:
    """The config the daemon runs: the file plus the runtime changes still valid."""

    cfg: AppConfig
    leaving: dict[str, str] = field(default_factory=dict)  # follower -> on_leave, not finished
    superseded: list[FollowerOverride] = field(default_factory=list)  # the file changed it since


def effective(file_cfg: AppConfig, overrides: Mapping[str, FollowerOverride]) -> Effective:
    """Apply the journaled runtime changes on top of the file, by the rule above."""
    rows = [block(f) for f in file_cfg.followers]
    out = Effective(file_cfg)
    kept = False
    for fid, row in overrides.items():
        if fingerprint(file_cfg, fid) != row.file_hash:
            out.superseded.append(row)
            continue
        kept = True
        index = next((i for i, r in enumerate(rows) if r["id"] == fid), len(rows))
        rows = [r for r in rows if r["id"] != fid]
        if row.action in ("set", "leave") and row.config is not None:
            rows.insert(index, row.config)  # in the file's place: admission order is config order
        if row.action == "leave":
            out.leaving[fid] = row.on_leave or "keep"
    if kept:
        out.cfg = checked(file_cfg, rows, f"{file_cfg.source} with runtime changes")
    return out


def checked(cfg: AppConfig, rows: list[dict[str, Any]], source: str) -> AppConfig:
    try:
        return cfg.with_followers(rows, source)
    except ConfigError as exc:
        raise RosterError(str(exc)) from exc


def with_added(cfg: AppConfig, new: Mapping[str, Any]) -> AppConfig:
    """`cfg` with one more follower, validated as at start. Key paths name the posted block."""
    if not isinstance(new, Mapping):
        raise RosterError("follower: must be an object with the keys of a followers[] entry")
    fid = new.get("id")
    if any(f.id == fid for f in cfg.followers):
        raise RosterError(f"follower.id: {fid!r} is already in the config (use set, or remove it first)", 409)
    rows = [*(block(f) for f in cfg.followers), dict(new)]
    return _relative(cfg, rows, len(rows) - 1, "follower")


def with_changed(cfg: AppConfig, follower_id: str, changes: Mapping[str, Any]) -> AppConfig:
    """`cfg` with one follower's block merged with `changes` (nested objects merge; `follows` may be
    an object keyed by lead id to change one follow), validated as at start."""
    if not isinstance(changes, Mapping) or not changes:
        raise RosterError("changes: must be a non-empty object of the keys to change")
    rows = [block(f) for f in cfg.followers]
    index = next((i for i, r in enumerate(rows) if r["id"] == follower_id), None)
    if index is None:
        raise RosterError(f"follower: no follower {follower_id!r}", 404)
    for key in ("id", "enabled", *FIXED_KEYS):
        if key in changes and changes[key] != rows[index].get(key):
            raise RosterError(f"changes.{key}: cannot change while the daemon runs{_fixed_hint(key)}")
    merged = dict(rows[index])
    for key, value in changes.items():
        if key == "follows" and isinstance(value, Mapping):
            merged["follows"] = _merge_follows(rows[index]["follows"], value)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    if {f["lead"] for f in merged["follows"]} != {f["lead"] for f in rows[index]["follows"]}:
        raise RosterError("changes.follows: the leads followed cannot change while the daemon runs"
                          "; remove the follower and add it again")  # fmt: skip
    rows[index] = merged
    return _relative(cfg, rows, index, "changes")


def fixed_differences(before: FollowerConfig, after: FollowerConfig) -> list[str]:
    """The keys a reload may not change for a running follower."""
    keys = [k for k in FIXED_KEYS if getattr(before, k) != getattr(after, k)]
    if {f.lead for f in before.follows} != {f.lead for f in after.follows}:
        keys.append("follows[].lead")
    return keys


def _fixed_hint(key: str) -> str:
    return "" if key in ("id", "enabled") else "; remove the follower and add it again"


def _merge_follows(follows: list[dict[str, Any]], changes: Mapping[str, Any]) -> list[dict[str, Any]]:
    by_lead = {f["lead"]: f for f in follows}
    for lead, change in changes.items():
        if lead not in by_lead:
            raise RosterError(f"changes.follows.{lead}: the follower does not follow lead {lead!r}")
        if not isinstance(change, Mapping):
            raise RosterError(f"changes.follows.{lead}: must be an object")
        by_lead[lead] = _deep_merge(by_lead[lead], change)
    return [by_lead[f["lead"]] for f in follows]


def _deep_merge(base: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in change.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _relative(cfg: AppConfig, rows: list[dict[str, Any]], index: int, name: str) -> AppConfig:
    """Validate, and say `follower.risk.x` rather than `followers[7].risk.x` for the posted block."""
    try:
        return cfg.with_followers(rows, "api")
    except ConfigError as exc:
        text = re.sub(rf"followers\[{index}\]\.?", f"{name}.", str(exc)).replace(f"{name}.:", f"{name}:")
        raise RosterError(text) from exc


def leave_policy(follower: FollowerConfig, requested: str | None) -> str:
    """The one on_leave a follower leaving all its leads applies: the one asked for, else the one
    its follows agree on, else keep (docs/config.md)."""
    if requested is not None:
        if requested not in ON_LEAVE:
            raise RosterError(f"on_leave: must be one of {', '.join(ON_LEAVE)}, got {requested!r}")
        return requested
    policies = {f.on_leave for f in follower.follows}
    return policies.pop() if len(policies) == 1 else "keep"


def section_differences(before: AppConfig, after: AppConfig) -> list[str]:
    """Top-level sections other than the reloadable ones that differ (a reload refuses them)."""
    skip = set(RELOADABLE_SECTIONS)
    a = before.model_dump(mode="json", by_alias=True)
    b = after.model_dump(mode="json", by_alias=True)
    return sorted(k for k in set(a) | set(b) if k not in skip and a.get(k) != b.get(k))


def ids(followers: Iterable[FollowerConfig]) -> list[str]:
    return [f.id for f in followers]
