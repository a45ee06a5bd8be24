"""Journal: round trips of every record, the writer thread's batching and flush, schema
versioning, and a writer killed mid-batch (os._exit) leaving a consistent, reopenable file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from bot.core.errors import ErrorKind
from bot.core.redaction import clear_secrets, register_secret
from bot.core.types import (
    Decision,
    Intent,
    LeadFill,
    OrderOutcome,
    OrderStatus,
    Side,
    TradingState,
    Verdict,
)
from bot.journal.pnl import IncomeRow
from bot.journal.schema import MIGRATIONS
from bot.journal.store import Journal, JournalClosed, JournalError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal.open(tmp_path / "var" / "journal.sqlite")
    yield j
    j.close()


def fill(trade_id: str, ts_ms: int = 1_000, qty: str = "0.010", lead: str = "alpha") -> LeadFill:
    return LeadFill(lead=lead, trade_id=trade_id, order_id="o-" + trade_id, symbol="BTC/USDT:USDT",
                    side=Side.BUY, qty=Decimal(qty), price=Decimal("65000.10"), ts_ms=ts_ms,
                    received_ns=123, source="rest")  # fmt: skip


def intent(coid: str, follower: str = "f1", trigger: str = "t1") -> Intent:
    return Intent(lead="alpha", follower=follower, symbol="BTC/USDT:USDT", trigger=trigger, leg=0,
                  side=Side.SELL, qty=Decimal("0.005"), reduce_only=True, ref_price=Decimal("65000.10"),
                  target=Decimal("-0.005"), current=Decimal("0"), client_order_id=coid)  # fmt: skip


def test_open_creates_parent_dirs_wal_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "j.sqlite"
    Journal.open(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    Journal.open(path).close()  # reopening an up-to-date journal migrates nothing


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(JournalError, match="newer than this copybot knows"):
        Journal.open(path)


def test_lead_fill_round_trip_and_status_update(journal: Journal) -> None:
    journal.record_lead_fill(fill("t2", ts_ms=2_000), "accepted")
    journal.record_lead_fill(fill("t1", ts_ms=1_000), "accepted")
    journal.record_lead_fill(fill("t1", ts_ms=1_000, qty="9"), "in_snapshot", "already in the snapshot")
    journal.flush()
    fills = journal.lead_fills("alpha")
    assert [f.trade_id for f in fills] == ["t1", "t2"]
    assert fills[0] == fill("t1")  # the first sighting's values are kept, exactly (Decimal text)
    assert journal.lead_fill_status("alpha", "t1") == ("in_snapshot", "already in the snapshot")
    assert [f.trade_id for f in journal.lead_fills("alpha", since=1_500)] == ["t2"]
    assert journal.lead_fills("beta") == []


def test_has_lead_fill_sees_queued_fills_before_commit(journal: Journal) -> None:
    for i in range(2_000):
        journal.record_lead_fill(fill(f"q{i}"), "accepted")
    assert journal.has_lead_fill("alpha", "q1999")  # possibly not committed yet
    assert not journal.has_lead_fill("alpha", "never")
    journal.flush()
    assert journal.has_lead_fill("alpha", "q1999")
    assert journal.counts()["lead_fills"] == 2_000


def test_cursor_never_moves_back(journal: Journal) -> None:
    journal.set_cursor("alpha", "BTC/USDT:USDT", 2_000, "t2")
    journal.set_cursor("alpha", "BTC/USDT:USDT", 1_000, "t1")  # late, out of order
    journal.set_cursor("alpha", "ETH/USDT:USDT", 500, "e1")
    journal.flush()
    assert journal.cursors("alpha") == {"BTC/USDT:USDT": (2_000, "t2"), "ETH/USDT:USDT": (500, "e1")}
    assert journal.cursors("beta") == {}


def test_unsettled_intents_follow_decisions_and_outcomes(journal: Journal) -> None:
    a, b, c, d = intent("cb-a"), intent("cb-b"), intent("cb-c"), intent("cb-d", follower="f2")
    for i in (a, b, c, d):
        journal.record_intent(i)
    journal.record_decision(Decision(a, Verdict.APPROVED, a.qty))
    journal.record_decision(Decision(b, Verdict.CLIPPED, Decimal("0.002"), "max_order_notional"))
    journal.record_decision(Decision(c, Verdict.DENIED, Decimal(0), "symbol denied"))
    journal.record_decision(Decision(d, Verdict.APPROVED, d.qty))
    journal.record_outcome(
        OrderOutcome("cb-b", OrderStatus.UNKNOWN, error=ErrorKind.AMBIGUOUS), "f1", sent_ns=10
    )
    journal.flush()
    assert [i.client_order_id for i in journal.unsettled_intents("f1")] == ["cb-a", "cb-b"]
    assert journal.unsettled_intents("f1")[0] == a  # decoded back to the same Intent
    assert {i.client_order_id for i in journal.unsettled_intents()} == {"cb-a", "cb-b", "cb-d"}

    journal.record_outcome(
        OrderOutcome("cb-a", OrderStatus.FILLED, Decimal("0.005"), Decimal("65010"), "99"), "f1"
    )
    journal.record_outcome(
        OrderOutcome("cb-b", OrderStatus.REJECTED, error=ErrorKind.INSUFFICIENT_FUNDS), "f1", acked_ns=20
    )
    journal.flush()
    assert [i.client_order_id for i in journal.unsettled_intents("f1")] == []
    assert journal.counts()["unsettled"] == 1


def test_final_outcome_is_not_undone_and_stamps_are_kept(journal: Journal, tmp_path: Path) -> None:
    journal.record_outcome(OrderOutcome("cb-x", OrderStatus.NEW, order_id="77"), "f1", sent_ns=100)
    journal.record_outcome(
        OrderOutcome("cb-x", OrderStatus.FILLED, Decimal("1.5"), Decimal("10.25")), "f1", acked_ns=200
    )
    journal.record_outcome(OrderOutcome("cb-x", OrderStatus.UNKNOWN, error=ErrorKind.AMBIGUOUS), "f1")
    journal.flush()
    outcome = journal.outcome("cb-x")
    assert outcome is not None
    assert (outcome.status, outcome.filled_qty, outcome.avg_price, outcome.order_id) == (
        "filled", Decimal("1.5"), Decimal("10.25"), "77"
    )  # fmt: skip
    with sqlite3.connect(journal.path) as db:
        assert db.execute("SELECT sent_ns, acked_ns FROM orders").fetchone() == (100, 200)
    assert journal.outcome("nope") is None


def test_deferrals_are_recorded_per_trigger(journal: Journal) -> None:
    journal.record_deferral("alpha", "f1", "t7", "BTC/USDT:USDT", "below min notional")
    i = intent("cb-7", trigger="t7")
    journal.record_decision(Decision(i, Verdict.APPROVED, i.qty))
    journal.flush()
    assert journal.decisions_for("alpha", "f1", "t7") == [
        ("deferred", "below min notional"),
        ("approved", None),
    ]


def test_copy_timeline_brings_each_followers_disposition_and_orders(journal: Journal) -> None:
    journal.record_lead_fill(fill("t1", ts_ms=1_000), "accepted")
    journal.record_lead_fill(fill("t2", ts_ms=2_000), "accepted")
    journal.record_lead_fill(fill("t1", ts_ms=1_000, lead="beta"), "accepted")  # same id, other lead
    a, b = intent("cb-a", trigger="t2"), intent("cb-b", trigger="t2")
    for i, verdict, qty in ((a, Verdict.APPROVED, a.qty), (b, Verdict.CLIPPED, Decimal("0.002"))):
        journal.record_intent(i)
        journal.record_decision(Decision(i, verdict, qty, "max_order_notional" if qty != i.qty else None))
    journal.record_outcome(OrderOutcome("cb-a", OrderStatus.FILLED, a.qty, Decimal("65010")), "f1")
    journal.record_deferral("alpha", "f1", "t2", "BTC/USDT:USDT", "planned: cb-a,cb-b")
    journal.record_deferral("alpha", "f2", "t2", "BTC/USDT:USDT", "denied: symbol_denied")
    journal.record_deferral("alpha", "f1", "t1", "BTC/USDT:USDT", "at_target")
    journal.record_deferral("alpha", "f9", "t1", "BTC/USDT:USDT", "at_target")  # not asked for
    journal.flush()
    beta, t2, t1 = journal.copy_timeline({"alpha": ["f1", "f2"], "beta": ["f1"]}, limit=10)
    assert [(c.fill.lead, c.fill.trade_id) for c in (beta, t2, t1)] == [("beta", "t1"), ("alpha", "t2"),
                                                                        ("alpha", "t1")]  # fmt: skip
    assert beta.followers == ()
    assert [(d.follower, d.disposition) for d in t1.followers] == [("f1", "at_target")]
    planned, denied = t2.followers
    assert (denied.follower, denied.disposition, denied.legs) == ("f2", "denied: symbol_denied", ())
    leg_a, leg_b = planned.legs
    assert (leg_a.verdict, leg_a.status, leg_a.filled_qty, leg_a.avg_price) == (
        "approved", "filled", a.qty, Decimal("65010"))  # fmt: skip
    assert (leg_b.verdict, leg_b.qty, leg_b.reason, leg_b.status) == (
        "clipped", Decimal("0.002"), "max_order_notional", None)  # fmt: skip
    assert len(journal.copy_timeline({"alpha": ["f1"]}, limit=1)) == 1


def test_ratios_states_aum_and_events(journal: Journal) -> None:
    journal.save_ratio("alpha", "f1", "BTC/USDT:USDT", Decimal("0.1"))
    journal.save_ratio("alpha", "f1", "BTC/USDT:USDT", Decimal("0.125"))
    journal.save_ratio("alpha", "f2", "BTC/USDT:USDT", Decimal("3"))
    journal.set_follower_state("f1", TradingState.REDUCE_ONLY, "daily loss")
    journal.record_aum(1_000, "alpha", Decimal("1500.50"), 2, {"f1": Decimal("1000.50"), "f2": "500"})
    journal.record_aum(2_000, "alpha", Decimal("1600"), 2, {})
    journal.record_event("stop", "f1", {"reason": "daily loss", "loss": Decimal("501.2")})
    journal.record_event("note", None, "plain text")
    journal.flush()
    assert journal.load_ratios("f1") == {("alpha", "BTC/USDT:USDT"): Decimal("0.125")}
    state = journal.follower_states()["f1"]
    assert (state.state, state.reason) == (TradingState.REDUCE_ONLY, "daily loss")
    history = journal.aum_history("alpha")
    assert [(p.ts, p.aum, p.followers) for p in history] == [
        (1_000, Decimal("1500.50"), 2),
        (2_000, Decimal(1600), 2),
    ]
    assert history[0].detail == {"f1": Decimal("1000.50"), "f2": Decimal(500)}
    assert [p.ts for p in journal.aum_history(since=1_500)] == [2_000]
    assert journal.aum_history("beta") == []
    note, stop = journal.events()
    assert (note.kind, note.detail) == ("note", "plain text")
    assert stop.detail == {"reason": "daily loss", "loss": "501.2"}
    assert [e.kind for e in journal.events(kind="stop")] == ["stop"]


def test_secrets_in_free_text_never_reach_the_file(journal: Journal) -> None:
    secret = "JournalSecretValue42"
    register_secret(secret)
    try:
        journal.record_event("error", "f1", {"message": f"auth failed for {secret}"})
        journal.record_outcome(
            OrderOutcome("cb-s", OrderStatus.REJECTED, error=ErrorKind.AUTH, reason=f"key {secret}"), "f1"
        )
        journal.flush()
    finally:
        clear_secrets()
    journal.close()
    for name in ("journal.sqlite", "journal.sqlite-wal"):
        path = journal.path.parent / name
        if path.exists():
            assert secret.encode() not in path.read_bytes()


async def test_aflush_does_not_block_the_loop(journal: Journal) -> None:
    for i in range(500):
        journal.record_event("tick", str(i))
    await journal.aflush()
    assert journal.counts()["events"] == 500


def test_writes_after_close_raise(tmp_path: Path) -> None:
    j = Journal.open(tmp_path / "j.sqlite")
    j.record_event("last", None)
    j.close()
    j.close()  # idempotent
    with pytest.raises(JournalClosed, match="closed"):
        j.record_event("after", None)
    with pytest.raises(JournalClosed):
        j.record_lead_fill(fill("t1"), "accepted")
    with pytest.raises(JournalClosed):
        j.flush()
    with Journal.open(tmp_path / "j.sqlite") as again:
        assert [e.kind for e in again.events()] == ["last"]  # close() committed the queue


def test_bad_statement_does_not_lose_its_batch(journal: Journal) -> None:
    journal.record_event("before", None)
    journal._put("INSERT INTO no_such_table VALUES (?)", (1,))
    journal.record_event("after", None)
    journal.flush()
    assert sorted(e.kind for e in journal.events()) == ["after", "before"]
    assert journal.counts()["write_errors"] == 1


CRASH = """
import os, sys
from decimal import Decimal
from bot.journal.store import Journal
from bot.core.types import LeadFill, Side

