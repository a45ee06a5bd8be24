"""The fenced lease of one lead's feed (docs/cluster.md, "The feed lease").

Two or more feed processes contend for one lead. The lease is one Redis key set with NX and an
expiry (PX); its value is "<epoch>:<holder>", where the epoch comes from a counter incremented on
every acquisition, inside the same script, so no two acquisitions ever share a token. The holder
renews it well inside its expiry with a compare-and-extend script (only while the value is still
its own token); a holder that cannot renew in time has lost it, and a standby's next attempt takes
it once it lapses.

The token fences publishing: `fills.FillPublisher` appends a fill only if the lease key still holds
the caller's token, checked in the same script as the append. A feed that lost its lease and does
not know it yet (partitioned, paused) therefore publishes nothing, whatever its local clock says.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from bot.cluster.keys import Keys
from bot.cluster.redis_client import raise_if_cancelled

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = structlog.get_logger(__name__)

# KEYS[1] lease, KEYS[2] epoch counter; ARGV[1] holder, ARGV[2] ttl ms. Returns the new epoch, or
# nil when somebody holds the lease.
ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
local epoch = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], epoch .. ':' .. ARGV[1], 'PX', ARGV[2])
return epoch
"""

# KEYS[1] lease; ARGV[1] token, ARGV[2] ttl ms. 1: extended; 0: not ours (lapsed or taken).
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# KEYS[1] lease; ARGV[1] token. Deletes the lease only while it is still ours.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True, slots=True)
class LeaseView:
    """Who holds a lead's lease, for status pages: epoch, holder, milliseconds left."""

    epoch: int
    holder: str
    ttl_ms: int


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def current_holder(client: Redis, keys: Keys, lead: str) -> LeaseView | None:
    async with client.pipeline(transaction=True) as pipe:
        pipe.get(keys.lease(lead))
        pipe.pttl(keys.lease(lead))
        value, ttl_ms = await pipe.execute()
    if value is None:
        return None
    epoch, _, holder = _text(value).partition(":")
    return LeaseView(int(epoch), holder, int(ttl_ms))


class FeedLease:
    """One process's claim on one lead's feed. `try_acquire`, `renew` and `release` are single
    steps (tests drive them directly); `hold` is the loop a feed runs: contend, then renew every
    `renew_every_s` while held, with `held_event` set exactly while it believes it holds the lease.

    `token` is what `FillPublisher.publish` presents; it is None while not held."""

    def __init__(
        self,
        client: Redis,
        keys: Keys,
        lead: str,
        holder: str,
        *,
        ttl_s: float,
        renew_every_s: float | None = None,
    ) -> None:
        if ":" in holder:
            raise ValueError("a lease holder's name cannot contain ':'")
        self.client = client
        self.keys = keys
        self.lead = lead
        self.holder = holder
        self.ttl_ms = max(1, int(ttl_s * 1000))
        self.renew_every_s = renew_every_s if renew_every_s is not None else ttl_s / 3
        self.epoch: int | None = None
        self.token: str | None = None
        self.held_event = asyncio.Event()
        # Local bound: past this monotonic time we assume the lease lapsed, even if Redis cannot
        # be asked. It starts from when the request was sent, so it never outlives the real one.
        self._valid_until = 0.0
        self._acquire = client.register_script(ACQUIRE)
        self._renew = client.register_script(RENEW)
        self._release = client.register_script(RELEASE)

    @property
    def held(self) -> bool:
        return self.token is not None and time.monotonic() < self._valid_until

    async def try_acquire(self) -> bool:
        sent = time.monotonic()
        epoch = await self._acquire(keys=[self.keys.lease(self.lead), self.keys.epoch(self.lead)],
                                    args=[self.holder, self.ttl_ms])  # fmt: skip
        if epoch is None:
            return False
        self.epoch = int(epoch)
        self.token = f"{self.epoch}:{self.holder}"
        self._valid_until = sent + self.ttl_ms / 1000
        self.held_event.set()
        log.info("lease_acquired", lead=self.lead, holder=self.holder, epoch=self.epoch)
        return True

    async def renew(self) -> bool:
        """Extend the lease if it is still ours; False (and no longer held) if it is not."""
        if self.token is None:
            return False
        sent = time.monotonic()
        extended = await self._renew(keys=[self.keys.lease(self.lead)], args=[self.token, self.ttl_ms])
        if int(extended) == 1:
            self._valid_until = sent + self.ttl_ms / 1000
            return True
        self._lose("taken_or_lapsed")
        return False

    async def release(self) -> None:
        """Give the lease up at once (a clean shutdown), so a standby need not wait for the expiry."""
        if self.token is not None:
            token = self.token
            self._lose("released")
            await self._release(keys=[self.keys.lease(self.lead)], args=[token])

    def _lose(self, why: str) -> None:
        if self.token is not None:
            log.warning("lease_lost", lead=self.lead, holder=self.holder, epoch=self.epoch, why=why)
        self.token = None
        self.held_event.clear()

    async def hold(self) -> None:
        """Contend for the lease and keep it while it can, forever (cancel to stop; the caller
        then calls `release`). A Redis error is logged and retried on the next tick; a holder that
        cannot renew before its local bound runs out counts the lease as lost."""
        from redis.exceptions import RedisError

        while True:
            raise_if_cancelled()
            try:
                if self.token is None:
                    await self.try_acquire()
                elif not await self.renew():
                    continue  # lost: contend again at once
            except (RedisError, OSError) as exc:
                raise_if_cancelled()
                log.warning("lease_redis_error", lead=self.lead, holder=self.holder, error=str(exc))
            if self.token is not None and not self.held:
                self._lose("renewal_overdue")
            await asyncio.sleep(self.renew_every_s)
