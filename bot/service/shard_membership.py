"""Reloading a cluster shard (SIGHUP, `systemctl reload copybot-shard@ID`; docs/cluster.md,
"Changing followers"): the single process's reload (bot/service/membership.py) on the followers of
the partitions this shard serves, with the file alone as the membership.

Every shard runs with the same file and is reloaded alike. Each applies the difference for the
partitions it serves: followers added join (checked, prepared, `on_join`, as in one process),
removed ones leave by their `on_leave`, changed settings apply; all or nothing, per shard. The new
member list goes to every partition, so one gained later prepares what the file now says. The
cluster side (which partitions, their locks, the status lines, the admission lock in Redis) is
bot/cluster/shard_members.py.

The AUM cap: a joiner is admitted after the followers of this shard and the follower capital every
other live shard serves (its status line, `cluster_aum`), under a per-lead lock in Redis held from
the check to this shard's own status line being written. The clip decided then is kept as the
joiner's sizing here: each shard's own cap passes (AumService.apply_cap) count its own followers.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from decimal import Decimal
from typing import Any

import structlog

from bot.aum.cap import capped_sizing
from bot.cluster.shard_members import AdmissionBusy, ShardMembers
from bot.config.models import AppConfig, FollowerConfig
from bot.core.errors import short
from bot.live.follower import FollowerRuntime
from bot.service.admission import Joiner, admit
from bot.service.cluster_role import cluster_aum
from bot.service.membership import Membership
from bot.service.roster import RosterError
from bot.service.wiring import follower_settings

log = structlog.get_logger("copybot.membership")


class ShardMembership(Membership):
    runtime_changes = False  # the file is the cluster's membership: no API changes on top of it

    def __init__(self, *args: Any, members: ShardMembers, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.members = members
        self._holding = False  # a reload holds every partition's lock
        self._admission: AsyncExitStack | None = None  # the reload's admission locks, if any

    # -- hooks of Membership ----------------------------------------------------------------------

    def _serves(self, follower_id: str) -> bool:
        return self.members.serves(follower_id)

    def _compared(self, running: frozenset[str]) -> frozenset[str]:
        # Every follower the cluster runs, wherever it runs: every shard refuses a change of a
        # fixed key alike, rather than only the one serving that follower.
        return frozenset(f.id for f in self.cfg.followers if f.enabled)

    async def _tick(self) -> None:
        self._forget_departed()

    async def _reload(self, new_file: AppConfig | None) -> dict[str, Any]:
        self._forget_departed()
        async with self.members.held(), AsyncExitStack() as admission:
            self._holding, self._admission = True, admission
            try:
                result = await super()._reload(new_file)
            finally:
                self._holding, self._admission = False, None
            self.members.set_members(f.id for f in self.cfg.followers if f.enabled)
            self.engine.follower_settings = follower_settings(self._with_leaving(self.cfg))  # later gains
            await self.members.publish()  # before the admission lock goes: the next check counts it
        log.info("shard_reloaded", shard=self.members.role.shard, **result)
        return result

    async def _admit(self, joiners: list[FollowerConfig], candidate: AppConfig) -> list[Joiner]:
        from redis.exceptions import RedisError

        assert self._admission is not None, "a shard admits followers only in a reload"
        leads = {f.lead for fcfg in joiners for f in fcfg.follows}
        try:
            await self._admission.enter_async_context(self.members.admission_lock(leads))
            statuses = await self.members.other_statuses()
        except AdmissionBusy as exc:
            raise RosterError(str(exc), 409) from None
        except (RedisError, OSError) as exc:
            raise RosterError(f"cluster: Redis did not answer while admitting followers: {short(exc)}",
                              503) from None  # fmt: skip
        elsewhere = {lead: Decimal(row["aum"]) for lead, row in cluster_aum(statuses).items()}
        admitted = await admit(self.engine, self.aum, joiners, candidate, elsewhere=elsewhere)
        for joiner in admitted:
            sizings = joiner.runtime.settings.sizings
            for admission in joiner.admissions:
                # Clipped for capital served elsewhere: this shard's own cap passes would not see
                # why. Made its sizing before the AUM service first sees it: its configured one.
                if admission.fraction < 1 and elsewhere.get(admission.lead, Decimal(0)) > 0:
                    sizings[admission.lead] = capped_sizing(sizings[admission.lead], admission)
        return admitted

    def _register(self, joiner: Joiner) -> None:
        super()._register(joiner)
        self.members.joined(joiner.cfg.id)

    async def _retire(self, follower: FollowerRuntime) -> None:
        if self._holding:
            await self._retire_here(follower)
            return
        async with self.members.lock_of(follower.id):  # not while its partition is released
            if self.engine.followers.get(follower.id) is follower:
                await self._retire_here(follower)

    # -- steps ------------------------------------------------------------------------------------

    async def _retire_here(self, follower: FollowerRuntime) -> None:
        await super()._retire(follower)
        self.members.left(follower.id)

    def _forget_departed(self) -> None:
        """Leavers whose partition this shard released before they had left: the release retired
        them (the new owner does not serve them: the file no longer lists them)."""
        for fid in [f for f in self.leaving if f not in self.engine.followers]:
            on_leave = self.leaving.pop(fid)
            self.leaving_cfg.pop(fid, None)
            self.aum.forget(fid)
            self._sync_engine_cfg()
            why = "its partition moved to another shard before it had left: its positions stay as they are"
            self._record(fid, "leave_interrupted", "daemon", {"on_leave": on_leave, "why": why})
            log.warning("follower_leave_interrupted", follower=fid, on_leave=on_leave, why=why)
