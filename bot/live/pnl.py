"""Each follower's own results, live (docs/pnl.md): its fills as they settle, the fees and funding
of its account's income or transaction log on the reconciler's cadence, and its open copies at the
current marks. The arithmetic is bot.core.pnl; the journal keeps fills (orders) and income rows,
so a restart replays both.

Fills are taken per client order id as a delta of the order's filled quantity and average price,
so an outcome seen twice (a lookup after an ambiguous send, a replay after a restart) is never
counted twice. The income log is read only for a follower that has filled since its last read or
holds a copied position (funding needs one), paced in its venue address's request budget, never
per fill."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import structlog

from bot.core.errors import short
from bot.core.manual import ManualBook, is_copybot_order
from bot.core.pnl import WINDOWS, CopyResults, PnlEvent, PnlTotals, sum_totals
from bot.core.types import ZERO, IncomeKind, IncomeRecord, Intent, OrderOutcome, Side
from bot.journal.pnl import IncomeRow
from bot.live.budget import RequestBudget, paced
from bot.live.metrics import Metrics
from bot.live.ports import JournalPort

log = structlog.get_logger("copybot.pnl")

# Re-read this far back from the newest income row seen: a venue may list a row a little after
# its time (ids drop the rows read twice).
OVERLAP_MS = 60_000


class PnlFollower(Protocol):
    """What the tracker needs of a follower's runtime (bot.live.follower.FollowerRuntime)."""

    @property
    def id(self) -> str: ...
    @property
    def adapter(self) -> Any: ...
    @property
    def client(self) -> Any: ...
    @property
    def markets(self) -> Mapping[str, Any]: ...
    @property
    def manual(self) -> ManualBook: ...  # the owner's own quantities (bot.core.manual)
    def own(self, symbol: str) -> Decimal: ...  # copybot's quantity at the venue


@dataclass
class _State:
    results: CopyResults = field(default_factory=CopyResults)
    applied: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)  # cid -> (qty, avg)
    refs: set[str] = field(default_factory=set)  # income rows already taken
    newest_income_ms: int = 0
    first_fill_ms: int = 0
    pending: bool = False  # filled since the last income read
    reads: int = 0
    last_read_ms: int = 0
    last_error: str | None = None


def _size(markets: Mapping[str, Any], symbol: str) -> Decimal:
    market = markets.get(symbol)
    size = getattr(market, "contract_size", None)
    return size if isinstance(size, Decimal) else Decimal(1)


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.0001")))


def totals_json(t: PnlTotals) -> dict[str, Any]:
    return {"realized": _money(t.realized), "fees": _money(t.fees), "funding": _money(t.funding),
            "slippage": _money(t.slippage), "net": _money(t.net), "fills": t.fills}  # fmt: skip


