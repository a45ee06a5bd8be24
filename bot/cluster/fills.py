"""Publishing a lead's fills to its stream, fenced by the feed lease (docs/cluster.md).

One Lua script does it all atomically, so no interleaving of two feeds can break it:
1. the lease key must still hold the caller's token (lease.py): a feed that lost its lease, even
   one that does not know yet, publishes nothing;
2. a trade id already published for this lead is dropped (a sorted set of trade ids scored by
   trade time, trimmed to the stream's retention), so a fill is never published twice, whether the
   same feed sees it on the websocket and in a backfill or a new holder backfills over the old one;
3. XADD with MAXLEN ~ bounds the stream;
4. the lead's per-symbol cursor (newest trade time published) moves forward, never back: where a
   feed that takes over starts its backfill.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.cluster.codec import encode
from bot.cluster.keys import Keys
from bot.core.types import LeadFill

if TYPE_CHECKING:
    from redis.asyncio import Redis

# KEYS: 1 lease, 2 stream, 3 seen trade ids, 4 cursor.
# ARGV: 1 token, 2 trade id, 3 maxlen, 4 trade time ms, 5 symbol, 6.. the entry's field/value pairs.
# Returns {0} fenced, {2} duplicate, {1, entry id} published.
PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
if redis.call('ZSCORE', KEYS[3], ARGV[2]) then return {2} end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', unpack(ARGV, 6))
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
local extra = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[3])
if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[3], 0, extra - 1) end
local prev = redis.call('HGET', KEYS[4], ARGV[5])
if (not prev) or tonumber(string.match(prev, '^(%d+)')) <= tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[4], ARGV[5], ARGV[4] .. ':' .. ARGV[2])
end
return {1, id}
"""


class Published(StrEnum):
    PUBLISHED = "published"
    DUPLICATE = "duplicate"  # this trade id is in the stream already
    FENCED = "fenced"  # the caller's lease is gone: nothing was written


@dataclass(frozen=True, slots=True)
class PublishResult:
    status: Published
    entry_id: str | None = None


@dataclass(frozen=True, slots=True)
class Cursor:
    ts_ms: int
    trade_id: str


class FillPublisher:
    """Appends one lead's fills to its stream under the caller's lease token."""

    def __init__(self, client: Redis, keys: Keys, lead: str, *, maxlen: int) -> None:
        self.client = client
        self.keys = keys
        self.lead = lead
        self.maxlen = maxlen
        self._publish = client.register_script(PUBLISH)

    async def publish(self, fill: LeadFill, *, token: str | None) -> PublishResult:
        if fill.lead != self.lead:
            raise ValueError(f"fill of lead {fill.lead!r} handed to the publisher of {self.lead!r}")
        if token is None:  # not holding the lease: nothing to ask Redis
            return PublishResult(Published.FENCED)
        epoch = int(token.partition(":")[0])
        fields = [part for pair in encode(fill, epoch=epoch).items() for part in pair]
        k = self.keys
        reply = await self._publish(
            keys=[k.lease(self.lead), k.stream(self.lead), k.seen(self.lead), k.cursor(self.lead)],
            args=[token, fill.trade_id, self.maxlen, fill.ts_ms, fill.symbol, *fields],
        )
        code = int(reply[0])
        if code == 1:
            entry = reply[1]
            return PublishResult(Published.PUBLISHED, entry.decode() if isinstance(entry, bytes) else entry)
        return PublishResult(Published.DUPLICATE if code == 2 else Published.FENCED)

    async def seed_cursors(self, since_ms: Mapping[str, int]) -> None:
        """For a symbol nothing was published for yet, start the backfill at `since_ms` (a feed's
        start snapshot): a symbol's first fills are then backfilled by whichever feed holds the
        lease next, even if the one that saw them died before publishing. Never moves a cursor."""
        for symbol, ts_ms in since_ms.items():
            await self.client.hsetnx(self.keys.cursor(self.lead), symbol, f"{ts_ms}:")

    async def cursors(self) -> dict[str, Cursor]:
        """Per symbol, the newest fill published for this lead (a new holder backfills from here)."""
        raw = await self.client.hgetall(self.keys.cursor(self.lead))
        out: dict[str, Cursor] = {}
        for symbol, value in raw.items():
            ts, _, trade_id = (value.decode() if isinstance(value, bytes) else value).partition(":")
            out[symbol.decode() if isinstance(symbol, bytes) else symbol] = Cursor(int(ts), trade_id)
        return out
