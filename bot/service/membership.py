"""Runtime membership of the daemon: add, pause, resume, remove a follower, change its sizing or
caps, and reload the config file (SIGHUP), without a restart.

Every change is validated by the config models exactly as at start (bot.service.roster); a
refused change changes nothing, and a reload is all or nothing. A joiner's key and account are
checked before it is admitted (bot.live.membership.prepare_joiner), the lead's AUM cap admits it
after the current followers or refuses it (bot.aum.service.AumService.preview_join), and it is fed
lead fills only once it is registered. Each change is journaled with who, when and what
(`membership_changes`), the AUM service sees it at once, and an API change outlives a restart by
the rule of bot.service.roster. Changes are serialized by one lock: one at a time.

A cluster shard runs the same logic on the followers of the partitions it serves, with the file
alone as the membership (bot/service/shard_membership.py overrides the hooks marked below).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from bot.aum.service import AumService
from bot.config.models import AppConfig, ConfigError, FollowerConfig
from bot.core.types import TradingState
from bot.journal.store import Journal
from bot.live import membership as live
from bot.live.engine import Engine
from bot.live.follower import FollowerRuntime
from bot.service import roster
from bot.service.admission import Joiner, admit
from bot.service.roster import RosterError
from bot.service.wiring import follower_settings

log = structlog.get_logger("copybot.membership")

DEPARTURE_POLL_S = 0.2


class Membership:
    # Runtime changes (API) journaled and re-applied on top of the file (the rule of
    # bot.service.roster). A cluster shard has none: the file is the cluster's membership.
    runtime_changes = True

    def __init__(
        self,
        engine: Engine,
        aum: AumService,
        journal: Journal,
        file_cfg: AppConfig,
        effective: roster.Effective,
        *,
        load_file: Callable[[], AppConfig] | None = None,
        aum_settings: Callable[[AppConfig], Any] | None = None,
    ) -> None:
        self.engine = engine
        self.aum = aum
        self.journal = journal
        self.file_cfg = file_cfg
        self.cfg = effective.cfg  # the followers the daemon should run, without those leaving
        self.load_file = load_file
        self.aum_settings = aum_settings
        self.lock = asyncio.Lock()
        self.leaving: dict[str, str] = {}  # follower -> on_leave, until retired
        self.leaving_cfg: dict[str, FollowerConfig] = {}  # their blocks: the pipeline still reads them
        self.reload_requested = asyncio.Event()
        self.last_reload: dict[str, Any] | None = None

    # -- start ------------------------------------------------------------------------------------

    def restore(self, effective: roster.Effective) -> None:
        """Right after engine.start(), before any fill is processed: holds come back, followers that
        were leaving go on leaving, and superseded runtime changes are dropped with a note."""
        for follower in self.engine.followers.values():
            follower.holds.update(self.journal.holds(follower.id))
            follower.on_hold_cleared = self._hold_cleared
        for row in effective.superseded:
            self.journal.drop_override(row.follower)
            self._record(
                row.follower,
                "override_superseded",
                "start",
                {
                    "runtime_change": row.action,
                    "by": row.actor,
                    "at": row.updated_ts,
                    "why": "the config file changed this follower since: the file wins",
                },
            )
        for fid, on_leave in effective.leaving.items():
            leaver = self.engine.followers.get(fid)
            if leaver is not None:
                self.leaving_cfg[fid] = self.cfg.follower(fid)
                self.cfg = roster.checked(
                    self.cfg, [roster.block(f) for f in self.cfg.followers if f.id != fid], self.cfg.source
                )
                self.leaving[fid] = on_leave
                live.start_leaving(self.engine, leaver, on_leave)

    # -- API changes ------------------------------------------------------------------------------

    async def add(self, new: dict[str, Any], actor: str) -> dict[str, Any]:
        async with self.lock:
            candidate = roster.with_added(self.cfg, new)
            fcfg = candidate.follower(str(new["id"]))
            if fcfg.id in self.engine.followers:
                raise RosterError(f"follower.id: {fcfg.id!r} is still leaving; wait until it has left", 409)
            if not fcfg.enabled:
                raise RosterError("follower.enabled: a follower added at run time must be enabled")
            (joiner,) = await self._admit([fcfg], self._with_leaving(candidate))
            self._register(joiner)
            self.cfg = candidate
            self._sync_engine_cfg()
            self.journal.save_override(
                fcfg.id, "set", roster.block(fcfg), roster.fingerprint(self.file_cfg, fcfg.id), actor
            )
            detail = self._join_detail(joiner)
            self._record(fcfg.id, "add", actor, detail)
            self._aum_changed(actor)
            return {"ok": True, "follower": fcfg.id, **detail}

    async def set(self, follower_id: str, changes: dict[str, Any], actor: str) -> dict[str, Any]:
        async with self.lock:
            self._running(follower_id)
            candidate = roster.with_changed(self.cfg, follower_id, changes)
            fcfg = candidate.follower(follower_id)
            self._apply_settings(candidate, [follower_id])
            self.cfg = candidate
            self._sync_engine_cfg()
            self.journal.save_override(
                follower_id, "set", roster.block(fcfg), roster.fingerprint(self.file_cfg, follower_id), actor
            )
            self._record(follower_id, "set", actor, {"changes": changes})
            self._aum_changed(actor)
            return {"ok": True, "follower": follower_id, "changes": changes}

    async def pause(self, follower_id: str, actor: str, reason: str | None = None) -> dict[str, Any]:
        return await self._state(follower_id, TradingState.REDUCE_ONLY, "pause", actor, reason)

    async def resume(self, follower_id: str, actor: str, reason: str | None = None) -> dict[str, Any]:
        return await self._state(follower_id, TradingState.ACTIVE, "resume", actor, reason)

    async def remove(self, follower_id: str, on_leave: str | None, actor: str) -> dict[str, Any]:
        async with self.lock:
            self._running(follower_id)
            fcfg = self.cfg.follower(follower_id)
            policy = roster.leave_policy(fcfg, on_leave)
            await self._leave(fcfg, policy, actor)
            self._aum_changed(actor)
            return {
                "ok": True,
                "follower": follower_id,
                "on_leave": policy,
                "left": follower_id not in self.engine.followers,
            }

    # -- reload -----------------------------------------------------------------------------------

    async def reload(self, new_file: AppConfig | None = None, actor: str = "reload") -> dict[str, Any]:
        """Apply the difference between the running followers and the file (with the runtime
        changes still valid), all or nothing."""
        async with self.lock:
            try:
                result = await self._reload(new_file)
            except (RosterError, ConfigError) as exc:
                detail = {"refused": str(exc)}
                self._record("*", "reload_refused", actor, detail)
                self.engine.alert("reload_refused", "config", detail)
                log.error("reload_refused", error=str(exc))
                self.last_reload = {"ok": False, **detail}
                raise RosterError(str(exc), getattr(exc, "status", 400)) from exc
            self._record("*", "reload", actor, result)
            self.last_reload = {"ok": True, **result}
            return self.last_reload

    async def _reload(self, new_file: AppConfig | None) -> dict[str, Any]:
        if new_file is None:
            if self.load_file is None:
                raise RosterError("no config file to reload (the daemon was started without one)")
            new_file = self.load_file()
        sections = roster.section_differences(self.file_cfg, new_file)
        if sections:
            raise RosterError(
                f"{', '.join(sections)}: changed in {new_file.source}; a reload applies only "
                f"{' and '.join(roster.RELOADABLE_SECTIONS)}, the rest needs a restart"
            )
        await self.journal.aflush()  # overrides written a moment ago are still in the writer's queue
        eff = roster.effective(new_file, self.journal.overrides() if self.runtime_changes else {})
        running = {fid for fid in self.engine.followers if fid not in self.leaving}
        enabled = {f.id: f for f in eff.cfg.followers if f.enabled}
        wanted = {fid: f for fid, f in enabled.items() if self._serves(fid)}
        added = [f for fid, f in wanted.items() if fid not in running and fid not in self.leaving]
        removed = sorted(running - set(wanted))
        changed = [
            fid
            for fid in sorted(running & set(wanted))
            if roster.block(self.cfg.follower(fid)) != roster.block(wanted[fid])
        ]
        for fid in sorted(self._compared(frozenset(running)) & enabled.keys()):
            fixed = roster.fixed_differences(self.cfg.follower(fid), enabled[fid])
            if fixed:
                index = (
                    roster.ids(new_file.followers).index(fid)
                    if fid in roster.ids(new_file.followers)
                    else "?"
                )
                raise RosterError(
                    f"{new_file.source}: followers[{index}].{fixed[0]}: cannot change while "
                    f"follower {fid!r} runs; remove it (reload), then add it again"
                )
        # The admission puts its candidate in engine.cfg while it waits on the venue; the followers
        # this reload removes go on copying meanwhile (they leave below), so the candidate keeps them.
        staying = [self.cfg.follower(fid) for fid in removed]
        joiners = await self._admit(added, self._with_leaving(eff.cfg, staying)) if added else []
        # Nothing can fail past this point: the change is applied whole.
        old_cfg = self.cfg
        self.file_cfg, self.cfg = new_file, eff.cfg
        for row in eff.superseded:
            self.journal.drop_override(row.follower)
            self._record(
                row.follower,
                "override_superseded",
                "reload",
                {
                    "runtime_change": row.action,
                    "by": row.actor,
                    "at": row.updated_ts,
                    "why": "the config file changed this follower since: the file wins",
                },
            )
        for fid in removed:
            fcfg = old_cfg.follower(fid)
            await self._leave(fcfg, roster.leave_policy(fcfg, None), "reload")
        self._apply_settings(eff.cfg, changed)
        for fid in changed:
            self._record(fid, "set", "reload", {"from_file": new_file.source})
        for joiner in joiners:
            self._register(joiner)
            self._record(joiner.cfg.id, "add", "reload", self._join_detail(joiner))
        self._sync_engine_cfg()
        if self.aum_settings is not None:
            self.aum.settings = self.aum_settings(self.cfg)
        self._aum_changed("reload")
        return {
            "added": [j.cfg.id for j in joiners],
            "removed": removed,
            "changed": changed,
            "superseded": [r.follower for r in eff.superseded],
        }

    # -- the supervised loop ----------------------------------------------------------------------

    def request_reload(self) -> None:
        """SIGHUP: the loop below reloads (a signal handler must not await)."""
        self.reload_requested.set()

    async def run(self) -> None:
        """Reload on request, and retire leavers once they are flat and idle."""
        while True:
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                try:
                    await self.reload()
                except RosterError:
                    pass  # journaled, alerted and logged by reload()
            await self._tick()
            for fid in [f for f in self.leaving if f in self.engine.followers]:
                follower = self.engine.followers[fid]
                if live.finished(follower):
                    async with self.lock:
                        await self._retire(follower)
            await asyncio.sleep(DEPARTURE_POLL_S)

    # -- hooks of a cluster shard (bot/service/shard_membership.py) ---------------------------

    def _serves(self, follower_id: str) -> bool:
        """Whether this process runs `follower_id` of the config (one process: every one)."""
        return True

    def _compared(self, running: frozenset[str]) -> frozenset[str]:
        """Followers whose fixed keys (roster.FIXED_KEYS) a reload checks: those running here."""
        return running

    async def _tick(self) -> None:
        """Each round of `run`, before leavers are retired."""

    # -- steps ------------------------------------------------------------------------------------

    async def _admit(self, joiners: list[FollowerConfig], candidate: AppConfig) -> list[Joiner]:
        return await admit(self.engine, self.aum, joiners, candidate)

    def _register(self, joiner: Joiner) -> None:
        live.register(self.engine, joiner.runtime, joiner.plan, self._hold_cleared)
        for (lead, symbol), reason in joiner.plan.holds.items():
            self.journal.set_hold(joiner.cfg.id, lead, symbol, reason)

    async def _leave(self, fcfg: FollowerConfig, policy: str, actor: str) -> None:
        """Start `fcfg` leaving by `policy`; journaled so that a restart before it has left goes on
        with it (the fingerprint is of the file as it is now: absent after a reload removed it)."""
        follower = self.engine.followers[fcfg.id]
        self.leaving[fcfg.id] = policy
        self.leaving_cfg[fcfg.id] = fcfg
        self.cfg = roster.checked(
            self.cfg, [roster.block(f) for f in self.cfg.followers if f.id != fcfg.id], self.cfg.source
        )
        live.start_leaving(self.engine, follower, policy)
        self.aum.observe_flows(actor=actor)  # it stops counting now, whatever it still trades
        if self.runtime_changes:
            self.journal.save_override(
                fcfg.id,
                "leave",
                roster.block(fcfg),
                roster.fingerprint(self.file_cfg, fcfg.id),
                actor,
                on_leave=policy,
            )
        self._record(
            fcfg.id,
            "leave",
            actor,
            {"on_leave": policy, "positions": {s: str(q) for s, q in follower.confirmed.items() if q}},
        )
        if policy == "keep" or live.finished(follower):
            await self._retire(follower)  # keep: once its in-flight work is done (bounded)

    async def _retire(self, follower: FollowerRuntime) -> None:
        on_leave = self.leaving.pop(follower.id, "keep")
        self.leaving_cfg.pop(follower.id, None)
        drained = await live.retire(self.engine, follower, self.engine.cfg.executor.drain_timeout_s)
        for lead, symbol in list(follower.holds):
            self.journal.clear_hold(follower.id, lead, symbol)
        if self.runtime_changes:
            await self.journal.aflush()  # the `leave` override _leave just queued
            row = self.journal.overrides().get(follower.id)
            if row is not None and row.action == "leave":
                self.journal.save_override(follower.id, "remove", None, row.file_hash, row.actor)
        self.aum.forget(follower.id)
        self._sync_engine_cfg()
        self._record(
            follower.id,
            "remove",
            "daemon",
            {
                "on_leave": on_leave,
                "drained": drained,
                "positions_left": {s: str(q) for s, q in follower.confirmed.items() if q},
            },
        )

    async def _state(
        self, follower_id: str, state: TradingState, action: str, actor: str, reason: str | None
    ) -> dict[str, Any]:
        async with self.lock:
            self._running(follower_id)
            text = f"operator: {action} by {actor}" + (f": {reason}" if reason else "")
            change = self.engine.set_state(state, text, follower_id)
            self._record(follower_id, action, actor, {"state": change.after.value, "reason": reason})
            self._aum_changed(actor)
            return {"ok": change.after is state, "follower": follower_id, "state": change.after.value}

    def _apply_settings(self, candidate: AppConfig, follower_ids: list[str]) -> None:
        settings = follower_settings(candidate)
        for fid in follower_ids:
            self.engine.followers[fid].settings = settings[fid]
            self.aum.forget(fid)

    def _with_leaving(self, cfg: AppConfig, also: list[FollowerConfig] | None = None) -> AppConfig:
        """`cfg` plus the blocks of followers still leaving, and of `also` (followers about to
        leave): the pipeline reads their config while they run."""
        present = {f.id for f in cfg.followers}
        others = {**self.leaving_cfg, **{f.id: f for f in also or []}}
        extra = [roster.block(f) for fid, f in others.items() if fid not in present]
        return (
            roster.checked(cfg, [*(roster.block(f) for f in cfg.followers), *extra], cfg.source)
            if extra
            else cfg
        )

    def _sync_engine_cfg(self) -> None:
        self.engine.cfg = self._with_leaving(self.cfg)

    def _running(self, follower_id: str) -> None:
        if follower_id not in self.engine.followers or follower_id in self.leaving:
            raise RosterError(f"follower: no running follower {follower_id!r}", 404)

    def _hold_cleared(self, follower: FollowerRuntime, lead: str, symbol: str) -> None:
        self.journal.clear_hold(follower.id, lead, symbol)
        log.info("hold_cleared", follower=follower.id, lead=lead, symbol=symbol)

    def _join_detail(self, joiner: Joiner) -> dict[str, Any]:
        clipped = {a.lead: a.reason for a in joiner.admissions if a.fraction < 1}
        return {**joiner.plan.report(), "aum_cap": clipped, "equity": str(joiner.runtime.balance.equity)}

    def _aum_changed(self, actor: str) -> None:
        """The AUM service counts the change at once: the cap pass, the flows (bot.aum.flows) and
        a history point."""
        self.aum.apply_cap()
        self.aum.snapshot(actor=actor)

    def _record(self, follower: str, action: str, actor: str, detail: dict[str, Any]) -> None:
        self.journal.record_membership(follower, action, actor, detail)
        log.info("membership_changed", follower=follower, action=action, actor=actor)
