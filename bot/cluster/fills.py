"""Publishing a lead's fills to its stream, fenced by the feed lease (docs/cluster.md).

One Lua script does it all atomically, so no interleaving of two feeds can break it:
1. the lease key must still hold the caller's token (lease.py): a feed that lost its lease, even
   one that does not know yet, publishes nothing;
2. a trade id already published for this lead is dropped (a sorted set of trade ids scored by
   trade time, trimmed to the stream's retention), so a fill is never published twice, whether the
   same feed sees it on the websocket and in a backfill or a new holder backfills over the old one;
3. XADD with MAXLEN ~ bounds the stream;
4. the lead's per-symbol cursor (newest trade time published) moves forward, never back: where a
   feed that takes over starts its backfill;
5. the entry gets the next number of the lead's stream (`seq`), and the lead's position state
   after it (computed by the feed, bot/cluster/lead_book.py) is stored with that number, so the
   state a shard starts from names exactly the entries it holds (docs/cluster.md, "Lead positions").

A snapshot entry (the snapshot script) is fenced and numbered the same way and replaces the state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING

from bot.cluster.codec import encode, snapshot_fields
from bot.cluster.keys import Keys
from bot.core.types import LeadFill

if TYPE_CHECKING:
    from redis.asyncio import Redis

# KEYS: 1 lease, 2 stream, 3 seen trade ids, 4 cursor, 5 state.
# ARGV: 1 token, 2 trade id, 3 maxlen, 4 trade time ms, 5 symbol, 6 the lead state after this fill
# ('' to leave the stored state as it is), 7.. the entry's field/value pairs.
# Returns {0} fenced, {2} duplicate, {1, entry id, seq} published.
PUBLISH = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
if redis.call('ZSCORE', KEYS[3], ARGV[2]) then return {2} end
local seq = redis.call('HINCRBY', KEYS[5], 'seq', 1)
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'seq', seq, unpack(ARGV, 7))
if ARGV[6] ~= '' then redis.call('HSET', KEYS[5], 'doc', ARGV[6], 'doc_seq', seq, 'doc_entry', id) end
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
local extra = redis.call('ZCARD', KEYS[3]) - tonumber(ARGV[3])
if extra > 0 then redis.call('ZREMRANGEBYRANK', KEYS[3], 0, extra - 1) end
local prev = redis.call('HGET', KEYS[4], ARGV[5])
if (not prev) or tonumber(string.match(prev, '^(%d+)')) <= tonumber(ARGV[4]) then
  redis.call('HSET', KEYS[4], ARGV[5], ARGV[4] .. ':' .. ARGV[2])
end
return {1, id, seq}
"""

# KEYS: 1 lease, 2 stream, 3 state. ARGV: 1 token, 2 maxlen, 3 the state, 4.. field/value pairs.
# Returns {0} fenced, {1, entry id, seq} published.
SNAPSHOT = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0} end
local seq = redis.call('HINCRBY', KEYS[3], 'seq', 1)
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'seq', seq, 'doc', ARGV[3],
                      unpack(ARGV, 4))
redis.call('HSET', KEYS[3], 'doc', ARGV[3], 'doc_seq', seq, 'doc_entry', id)
return {1, id, seq}
"""


class Published(StrEnum):
    PUBLISHED = "published"
    DUPLICATE = "duplicate"  # this trade id is in the stream already
    FENCED = "fenced"  # the caller's lease is gone: nothing was written


@dataclass(frozen=True, slots=True)
class PublishResult:
    status: Published
    entry_id: str | None = None
    seq: int | None = None


@dataclass(frozen=True, slots=True)
class StoredState:
    """The lead's state as stored with the stream: `doc` (LeadDoc JSON) holds every entry up to
    number `doc_seq` (id `doc_entry`); `seq` is the newest entry's number."""

    doc: str
    doc_seq: int
    doc_entry: str
    seq: int


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
        self._snapshot = client.register_script(SNAPSHOT)

    async def publish(
        self,
        fill: LeadFill,
        *,
        token: str | None,
        state: str = "",
        lead_equity: Decimal | None = None,
    ) -> PublishResult:
        """Append `fill`; `state`: the lead's state once it is applied (LeadDoc JSON), stored with
        the entry if it is published."""
        if fill.lead != self.lead:
            raise ValueError(f"fill of lead {fill.lead!r} handed to the publisher of {self.lead!r}")
        if token is None:  # not holding the lease: nothing to ask Redis
            return PublishResult(Published.FENCED)
        epoch = int(token.partition(":")[0])
        entry = encode(fill, epoch=epoch, lead_equity=lead_equity)
        fields = [part for pair in entry.items() for part in pair]
        k = self.keys
        reply = await self._publish(
            keys=[k.lease(self.lead), k.stream(self.lead), k.seen(self.lead), k.cursor(self.lead),
                  k.state(self.lead)],
            args=[token, fill.trade_id, self.maxlen, fill.ts_ms, fill.symbol, state, *fields],
        )  # fmt: skip
        return _result(reply, duplicate_code=2)

    async def publish_snapshot(self, state: str, *, token: str | None) -> PublishResult:
        """Append a snapshot entry carrying `state` (LeadDoc JSON) and store it as the lead's state."""
        if token is None:
            return PublishResult(Published.FENCED)
        epoch = int(token.partition(":")[0])
        fields = [part for pair in snapshot_fields(self.lead, epoch=epoch).items() for part in pair]
        k = self.keys
        reply = await self._snapshot(
            keys=[k.lease(self.lead), k.stream(self.lead), k.state(self.lead)],
            args=[token, self.maxlen, state, *fields],
        )
        return _result(reply, duplicate_code=None)

    async def state(self) -> StoredState | None:
        """The lead's stored state, None before any feed stored one."""
        return await read_state(self.client, self.keys, self.lead)

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


async def read_state(client: Redis, keys: Keys, lead: str) -> StoredState | None:
    raw = await client.hgetall(keys.state(lead))
    fields = {_text(k): _text(v) for k, v in raw.items()}
    if "doc" not in fields:
        return None
    return StoredState(fields["doc"], int(fields["doc_seq"]), fields["doc_entry"], int(fields.get("seq", 0)))


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _result(reply: list[object], *, duplicate_code: int | None) -> PublishResult:
    code = int(str(reply[0]))
    if code == 1:
        entry = reply[1]
        return PublishResult(
            Published.PUBLISHED,
            entry.decode() if isinstance(entry, bytes) else str(entry),
            int(str(reply[2])),
        )
    return PublishResult(Published.DUPLICATE if code == duplicate_code else Published.FENCED)
