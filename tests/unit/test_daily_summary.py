"""The daily summary: sent at the configured UTC time (time injected), read from the journal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from bot.core.types import Decision, Intent, LeadFill, OrderOutcome, OrderStatus, Side, Verdict
from bot.journal.store import Journal
from bot.service.daily import DailySummary, next_run

BTC = "BTC/USDT:USDT"


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal.open(tmp_path / "journal.sqlite")
    yield j
    j.close()


def lead_fill(trade_id: str, side: Side, price: str, ts: datetime) -> LeadFill:
    return LeadFill(lead="alpha", trade_id=trade_id, order_id="o" + trade_id, symbol=BTC, side=side,
                    qty=Decimal("0.010"), price=Decimal(price), ts_ms=int(ts.timestamp() * 1000),
                    received_ns=1, source="ws")  # fmt: skip


def intent(coid: str, qty: str) -> Intent:
    return Intent(lead="alpha", follower="f1", symbol=BTC, trigger="t" + coid, leg=0, side=Side.SELL,
                  qty=Decimal(qty), reduce_only=False, ref_price=Decimal("66000"), target=Decimal("-" + qty),
                  current=Decimal(0), client_order_id=coid)  # fmt: skip


def test_next_run_is_the_first_configured_time_after_now() -> None:
    assert next_run(datetime(2026, 3, 1, 20, 59, tzinfo=UTC), "21:00") == datetime(
        2026, 3, 1, 21, 0, tzinfo=UTC
    )
    assert next_run(datetime(2026, 3, 1, 21, 0, tzinfo=UTC), "21:00") == datetime(
        2026, 3, 2, 21, 0, tzinfo=UTC
    )
    assert next_run(datetime(2026, 12, 31, 23, 30, tzinfo=UTC), "00:15") == datetime(
        2027, 1, 1, 0, 15, tzinfo=UTC
    )


async def test_summary_is_sent_at_the_configured_time_with_pnl_orders_denials_and_slippage(
    journal: Journal,
) -> None:
    # Orders and decisions are stamped with the wall clock; the summary time is set two minutes
    # ahead of it, so the window (the 24 hours before) holds them.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    at = (now + timedelta(minutes=2)).strftime("%H:%M")
    journal.record_lead_fill(
        lead_fill("1", Side.BUY, "65000", now - timedelta(days=2)), "accepted"
    )  # opened before
    journal.record_lead_fill(
        lead_fill("2", Side.SELL, "66000", now - timedelta(hours=1)), "accepted"
    )  # closed in
    sold, denied = intent("cb-1", "0.005"), intent("cb-2", "0.004")
    journal.record_intent(sold)
    journal.record_decision(Decision(sold, Verdict.APPROVED, sold.qty))
    journal.record_outcome(OrderOutcome("cb-1", OrderStatus.FILLED, Decimal("0.005"), Decimal("65967")), "f1")
    journal.record_decision(Decision(denied, Verdict.DENIED, Decimal(0), "max_total_exposure"))
    journal.flush()
    slept: list[float] = []
    sent: list[tuple[str, str]] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async def send(title: str, body: str) -> None:
        sent.append((title, body))

    daily = DailySummary(journal, ["alpha"], at, send, now=lambda: now, sleep=sleep)
    await daily.run_once()
    assert slept == [120.0]
    ((title, body),) = sent
    assert title == f"copybot daily summary to {now + timedelta(minutes=2):%Y-%m-%d %H:%M} UTC"
    lines = body.splitlines()
    assert lines[0] == "lead alpha: 1 fills, realized PnL 10.00"  # 0.010 x (66000 - 65000)
    # A sell 33 below the lead's 66000 is 5.0 bps worse; opening a short realizes nothing.
    assert lines[1] == ("follower f1 (of alpha): 1 orders (1 filled), 1 denied, realized PnL 0.00, "
                        "mean slippage 5.0 bps over 1 fills")  # fmt: skip
