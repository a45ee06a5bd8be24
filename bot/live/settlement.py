"""Which followers still owe a disposition for a lead fill: the shard role acknowledges a fill in
Redis only once every follower it serves has settled it (docs/cluster.md, "Delivery").

The engine's fan-out says which followers a fill went to (`submitted`); a follower's worker says
when it recorded what became of the fill (`disposed`: planned and its orders' outcomes known, at
target, deferred or denied; bot.live.follower `_dispose`), which a failed batch does only after its
retry. A follower the fill never went to (it joined after, the fill was in the start snapshot or a
duplicate) owes nothing for it. Only the cluster's shard role turns this on; the single process
never pays for it.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Callable, Iterable

# Trade ids remembered: enough for every fill a shard can have in flight; the oldest are forgotten
# first (a fill that old is settled or its follower is stuck, which the claim timeout reports).
_MAX_TRACKED = 50_000


class Settlements:
    def __init__(self, *, max_tracked: int = _MAX_TRACKED) -> None:
        self._owed: OrderedDict[str, set[str]] = OrderedDict()  # trade id -> followers not yet settled
        self._changed: dict[str, asyncio.Event] = {}
        self.max_tracked = max_tracked

    def submitted(self, trade_id: str, followers: Iterable[str]) -> None:
        followers = set(followers)
        if not followers:
            return
        self._owed.setdefault(trade_id, set()).update(followers)
        while len(self._owed) > self.max_tracked:
            old, _ = self._owed.popitem(last=False)
            self._wake(old)

    def disposed(self, follower: str, trade_ids: Iterable[str]) -> None:
        for trade_id in trade_ids:
            owed = self._owed.get(trade_id)
            if owed is None or follower not in owed:
                continue
            owed.discard(follower)
            if not owed:
                del self._owed[trade_id]
            self._wake(trade_id)

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
        """True once none of `followers()` (re-read on every change) owes `trade_id`, not counting
        those `excused` (a HALTED follower whose failed batch is never retried); False after
        `timeout_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            left = [f for f in self.owed(trade_id, followers()) if not excused(f)]
            if not left:
                return True
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            event = self._changed.setdefault(trade_id, asyncio.Event())
            try:
                # re-checked at least every half second: `excused` can change without a disposal
                await asyncio.wait_for(event.wait(), min(remaining, 0.5))
            except TimeoutError:
                pass

    def _wake(self, trade_id: str) -> None:
        event = self._changed.pop(trade_id, None)
        if event is not None:
            event.set()
