"""Shard assignment: followers map to fixed partitions, partitions to live shards by rendezvous
hashing; the same answer everywhere, only a leaving shard's partitions move, and they come back."""

from __future__ import annotations

from collections import Counter

import pytest

from bot.cluster.assignment import all_partitions, assign, owned_by, owner, partition_of

PARTITIONS = all_partitions(64)
SHARDS = ["shard-a", "shard-b", "shard-c", "shard-d"]


def test_a_followers_partition_is_fixed_across_processes_and_releases() -> None:
    # pinned values: changing the hash would move every follower to another partition on upgrade
    assert [partition_of(f, 64) for f in ("f1", "f2", "alice")] == ["p015", "p055", "p014"]
    assert assign(all_partitions(4), ["s1", "s2", "s3"]) == {
        "p000": "s1",
        "p001": "s2",
        "p002": "s1",
        "p003": "s3",
    }


def test_every_partition_has_one_live_owner_whatever_the_order() -> None:
    first = assign(PARTITIONS, SHARDS)
    assert set(first) == set(PARTITIONS)
    assert set(first.values()) <= set(SHARDS)
    assert assign(PARTITIONS, list(reversed(SHARDS)) + ["shard-a"]) == first
    load = Counter(first.values())
    assert all(8 <= load[s] <= 24 for s in SHARDS), load


def test_a_leaving_shard_moves_only_its_partitions_and_gets_them_back() -> None:
    before = assign(PARTITIONS, SHARDS)
    after = assign(PARTITIONS, [s for s in SHARDS if s != "shard-b"])
    moved = {p for p in PARTITIONS if before[p] != after[p]}
    assert moved == {p for p in PARTITIONS if before[p] == "shard-b"}
    assert moved
    assert "shard-b" not in after.values()
    assert assign(PARTITIONS, SHARDS) == before
    assert sorted(owned_by("shard-b", PARTITIONS, SHARDS)) == sorted(moved)


def test_no_shard_and_no_partition_are_errors() -> None:
    with pytest.raises(ValueError, match="no live shard"):
        owner("p000", [])
    with pytest.raises(ValueError, match="at least one partition"):
        partition_of("f1", 0)
