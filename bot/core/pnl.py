"""A follower's own results from copying: realized and unrealized PnL, fees, funding, and the
slippage cost against the lead's prices, per lead followed, over 1, 7 and 30 days and all time
(docs/pnl.md).

Realized PnL is by average cost, as Binance and Bybit book one-way positions: a fill that adds to
a position moves its entry to the quantity-weighted average; one that reduces it realizes
(price - entry) x closed qty x contract size on the closed part and keeps the entry; one that
crosses zero closes the whole position and opens the rest at the fill's price. Each (lead, symbol)
of a follower is its own book, so the copies of two leads never net against each other.

Signs: `fees` is what was paid (positive: a cost, negative: a rebate), `funding` what was received
(positive: income, as the venues' income and transaction logs give it), `slippage` the cost of
filling worse than the lead (buy: (follower price - lead price) x qty; sell: the reverse; positive:
worse). Slippage is already inside realized and unrealized PnL; it is shown, not subtracted again.
Net = realized + unrealized - fees + funding.
"""

from __future__ import annotations

from bisect import insort
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from bot.core.types import ZERO

DAY_MS = 86_400_000
# Rolling windows by name; "all" is every event since the follower's first copy.
WINDOWS: dict[str, int | None] = {"1d": DAY_MS, "7d": 7 * DAY_MS, "30d": 30 * DAY_MS, "all": None}
_HORIZON_MS = 30 * DAY_MS  # events older than the longest window fold into the all-time totals


@dataclass(frozen=True, slots=True)
class PnlEvent:
    """One change to a follower's results with one lead: a fill, a fee, a funding payment."""

    ts_ms: int
    lead: str
    symbol: str
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    slippage: Decimal = ZERO
    fills: int = 0
    qty: Decimal = ZERO  # a fill: its signed quantity
    position: Decimal | None = None  # a fill: the (lead, symbol) book's quantity after it


@dataclass(frozen=True, slots=True)
class PnlTotals:
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    slippage: Decimal = ZERO
    fills: int = 0

    def add(self, e: PnlEvent | PnlTotals) -> PnlTotals:
        return PnlTotals(
            self.realized + e.realized,
            self.fees + e.fees,
            self.funding + e.funding,
            self.slippage + e.slippage,
            self.fills + e.fills,
        )

    @property
    def net(self) -> Decimal:
        """Realized PnL after fees and funding (unrealized PnL is a figure of now, not a window)."""
        return self.realized - self.fees + self.funding


@dataclass(frozen=True, slots=True)
class Holding:
    qty: Decimal = ZERO  # signed, contracts
    entry: Decimal = ZERO  # average cost of the open quantity
    contract_size: Decimal = Decimal(1)

    def unrealized(self, mark: Decimal) -> Decimal:
        return (mark - self.entry) * self.qty * self.contract_size if self.qty else ZERO


def apply_fill(
    held: Holding, signed_qty: Decimal, price: Decimal, contract_size: Decimal = Decimal(1)
) -> tuple[Holding, Decimal]:
    """The holding after one fill, and the PnL the fill realized (average cost)."""
    qty = held.qty
    if qty == 0 or (qty > 0) == (signed_qty > 0):
        total = qty + signed_qty
        entry = (abs(qty) * held.entry + abs(signed_qty) * price) / abs(total)
        return Holding(total, entry, contract_size), ZERO
    closed = min(abs(signed_qty), abs(qty))
    direction = 1 if qty > 0 else -1
    realized = (price - held.entry) * closed * direction * contract_size
    rest = qty + signed_qty
    if rest == 0:
        return Holding(ZERO, ZERO, contract_size), realized
    if (rest > 0) != (qty > 0):  # flipped: the rest opened at this fill's price
        return Holding(rest, price, contract_size), realized
    return Holding(rest, held.entry, contract_size), realized


def slippage_cost(
    signed_qty: Decimal, price: Decimal, lead_price: Decimal, contract_size: Decimal = Decimal(1)
) -> Decimal:
    """What filling at `price` instead of the lead's `lead_price` cost (positive: worse)."""
    return (price - lead_price) * signed_qty * contract_size