j = Journal.open(sys.argv[1])
def fill(i):
    return LeadFill("alpha", f"t{i}", "o", "BTC/USDT:USDT", Side.BUY, Decimal("0.001"), Decimal("1"), i)
for i in range(300):
    j.record_lead_fill(fill(i), "accepted")
    j.set_cursor("alpha", "BTC/USDT:USDT", i, f"t{i}")
j.flush()
print("flushed", flush=True)
for i in range(300, 20_000):
    j.record_lead_fill(fill(i), "accepted")
os._exit(9)  # no close, no flush: the writer thread dies wherever it is
"""


def test_writer_killed_mid_batch_leaves_a_consistent_journal(tmp_path: Path) -> None:
    path = tmp_path / "crash.sqlite"
    script = tmp_path / "crash.py"
    script.write_text(textwrap.dedent(CRASH))
    started = time.monotonic()
    proc = subprocess.run([sys.executable, str(script), str(path)], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, check=False)  # fmt: skip
    assert proc.returncode == 9, proc.stderr
    assert proc.stdout.strip() == "flushed"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with Journal.open(path) as j:
        fills = j.lead_fills("alpha")
        ids = {f.trade_id for f in fills}
        assert {f"t{i}" for i in range(300)} <= ids  # everything flushed survived
        assert len(ids) == len(fills)
        # Batches commit whole or not at all, in order: what survived is a prefix.
        assert ids == {f"t{i}" for i in range(len(ids))}
        assert j.cursors("alpha") == {"BTC/USDT:USDT": (299, "t299")}
        j.record_lead_fill(fill("after-restart"), "accepted")
        j.flush()
        assert j.has_lead_fill("alpha", "after-restart")
    elapsed = time.monotonic() - started
    print(f"crash test: {len(ids) - 300} unflushed fills committed before the kill, {elapsed:.2f}s")


def test_follower_fills_and_income_rows_for_the_results(journal: Journal) -> None:
    """What a follower's results replay at start (bot.live.pnl): its filled orders with their
    intents, and its fee and funding rows, each (ref, lead) stored once."""
    journal.record_intent(intent("c1"))
    journal.record_intent(intent("c2"))
    journal.record_intent(intent("c3", follower="f2"))
    journal.record_outcome(OrderOutcome("c1", OrderStatus.FILLED, Decimal("0.005"), Decimal("65010")), "f1")
    journal.record_outcome(OrderOutcome("c2", OrderStatus.EXPIRED, Decimal("0"), None), "f1")
    journal.record_outcome(OrderOutcome("c3", OrderStatus.FILLED, Decimal("0.005"), Decimal("65020")), "f2")
    rows = [IncomeRow("f1", "FUNDING_FEE:7", "alpha", "funding", "BTC/USDT:USDT", Decimal("-0.12"), 5)]
    journal.record_income(rows)
    journal.record_income(rows)  # read again by an overlapping pass
    journal.flush()
    (fill,) = journal.follower_fills("f1")
    assert (fill.client_order_id, fill.lead, fill.side, fill.ref_price, fill.avg_price, fill.filled_qty) == (
        "c1", "alpha", Side.SELL, Decimal("65000.10"), Decimal("65010"), Decimal("0.005"))  # fmt: skip
    assert fill.ts_ms > 10**12
    assert journal.income_rows("f1") == rows
    assert journal.income_rows("f2") == []
