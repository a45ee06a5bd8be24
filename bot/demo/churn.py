"""Followers coming and going during the demo: a third of the way into the lead's script one
follower joins, two thirds in one leaves, both through the daemon's runtime membership service, the
path of `copybot follower add` and `copybot follower remove` (validated as at start, its key and
account checked, admitted under the AUM cap, journaled, counted in AUM at once; no restart). The
leaver goes with `on_leave: close`: its copied positions are closed, then it is retired. The demo's
report says what each got and left, and the AUM flows show both (docs/aum.md)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from bot.aum.flow_report import flows_json
from bot.service.app import Daemon

ACTOR = "demo"
ON_LEAVE = "close"


@dataclass
class Churn:
    daemon: Daemon
    joiner: dict[str, Any]  # the followers[] entry of the follower that joins
    leaver: str
    started: float = field(default_factory=time.monotonic)
    joined: dict[str, Any] | None = None
    left: dict[str, Any] | None = None

    async def run(self, seconds: float) -> None:
        membership = self.daemon.membership
        engine = self.daemon.engine
        assert membership is not None, "the daemon is not running"
        assert engine is not None, "the daemon is not running"
        await asyncio.sleep(seconds / 3)
        added = await membership.add(self.joiner, ACTOR)
        self.joined = {
            "id": self.joiner["id"],
            "at_s": round(time.monotonic() - self.started, 1),
            "on_join": self.joiner["follows"][0].get("on_join", "copy_open"),
            "copied": added["copied"],
            "not_copied": added["not_copied"],
            "equity": added["equity"],
        }
        await asyncio.sleep(max(0.0, self.started + 2 * seconds / 3 - time.monotonic()))
        held = {s: str(q) for s, q in engine.followers[self.leaver].confirmed.items() if q}
        await membership.remove(self.leaver, ON_LEAVE, ACTOR)
        self.left = {
            "id": self.leaver,
            "at_s": round(time.monotonic() - self.started, 1),
            "on_leave": ON_LEAVE,
            "held_at_leave": held,
        }

    async def wait_retired(self, timeout: float) -> bool:
        """Until the leaver has closed what it held and its worker is retired."""
        engine = self.daemon.engine
        assert engine is not None
        deadline = time.monotonic() + timeout
        while self.leaver in engine.followers and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.leaver not in engine.followers

    def report(self, retired: bool, positions_after: dict[str, str]) -> dict[str, Any]:
        left = dict(self.left or {})
        left.update(retired=retired, positions_after=positions_after, flat=not positions_after)
        return {"joined": self.joined, "left": left}


async def run_flows(daemon: Daemon, lead: str, run_s: float) -> dict[str, Any]:
    """The lead's AUM over the whole run (`run_s` since before the daemon started): one period
    reaching back before the start, so the followers present at start are joins too, with every
    flow of the run."""
    aum, journal, engine = daemon.aum, daemon.journal, daemon.engine
    assert aum is not None
    assert journal is not None
    assert engine is not None
    aum.snapshot()  # the flows since the last pass, and the AUM now
    await journal.aflush()
    present = {lead_id: [f.id for f in engine.followers_of.get(lead_id, ())] for lead_id in engine.leads}
    report = flows_json(journal, now_ms=time.time_ns() // 1_000_000, period=f"{int(run_s) + 5}s", most=1,
                        present=present)  # fmt: skip
    block = report["leads"][lead]
    return {"lead": lead, **block["periods"][-1], "retention": block["retention"], "flows": block["recent"]}
