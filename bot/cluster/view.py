"""The cluster as Redis sees it, for `/status` and `copybot status` (docs/cluster.md, "What to
watch"): per lead, who holds the feed lease (epoch, ms left), the stream's length and newest entry,
the number of its newest entry and of the one its stored position state holds,
and per consumer group (follower partition) its backlog (lag: entries not yet delivered), pending
(delivered, not settled), and consumers with their pending count and idle time; the live shards.
Plain JSON-able data."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from bot.cluster.keys import Keys
from bot.cluster.lease import current_holder
from bot.cluster.registry import live_shards

if TYPE_CHECKING:
    from redis.asyncio import Redis


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def _groups(client: Redis, stream: str) -> list[dict[str, Any]]:
    groups = []
    for group in await client.xinfo_groups(stream):
        name = _text(group["name"])
        consumers = await client.xinfo_consumers(stream, name)
        groups.append(
            {
                "group": name,
                "lag": group.get("lag"),  # None when Redis cannot tell (after deletions)
                "pending": int(group["pending"]),
                "last_delivered": _text(group["last-delivered-id"]),
                "consumers": [
                    {"name": _text(c["name"]), "pending": int(c["pending"]), "idle_ms": int(c["idle"])}
                    for c in consumers
                ],
            }
        )
    return groups


async def lead_view(client: Redis, keys: Keys, lead: str) -> dict[str, Any]:
    lease = await current_holder(client, keys, lead)
    stream = keys.stream(lead)
    out: dict[str, Any] = {
        "lead": lead,
        "lease": None
        if lease is None
        else {"holder": lease.holder, "epoch": lease.epoch, "ttl_ms": lease.ttl_ms},
        "stream": {"length": 0, "last_entry": None},
        "groups": [],
        # the lead's stored position state: the newest entry's number and the one the state holds
        # (equal while a feed publishes; docs/cluster.md, "Lead positions")
        "state": None,
    }
    state = await client.hmget(keys.state(lead), ["seq", "doc_seq"])
    if state[0] is not None:
        out["state"] = {"seq": int(state[0]), "doc_seq": int(state[1]) if state[1] is not None else None}
    if await client.exists(stream):
        info = await client.xinfo_stream(stream)
        out["stream"] = {"length": int(info["length"]), "last_entry": _text(info["last-generated-id"])}
        out["groups"] = await _groups(client, stream)
    return out


async def cluster_view(
    client: Redis, keys: Keys, leads: Sequence[str], *, heartbeat_ttl_s: float
) -> dict[str, Any]:
    live = await live_shards(client, keys, ttl_s=heartbeat_ttl_s)
    return {"shards": live, "leads": [await lead_view(client, keys, lead) for lead in leads]}