@dataclass
class CopyResults:
    """One follower's results, per lead. Fed its own fills (`fill`) and the fees and funding of
    its account's income log (`fee`, `funding`); `totals` gives each window, `unrealized` the
    open positions at the marks."""

    holdings: dict[tuple[str, str], Holding] = field(default_factory=dict)  # (lead, symbol)
    _old: dict[str, PnlTotals] = field(default_factory=dict)  # per lead, older than the horizon
    _recent: deque[PnlEvent] = field(default_factory=deque)  # in time order
    _last_lead: dict[str, str] = field(default_factory=dict)  # symbol -> the lead of its last fill
    _leads_of_cid: dict[str, str] = field(default_factory=dict)  # client order id -> lead

    def fill(
        self,
        ts_ms: int,
        lead: str,
        symbol: str,
        signed_qty: Decimal,
        price: Decimal,
        *,
        contract_size: Decimal = Decimal(1),
        lead_price: Decimal | None = None,
        client_order_id: str | None = None,
        new_order: bool = True,
    ) -> PnlEvent:
        """One of the follower's own fills copying `lead` (an order's filled qty and average);
        `new_order` False for more of an order already counted (`fills` counts orders)."""
        key = (lead, symbol)
        held, realized = apply_fill(self.holdings.get(key, Holding()), signed_qty, price, contract_size)
        if held.qty == 0:
            self.holdings.pop(key, None)
        else:
            self.holdings[key] = held
        self._last_lead[symbol] = lead
        if client_order_id:
            self._leads_of_cid[client_order_id] = lead
        slip = (
            slippage_cost(signed_qty, price, lead_price, contract_size)
            if lead_price is not None and lead_price > 0
            else ZERO
        )
        event = PnlEvent(ts_ms, lead, symbol, realized=realized, slippage=slip, fills=1 if new_order else 0,
                         qty=signed_qty, position=held.qty)  # fmt: skip
        self.record(event)
        return event

    def closed_outside(self, ts_ms: int, symbol: str, own_qty: Decimal, price: Decimal) -> list[PnlEvent]:
        """The venue holds less of `symbol` for copybot (`own_qty`) than its books: something other
        than copybot's orders closed it (a TP/SL resting at the venue, a liquidation). The
        difference is closed at `price`, from every lead's book in proportion; a venue that holds
        more is left alone (nothing says which lead it would belong to)."""
        books = {lead: h for (lead, s), h in self.holdings.items() if s == symbol}
        held = sum((h.qty for h in books.values()), ZERO)
        if not held or (own_qty != 0 and (own_qty > 0) == (held > 0) and abs(own_qty) >= abs(held)):
            return []
        keep = own_qty / held if own_qty and (own_qty > 0) == (held > 0) else ZERO  # share left open
        events = []
        for lead, h in sorted(books.items()):
            close = -(h.qty - h.qty * keep)
            event = self.fill(
                ts_ms, lead, symbol, close, price, contract_size=h.contract_size, new_order=False
            )
            events.append(event)
        return events

    def lead_of(self, client_order_id: str) -> str | None:
        return self._leads_of_cid.get(client_order_id)

    def positions_at(self, symbol: str, ts_ms: int) -> dict[str, Decimal]:
        """Each lead's copied quantity of `symbol` at `ts_ms`, from the fills in the last 30 days
        (a book with no fill since: its quantity now)."""
        at: dict[str, Decimal] = {}
        after: dict[str, Decimal] = {}  # a lead's quantity before its first fill after ts_ms
        for e in self._recent:
            if e.symbol != symbol or e.position is None:
                continue
            if e.ts_ms <= ts_ms:
                at[e.lead] = e.position
            elif e.lead not in at and e.lead not in after:
                after[e.lead] = e.position - e.qty
        out = {**after, **at}
        for (lead, s), held in self.holdings.items():
            if s == symbol and lead not in out:
                out[lead] = held.qty
        return {lead: qty for lead, qty in sorted(out.items()) if qty}

    def lead_near(self, symbol: str, ts_ms: int) -> str | None:
        """The lead of the fill of `symbol` nearest in time to `ts_ms` (a fee's own fill)."""
        best: tuple[int, str] | None = None
        for e in self._recent:
            if e.symbol == symbol and e.position is not None:
                gap = abs(e.ts_ms - ts_ms)
                if best is None or gap < best[0]:
                    best = (gap, e.lead)
        return best[1] if best is not None else self._last_lead.get(symbol)

    def shares(self, symbol: str, ts_ms: int | None = None) -> dict[str, Decimal]:
        """How a payment on `symbol` the venue's record does not tie to an order is split among
        leads: by each lead's share of the copied quantity (at `ts_ms` when given, else now),
        else all to the lead of the symbol's last fill; empty when copybot never traded it."""
        if ts_ms is None:
            held = {lead: h.qty for (lead, s), h in self.holdings.items() if s == symbol and h.qty}
        else:
            held = self.positions_at(symbol, ts_ms)
        open_qty = {lead: abs(q) for lead, q in held.items()}
        total = sum(open_qty.values(), ZERO)
        if total:
            return {lead: qty / total for lead, qty in sorted(open_qty.items())}
        last = self._last_lead.get(symbol)
        return {last: Decimal(1)} if last is not None else {}

    def _split(self, ts_ms: int, symbol: str, amount: Decimal, lead: str | None, kind: str) -> list[PnlEvent]:
        shares = {lead: Decimal(1)} if lead is not None else self.shares(symbol, ts_ms)
        events: list[PnlEvent] = []
        left = amount
        for i, (name, share) in enumerate(shares.items()):
            part = left if i == len(shares) - 1 else amount * share  # the last takes the rounding
            left -= part
            event = PnlEvent(ts_ms, name, symbol, **{kind: part})  # type: ignore[arg-type]
            self.record(event)
            events.append(event)
        return events

    def fee(self, ts_ms: int, symbol: str, paid: Decimal, lead: str | None = None) -> list[PnlEvent]:
        """A fee the account paid on `symbol` (positive: paid): for `lead`, else for the lead of
        the fill nearest in time (`lead_near`)."""
        return self._split(
            ts_ms, symbol, paid, lead if lead is not None else self.lead_near(symbol, ts_ms), "fees"
        )

    def funding(self, ts_ms: int, symbol: str, received: Decimal) -> list[PnlEvent]:
        """A funding payment on `symbol` (positive: received), split among the leads by their
        copied quantity at its time (`shares`)."""
        return self._split(ts_ms, symbol, received, None, "funding")

    def record(self, event: PnlEvent) -> None:
        """Add an event (also: replay one from the journal that needs no book, a fee or funding)."""
        recent = self._recent
        if recent and event.ts_ms < recent[-1].ts_ms:
            insort(recent, event, key=lambda e: e.ts_ms)  # rare: an income row older than a fill
        else:
            recent.append(event)

    def _fold(self, now_ms: int) -> None:
        horizon = now_ms - _HORIZON_MS
        recent = self._recent
        while recent and recent[0].ts_ms < horizon:
            event = recent.popleft()
            self._old[event.lead] = self._old.get(event.lead, PnlTotals()).add(event)

    def totals(self, now_ms: int) -> dict[str, dict[str, PnlTotals]]:
        """lead -> window name -> totals of the events in that window."""
        self._fold(now_ms)
        out: dict[str, dict[str, PnlTotals]] = {}
        for lead, old in self._old.items():
            out.setdefault(lead, {name: PnlTotals() for name in WINDOWS})["all"] = old
        for event in self._recent:
            per = out.setdefault(event.lead, {name: PnlTotals() for name in WINDOWS})
            age = now_ms - event.ts_ms
            for name, span in WINDOWS.items():
                if span is None or age < span:
                    per[name] = per[name].add(event)
        return out

    def unrealized(self, marks: Mapping[str, Decimal]) -> dict[str, Decimal]:
        """lead -> unrealized PnL of its open copies at `marks` (a symbol without a mark counts 0)."""
        out: dict[str, Decimal] = {}
        for (lead, symbol), held in self.holdings.items():
            mark = marks.get(symbol)
            out[lead] = out.get(lead, ZERO) + (held.unrealized(mark) if mark else ZERO)
        return out

    def leads(self) -> set[str]:
        return {e.lead for e in self._recent} | set(self._old) | {lead for lead, _ in self.holdings}


def sum_totals(rows: Iterable[PnlTotals]) -> PnlTotals:
    total = PnlTotals()
    for row in rows:
        total = total.add(row)
    return total
