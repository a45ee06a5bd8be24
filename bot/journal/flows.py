"""The journal's record of AUM flows (schema v6): every change of a lead's AUM that is not mark to
market, with the amount it moved the AUM by at that moment (bot.aum.flows, docs/aum.md). Mixed into
bot.journal.store.Journal; the SQL stays in bot/journal."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from bot.core.redaction import redact_text
from bot.journal.schema import AumPoint, aum_point_from_row
from bot.journal.writer import JournalBase


@dataclass(frozen=True, slots=True)
class FlowRow:
    ts: int
    lead: str
    follower: str
    kind: str  # bot.aum.flows.FlowKind value
    amount: Decimal
    actor: str
    detail: dict[str, Any] | None


class FlowRecords(JournalBase):
    """Methods of Journal (bot.journal.store) for AUM flows."""

    def record_flow(
        self,
        ts: int,
        lead: str,
        follower: str,
        kind: str,
        amount: Decimal,
        actor: str,
        detail: Mapping[str, Any] | None = None,
    ) -> None:
        text = None if detail is None else redact_text(json.dumps(dict(detail), default=str, sort_keys=True))
        self._put(
            "INSERT INTO aum_flows(ts, lead, follower, kind, amount, actor, detail) VALUES (?,?,?,?,?,?,?)",
            (ts, lead, follower, kind, str(amount), redact_text(actor), text),
        )

    def aum_flows(
        self, lead: str | None = None, since: int | None = None, kinds: tuple[str, ...] | None = None
    ) -> list[FlowRow]:
        """In time order (then in the order they were recorded); `kinds` to read only those."""
        rows = self._read(
            "SELECT ts, lead, follower, kind, amount, actor, detail FROM aum_flows"
            " WHERE (? IS NULL OR lead = ?) AND ts >= ? AND (? IS NULL OR instr(?, ',' || kind || ',') > 0)"
            " ORDER BY ts, id",
            (lead, lead, since if since is not None else -1, kinds and 1, "," + ",".join(kinds or ()) + ","),
        )
        return [
            FlowRow(r[0], r[1], r[2], r[3], Decimal(r[4]), r[5], json.loads(r[6]) if r[6] else None)
            for r in rows
        ]

    def latest_aum(self) -> list[AumPoint]:
        """Each lead's last AUM sample (what it counted when the daemon last ran)."""
        rows = self._read(
            "SELECT h.ts, h.lead, h.aum, h.followers, h.equity_json FROM aum_history h"
            " JOIN (SELECT lead, MAX(ts) AS ts FROM aum_history GROUP BY lead) m"
            " ON h.lead = m.lead AND h.ts = m.ts ORDER BY h.lead, h.rowid"
        )
        latest: dict[str, AumPoint] = {}
        for r in rows:
            latest[r[1]] = aum_point_from_row(r)  # the last written wins at a shared ts
        return list(latest.values())

    def aum_leads(self) -> list[str]:
        """Every lead with an AUM sample or a flow (a scan: for the offline report)."""
        rows = self._read("SELECT lead FROM aum_history UNION SELECT lead FROM aum_flows ORDER BY 1")
        return [r[0] for r in rows]

    def aum_sample_before(self, lead: str, ts: int) -> AumPoint | None:
        """The lead's last AUM sample at or before `ts`."""
        rows = self._read(
            "SELECT ts, lead, aum, followers, equity_json FROM aum_history WHERE lead = ? AND ts <= ?"
            " ORDER BY ts DESC, rowid DESC LIMIT 1",
            (lead, ts),
        )
        return aum_point_from_row(rows[0]) if rows else None

    def aum_origin(self, lead: str) -> int | None:
        """The first time the journal knows of `lead`: its first AUM sample or flow."""
        rows = self._read(
            "SELECT MIN(t) FROM (SELECT MIN(ts) AS t FROM aum_history WHERE lead = ?"
            " UNION ALL SELECT MIN(ts) FROM aum_flows WHERE lead = ?)",
            (lead, lead),
        )
        return None if rows[0][0] is None else int(rows[0][0])
