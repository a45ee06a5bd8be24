"""The live side of each follower's results (bot.live.pnl): an order's outcome counted once per
client id (a second, larger outcome adds only its delta), the income log's rows taken once,
attributed by order or by open quantity, an order the account's owner placed left out, and the
journal replayed by a fresh tracker (a restart)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from decimal import Decimal as D
from typing import Any

from bot.core.manual import ManualBook
from bot.core.types import IncomeKind, IncomeRecord, Intent, OrderOutcome, OrderStatus, Side
from bot.journal.pnl import FollowerFill, IncomeRow
from bot.live.budget import RequestBudget
from bot.live.metrics import Metrics
from bot.live.pnl import FollowerPnl


@dataclass
class FakeJournal:
    fills: list[FollowerFill] = field(default_factory=list)
    income: list[IncomeRow] = field(default_factory=list)

    def follower_fills(self, follower: str) -> list[FollowerFill]:
        return list(self.fills)

    def record_income(self, rows: list[IncomeRow]) -> None:
        self.income += rows

    def income_rows(self, follower: str | None = None) -> list[IncomeRow]:
        return list(self.income)


@dataclass
class FakeAdapter:
    records: list[IncomeRecord]
    since: list[int] = field(default_factory=list)
    used_weight_header = None

    def weight(self, call: str) -> int:
        return 30

    async def income(self, client: Any, since_ms: int) -> list[IncomeRecord]:
        self.since.append(since_ms)
        return self.records


@dataclass
class FakeFollower:
    adapter: FakeAdapter
    id: str = "f"
    client: Any = None
    markets: dict[str, Any] = field(default_factory=dict)
    manual: ManualBook = field(default_factory=ManualBook)


def _intent(cid: str, side: Side, ref: str, lead: str = "L") -> Intent:
    return Intent(lead=lead, follower="f", symbol="BTC", trigger=cid, leg=0, side=side, qty=D(1),
                  reduce_only=False, ref_price=D(ref), target=D(0), current=D(0),
                  client_order_id=cid)  # fmt: skip


def _filled(cid: str, qty: str, avg: str) -> OrderOutcome:
    return OrderOutcome(cid, OrderStatus.FILLED, filled_qty=D(qty), avg_price=D(avg))


async def test_outcomes_count_once_and_income_is_attributed_and_replayed() -> None:
    journal = FakeJournal()
    t = int(time.time() * 1000) + 60_000  # the rows come after the fills below
    adapter = FakeAdapter([
        IncomeRecord("COMMISSION:1", IncomeKind.FEE, "BTC", D("0.5"), t + 1),
        IncomeRecord("t9", IncomeKind.FEE, "BTC", D("0.7"), t + 2, client_order_id="by-hand"),  # the owner's
        IncomeRecord("FUNDING_FEE:1", IncomeKind.FUNDING, "BTC", D("-0.2"), t + 3),
        IncomeRecord("FUNDING_FEE:2", IncomeKind.FUNDING, "ETH", D("-9"), t + 3),  # never copied
    ])  # fmt: skip
    follower = FakeFollower(adapter)
    pnl = FollowerPnl(journal, Metrics())  # type: ignore[arg-type]
    assert not pnl.wants_income(follower, 0)  # type: ignore[arg-type]  # nothing copied: nothing to read
    buy = _intent("c1", Side.BUY, "100")
    pnl.on_outcome(follower, buy, _filled("c1", "1", "101"))  # type: ignore[arg-type]
    pnl.on_outcome(follower, buy, _filled("c1", "1", "101"))  # type: ignore[arg-type]  # seen again
    # the same order later reported with more filled: only the 1 more at (3 x 102 - 101) / 2 = 102.5
    pnl.on_outcome(follower, buy, _filled("c1", "3", "102"))  # type: ignore[arg-type]
    report = pnl.report(follower, lambda symbol: D(110))  # type: ignore[arg-type]
    assert report["leads"]["L"]["unrealized"] == "24.0000"  # (110 - 102) x 3
    assert report["leads"]["L"]["windows"]["all"]["slippage"] == "6.0000"  # (102 - 100) x 3
    assert report["leads"]["L"]["windows"]["all"]["fills"] == 1  # one order

    assert pnl.wants_income(follower, 3600)  # type: ignore[arg-type]  # filled, never read
    assert await pnl.read_income(follower, RequestBudget(None)) == 2  # type: ignore[arg-type]
    assert not pnl.wants_income(follower, 3600)  # type: ignore[arg-type]  # holds a copy, read just now
    assert pnl.wants_income(follower, 0)  # type: ignore[arg-type]
    assert await pnl.read_income(follower, RequestBudget(None)) == 0  # type: ignore[arg-type]  # read twice
    assert adapter.since[1] == t + 3 - 60_000  # from the newest row, with the overlap
    assert [(r.ref, r.lead, r.amount) for r in journal.income] == [
        ("COMMISSION:1", "L", D("0.5")), ("FUNDING_FEE:1", "L", D("-0.2"))]  # fmt: skip
    totals = pnl.report(follower, lambda symbol: D(110))["leads"]["L"]["windows"]["all"]  # type: ignore[arg-type]
    assert (totals["fees"], totals["funding"], totals["net"]) == ("0.5000", "-0.2000", "-0.7000")

    # a restart: a fresh tracker replays the journal's filled orders and income rows
    journal.fills = [FollowerFill("c1", "L", "BTC", Side.BUY, D(100), D(102), D(3), 5)]
    again = FollowerPnl(journal, Metrics())  # type: ignore[arg-type]
    replayed = again.report(follower, lambda symbol: D(110))  # type: ignore[arg-type]
    assert replayed["leads"]["L"]["windows"]["all"] == totals
    assert replayed["leads"]["L"]["unrealized"] == "24.0000"
    assert await again.read_income(follower, RequestBudget(None)) == 0  # type: ignore[arg-type]


async def test_funding_is_the_copys_part_at_the_funding_time() -> None:
    """Funding charged on the account's whole position: copybot's part by its quantity at the
    funding time (its copy closed since still counts; a position it did not hold then does not),
    beside the owner's own quantity (manual trades)."""
    journal = FakeJournal()
    adapter = FakeAdapter([])
    follower = FakeFollower(adapter)
    follower.manual.qty["BTC"] = D(1)  # the owner holds 1 BTC of their own beside the copy
    pnl = FollowerPnl(journal, Metrics())  # type: ignore[arg-type]
    pnl.on_outcome(follower, _intent("c1", Side.BUY, "100"), _filled("c1", "3", "100"))  # type: ignore[arg-type]
    state = pnl._states["f"]
    first_fill_ms = state.first_fill_ms
    pnl.on_outcome(follower, _intent("c2", Side.SELL, "100"), _filled("c2", "3", "100"))  # type: ignore[arg-type]
    # backdate the close so the funding time falls between open and close
    events = list(state.results._recent)
    state.results._recent.clear()
    state.results._recent.extend([events[0], replace(events[1], ts_ms=first_fill_ms + 1000)])
    adapter.records = [
        IncomeRecord("FUNDING_FEE:1", IncomeKind.FUNDING, "BTC", D("-0.4"), first_fill_ms + 500),
        IncomeRecord("FUNDING_FEE:2", IncomeKind.FUNDING, "BTC", D("-0.1"), first_fill_ms - 500),
    ]  # fmt: skip
    assert await pnl.read_income(follower, RequestBudget(None)) == 1  # type: ignore[arg-type]
    # -0.4 on 3 copied + 1 the owner's: the copy's part is -0.3; before the copy opened: none of it
    assert [(r.ref, r.lead, r.amount) for r in journal.income] == [("FUNDING_FEE:1", "L", D("-0.3"))]
