"""`copybot aum --journal`: the offline report reads the journal through its query methods."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from bot.commands.aum import report_from_journal
from bot.core.types import OrderOutcome, OrderStatus
from bot.journal.store import Journal
from tests.unit.test_journal import fill, intent


def test_offline_report_from_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with Journal.open(path) as journal:
        journal.record_lead_fill(fill("t1", ts_ms=1_000), "accepted")
        journal.record_aum(0, "alpha", Decimal(20_000), 2, {"f1": "10000", "f2": "10000"})
        # A sell filled 6.50 below the lead's 65,000.10: about 1 bps worse (a sell below pays).
        journal.record_intent(intent("cb-a"))
        journal.record_outcome(
            OrderOutcome("cb-a", OrderStatus.FILLED, Decimal("0.005"), Decimal("64993.60")), "f1"
        )
        journal.record_intent(intent("cb-b", follower="f2"))  # not filled: no point
        journal.record_outcome(OrderOutcome("cb-b", OrderStatus.NEW), "f2")
    report = report_from_journal(str(path), "aum", now_ms=10_000)
    assert [(r["lead"], r["aum"], r["followers"], r["trades"]) for r in report["leads"]] == [
        ("alpha", "20000", 2, 1)
    ]
    assert report["history"] == [[0, "alpha", "20000"]]
    ((aum, bps),) = report["slippage_points"]
    assert Decimal(aum) == 20_000
    assert Decimal(bps) == (Decimal("65000.10") - Decimal("64993.60")) / Decimal("65000.10") * 10_000
