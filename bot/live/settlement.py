"""Which followers still owe a disposition for a lead fill: the shard role acknowledges a fill in
Redis only once every follower it serves has settled it (docs/cluster.md, "Delivery").

The engine's fan-out says which followers a fill went to (`submitted`); a follower's worker says
when it recorded what became of the fill (`disposed`: planned and its orders' outcomes known, at
target, deferred or denied; `FollowerRuntime.dispose`), which a failed batch does only after its
retry. A follower the fill never went to (it joined after, the fill was in the start snapshot or a
duplicate) owes nothing for it. Only the cluster's shard role turns this on; the single process
never pays for it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

# Trade ids remembered: enough for every fill a shard can have in flight; the oldest are forgotten
# first (a fill that old is settled or its follower is stuck, which the claim timeout reports).
_MAX_TRACKED = 50_000


@dataclass(eq=False, slots=True)
class _Waiter:
    left: set[str]  # the followers this waiter still waits for
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Settlements:
    """A disposal wakes only the waiters that wait for that follower, so a fan-out to N followers
    watched by P partitions costs O(N + P) per fill, not O(N x P)."""

    def __init__(self, *, max_tracked: int = _MAX_TRACKED) -> None:
        self._owed: OrderedDict[str, set[str]] = OrderedDict()  # trade id -> followers not yet settled
        self._waiters: dict[str, list[_Waiter]] = {}
        self.max_tracked = max_tracked

    def submitted(self, trade_id: str, followers: Iterable[str]) -> None:
        followers = set(followers)
        if not followers:
            return
        self._owed.setdefault(trade_id, set()).update(followers)
        while len(self._owed) > self.max_tracked:
            old, _ = self._owed.popitem(last=False)
            for waiter in self._waiters.get(old, ()):
                waiter.done.set()  # forgotten: the waiter re-reads and finds nothing owed

    def disposed(self, follower: str, trade_ids: Iterable[str]) -> None:
        for trade_id in trade_ids:
            owed = self._owed.get(trade_id)
            if owed is None or follower not in owed:
                continue
            owed.discard(follower)
            if not owed:
                del self._owed[trade_id]
            for waiter in self._waiters.get(trade_id, ()):
                if follower in waiter.left:
                    waiter.left.discard(follower)
                    if not waiter.left:
                        waiter.done.set()

    def forget(self, follower: str) -> None:
        """A follower no longer served here (it left, or its partition moved): it owes nothing."""
        for trade_id in [t for t, owed in self._owed.items() if follower in owed]:
            self.disposed(follower, [trade_id])

    def owed(self, trade_id: str, followers: Iterable[str]) -> set[str]:
        owed = self._owed.get(trade_id)
        return set() if owed is None else owed.intersection(followers)

    async def wait(
        self,
        trade_id: str,
        followers: Callable[[], Iterable[str]],
        *,
        timeout_s: float,
        excused: Callable[[str], bool] = lambda follower: False,
    ) -> bool:
        """True once none of `followers()` owes `trade_id`, not counting those `excused` (a HALTED
        follower whose failed batch is never retried); False after `timeout_s`. Both are read
        afresh at least every half second: they can change without a disposal."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            left = {f for f in self.owed(trade_id, followers()) if not excused(f)}
            if not left:
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            waiter = _Waiter(left)
            waiters = self._waiters.setdefault(trade_id, [])
            waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter.done.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass
            finally:
                waiters.remove(waiter)
                if not waiters and self._waiters.get(trade_id) is waiters:
                    del self._waiters[trade_id]
