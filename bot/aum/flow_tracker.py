"""Turning what the AUM service observes into journaled flows (bot.aum.flows, docs/aum.md).

The tracker keeps each (lead, follower)'s capital as last observed. At every observation (after a
membership change, after a cap pass, and once a second in the AUM service's loop, which catches a
halt or a resume) it compares the capital now with that, both at the current equity
(`capital_flows`), and journals each difference as a flow with who caused it. At the first
observation of a process the baseline is the journal's last AUM sample per lead: the followers the
daemon counted when it last ran. A follower not in it is a join (actor `start`, every follower on
the first run ever), one gone from it a leave; what the others' capital did while the daemon was
stopped is performance.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from bot.aum.cap import Admission
from bot.aum.definition import FollowerCapital
from bot.aum.flows import Before, Flow, FlowKind, Key, capital_flows
from bot.aum.ports import FlowJournal
from bot.journal.flows import FlowRow


def flow_from_row(row: FlowRow) -> Flow:
    return Flow(row.ts, row.lead, row.follower, FlowKind(row.kind), row.amount, row.actor, row.detail)


class FlowTracker:
    def __init__(self, journal: FlowJournal) -> None:
        self.journal = journal
        self._before: dict[Key, Before] | None = None
        # Keys whose sizing the cap pass rewrote since the last observation: their change is `cap`.
        self.capped: set[Key] = set()

    def observe(
        self,
        capitals: Mapping[Key, FollowerCapital],
        equity: Mapping[str, Decimal],
        now_ms: int,
        actor: str,
        admissions: Mapping[Key, Admission],
    ) -> list[Flow]:
        before = self._before
        if before is None:
            before = {
                (p.lead, f): amount for p in self.journal.latest_aum() for f, amount in p.detail.items()
            }
            actor = "start"
        flows = []
        for key, kind, amount in capital_flows(before, capitals, equity, capped=self.capped):
            detail = None
            adm = admissions.get((key[1], key[0]))  # the service keys them (follower, lead)
            if kind in (FlowKind.JOIN, FlowKind.CAP) and adm is not None and adm.fraction < 1:
                detail = {"requested": str(adm.requested), "admitted": str(adm.admitted),
                          "fraction": str(adm.fraction), "reason": adm.reason}  # fmt: skip
            flows.append(Flow(now_ms, key[0], key[1], kind, amount, actor, detail))
        self._before = dict(capitals)
        self.capped.clear()
        for f in flows:
            self.journal.record_flow(f.ts, f.lead, f.follower, f.kind.value, f.amount, f.actor, f.detail)
        return flows
