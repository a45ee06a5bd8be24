"""Which shard serves which followers (docs/cluster.md, "Assignment").

Followers are hashed onto a fixed number of partitions (`partition_of`), so a follower's partition
never changes while shards come and go; each partition is one consumer group on every lead stream.
Partitions are spread over the live shards by rendezvous hashing (`assign`): every shard computes the
same answer from the same list, a shard that leaves gives up only its own partitions (each to the
shard that ranks next for it) and gets exactly those back when it returns. The hashes are blake2b of
the names, stable across processes, hosts and releases (Python's `hash()` is salted per process).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence


def _h(*parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def partition_name(index: int) -> str:
    return f"p{index:03d}"


def partition_of(follower_id: str, partitions: int) -> str:
    if partitions < 1:
        raise ValueError("at least one partition")
    return partition_name(_h("follower", follower_id) % partitions)


def all_partitions(partitions: int) -> list[str]:
    return [partition_name(i) for i in range(partitions)]


def owner(partition: str, shards: Iterable[str]) -> str:
    """The live shard that ranks highest for this partition."""
    ranked = max(((_h("rank", partition, shard), shard) for shard in shards), default=None)
    if ranked is None:
        raise ValueError("no live shard")
    return ranked[1]


def assign(partitions: Sequence[str], shards: Iterable[str]) -> dict[str, str]:
    live = sorted(set(shards))
    return {p: owner(p, live) for p in partitions}


def owned_by(shard: str, partitions: Sequence[str], shards: Iterable[str]) -> list[str]:
    return [p for p, s in assign(partitions, shards).items() if s == shard]