class FollowerPnl:
    def __init__(self, journal: JournalPort, metrics: Metrics) -> None:
        self.journal = journal
        self.metrics = metrics
        self._states: dict[str, _State] = {}

    async def prepare(self, followers: list[PnlFollower]) -> None:
        """At start, once the outcomes settled by start-up are written: replay each follower's
        results from the journal (a follower joining later is replayed on first use)."""
        await self.journal.aflush()
        for follower in followers:
            self._state(follower)

    def _state(self, follower: PnlFollower) -> _State:
        state = self._states.get(follower.id)
        if state is None:
            state = self._states[follower.id] = _State()
            self._load(follower, state)
        return state

    def _load(self, follower: PnlFollower, state: _State) -> None:
        """Replay the journal: the follower's filled orders, then its income rows."""
        for row in self.journal.follower_fills(follower.id):
            self._apply(follower, state, row.client_order_id, row.lead, row.symbol, row.side,
                        row.filled_qty, row.avg_price, row.ref_price, row.ts_ms)  # fmt: skip
        for income in self.journal.income_rows(follower.id):
            fee = income.kind == IncomeKind.FEE.value
            state.results.record(PnlEvent(income.ts_ms, income.lead, income.symbol,
                                          fees=income.amount if fee else ZERO,
                                          funding=ZERO if fee else income.amount))  # fmt: skip
            state.refs.add(income.ref)
            state.newest_income_ms = max(state.newest_income_ms, income.ts_ms)

    # -- fills ------------------------------------------------------------------------------------

    def on_outcome(self, follower: PnlFollower, intent: Intent, outcome: OrderOutcome) -> None:
        if outcome.filled_qty <= 0 or not outcome.avg_price:
            return
        state = self._state(follower)
        now_ms = int(time.time() * 1000)
        self._apply(follower, state, intent.client_order_id, intent.lead, intent.symbol, intent.side,
                    outcome.filled_qty, outcome.avg_price, intent.ref_price, now_ms)  # fmt: skip
        self._publish(follower.id, state)

    def _apply(
        self, follower: PnlFollower, state: _State, cid: str, lead: str, symbol: str, side: Side,
        filled: Decimal, avg: Decimal, ref_price: Decimal, ts_ms: int,
    ) -> None:  # fmt: skip
        """The part of order `cid`'s fill not yet taken, at the price that part filled at."""
        done_qty, done_avg = state.applied.get(cid, (ZERO, ZERO))
        qty = filled - done_qty
        if qty <= 0:
            return
        price = (filled * avg - done_qty * done_avg) / qty
        state.applied[cid] = (filled, avg)
        signed = qty if side is Side.BUY else -qty
        state.results.fill(ts_ms, lead, symbol, signed, price, contract_size=_size(follower.markets, symbol),
                           lead_price=ref_price, client_order_id=cid, new_order=not done_qty)  # fmt: skip
        state.pending = True
        state.first_fill_ms = state.first_fill_ms or ts_ms

    def sync(self, follower: PnlFollower, mark: Callable[[str], Decimal | None]) -> None:
        """After an account read, while idle: a copied position the venue no longer holds (a
        TP/SL order resting at the venue fired, a liquidation) is booked closed at the mark."""
        state = self._state(follower)
        now_ms = int(time.time() * 1000)
        for symbol in sorted({s for (_, s) in state.results.holdings}):
            price = mark(symbol)
            if price is None or price <= 0:
                continue
            events = state.results.closed_outside(now_ms, symbol, follower.own(symbol), price)
            if events:
                log.info("copy_closed_outside", follower=follower.id, symbol=symbol, price=str(price),
                         realized=str(sum((e.realized for e in events), ZERO)))  # fmt: skip
                self._publish(follower.id, state)

    # -- fees and funding from the income log ------------------------------------------------------

    def wants_income(self, follower: PnlFollower, every_s: float) -> bool:
        """Whether a reconcile pass should read the follower's income log now: it filled since
        the last read or holds a copy (funding), and `every_s` has passed since that read."""
        state = self._state(follower)
        due = time.time() * 1000 - state.last_read_ms >= every_s * 1000
        return due and (state.pending or bool(state.results.holdings))

    async def read_income(self, follower: PnlFollower, budget: RequestBudget) -> int:
        """Read the follower's income log since the last row taken; returns the rows taken."""
        state = self._state(follower)
        since = (state.newest_income_ms or state.first_fill_ms or int(time.time() * 1000)) - OVERLAP_MS
        adapter, client = follower.adapter, follower.client
        try:
            records: list[IncomeRecord] = await paced(
                budget, adapter, client, adapter.weight("income"), lambda: adapter.income(client, since)
            )
        except Exception as exc:
            state.last_error = short(exc)
            raise
        state.pending = False
        state.reads += 1
        state.last_read_ms = int(time.time() * 1000)
        state.last_error = None
        rows = self._take(follower, state, sorted(records, key=lambda r: r.ts_ms))
        if rows:
            self.journal.record_income(rows)
            self._publish(follower.id, state)
        return len(rows)

    @staticmethod
    def _funding(follower: PnlFollower, results: CopyResults, r: IncomeRecord) -> list[PnlEvent]:
        """The copy's part of a funding payment: the venue charges the account's whole position,
        which may include the owner's own (manual trades, bot.core.manual); funding is linear in
        the quantity, so the copy's part is payment x copied / (copied + owner's)."""
        own = sum(results.positions_at(r.symbol, r.ts_ms).values(), ZERO)
        if not own:
            return []  # copybot held nothing then: the owner's position, not the copy's
        hand = follower.manual.manual(r.symbol)
        amount = r.amount * own / (own + hand) if hand and own + hand else r.amount
        return results.funding(r.ts_ms, r.symbol, amount)

    def _take(self, follower: PnlFollower, state: _State, records: list[IncomeRecord]) -> list[IncomeRow]:
        fid = follower.id
        out: list[IncomeRow] = []
        results = state.results
        for r in records:
            if r.ref in state.refs:
                continue
            state.refs.add(r.ref)
            state.newest_income_ms = max(state.newest_income_ms, r.ts_ms)
            if r.kind is IncomeKind.FEE:
                cid = r.client_order_id
                lead = results.lead_of(cid) if cid else None
                if cid and lead is None and not is_copybot_order(cid):
                    continue  # an order copybot did not place (the account owner's own)
                # (a copybot order that is no copy order, a TP/SL at the venue: the nearest fill's lead)
                ours = lead is not None or bool(results.shares(r.symbol))
                events = results.fee(r.ts_ms, r.symbol, r.amount, lead) if ours else []
            else:
                events = self._funding(follower, results, r)
            for e in events:
                amount = e.fees if r.kind is IncomeKind.FEE else e.funding
                out.append(IncomeRow(fid, r.ref, e.lead, r.kind.value, r.symbol, amount, r.ts_ms))
        return out

    # -- what is shown --------------------------------------------------------------------------

    def report(self, follower: PnlFollower, mark: Callable[[str], Decimal | None]) -> dict[str, Any]:
        """Per lead and window: realized, fees, funding, slippage, net; unrealized now; and the
        follower's total over its leads."""
        state = self._state(follower)
        results = state.results
        now = int(time.time() * 1000)
        totals = results.totals(now)
        marks = {s: m for (_, s) in results.holdings if (m := mark(s)) is not None}
        unrealized = results.unrealized(marks)
        leads: dict[str, Any] = {}
        for lead in sorted(set(totals) | set(unrealized)):
            per = totals.get(lead, {name: PnlTotals() for name in WINDOWS})
            leads[lead or "(unattributed)"] = {
                "unrealized": _money(unrealized.get(lead, ZERO)),
                "windows": {name: totals_json(per[name]) for name in WINDOWS},
            }
        overall = {name: totals_json(sum_totals(t[name] for t in totals.values())) for name in WINDOWS}
        self._publish(follower.id, state, unrealized)
        return {
            "method": "average cost",
            "unrealized": _money(sum(unrealized.values(), ZERO)),
            "windows": overall,
            "leads": leads,
            "income_log": {
                "reads": state.reads,
                "last_read_ms": state.last_read_ms or None,
                "last_error": state.last_error,
            },  # fmt: skip
        }

    def refresh_metrics(self, follower: PnlFollower, mark: Callable[[str], Decimal | None]) -> None:
        """The gauges at the current marks (a /metrics scrape)."""
        state = self._state(follower)
        holdings = state.results.holdings
        marks = {s: m for (_, s) in holdings if (m := mark(s)) is not None}
        self._publish(follower.id, state, state.results.unrealized(marks))

    def _publish(self, fid: str, state: _State, unrealized: Mapping[str, Decimal] | None = None) -> None:
        """All-time figures as gauges, one series per (follower, lead) followed: the windows are
        in /status, so the metrics stay one label pair per follow."""
        m = self.metrics
        totals = state.results.totals(int(time.time() * 1000))
        for lead, per in totals.items():
            total = per["all"]
            m.pnl_realized.labels(fid, lead).set(float(total.realized))
            m.pnl_fees.labels(fid, lead).set(float(total.fees))
            m.pnl_funding.labels(fid, lead).set(float(total.funding))
            m.pnl_slippage.labels(fid, lead).set(float(total.slippage))
        if unrealized is not None:  # a lead whose copies are closed shows 0, not its last figure
            for lead in set(totals) | set(unrealized):
                m.pnl_unrealized.labels(fid, lead).set(float(unrealized.get(lead, ZERO)))
