"""The Redis keys of one deployment, all under its `cluster.key_prefix` (docs/cluster.md, "Keys").
Every key of one lead shares the hash tag `{lead}`, so the publish script's keys stay in one slot
should the deployment move to Redis Cluster."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str = "copybot"

    def _lead(self, lead: str, what: str) -> str:
        return f"{self.prefix}:lead:{{{lead}}}:{what}"

    def lease(self, lead: str) -> str:
        """The feed lease: "<epoch>:<holder>" while held, with the lease's expiry."""
        return self._lead(lead, "lease")

    def epoch(self, lead: str) -> str:
        """The lease epoch counter, incremented by every acquisition; never expires."""
        return self._lead(lead, "epoch")

    def stream(self, lead: str) -> str:
        """The lead's fills, in publish order."""
        return self._lead(lead, "fills")

    def seen(self, lead: str) -> str:
        """Trade ids already published (sorted set scored by trade time), trimmed with the stream."""
        return self._lead(lead, "seen")

    def admission_lock(self, lead: str) -> str:
        """Held (SET NX PX) by the shard checking a joiner against the lead's AUM cap and admitting
        it, so two shards never both count the same room (bot/cluster/shard_members.py)."""
        return self._lead(lead, "admission")

    def cursor(self, lead: str) -> str:
        """Per symbol, "<ts_ms>:<trade_id>" of the newest fill published: where a feed that takes
        over starts its backfill."""
        return self._lead(lead, "cursor")

    def state(self, lead: str) -> str:
        """The lead's position state (hash): `seq`, the number of the newest stream entry; `doc`,
        the state (bot/cluster/lead_doc.py) as of entry `doc_seq` / `doc_entry`. Written only by the
        publish and snapshot scripts, in the same step as the entry (fills.py)."""
        return self._lead(lead, "state")

    def partition_holder(self, partition: str) -> str:
        """The shard whose engine has the partition's followers registered, from before it reads
        the partition until they are retired: a shard gaining the partition waits for it to go."""
        return f"{self.prefix}:partition:{partition}:holder"

    def shard_status(self, shard: str) -> str:
        """A shard's own status line for the cluster view (JSON), expiring when it stops beating."""
        return f"{self.prefix}:shard:{shard}:status"

    def shards(self) -> str:
        """Shard heartbeats: a sorted set of shard ids scored by Redis time of the last beat."""
        return f"{self.prefix}:shards"
