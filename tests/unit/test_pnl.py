"""Each follower's results (bot.core.pnl): average-cost realized PnL through adds, a partial close,
a flip and a close; fees, funding and slippage; windows; splits among leads. Every figure below is
computed by hand in the comments."""

from __future__ import annotations

from decimal import Decimal as D

from bot.core.pnl import DAY_MS, CopyResults, Holding, PnlTotals, apply_fill, slippage_cost

NOW = 100 * DAY_MS


def test_average_cost_through_add_partial_close_flip_and_close() -> None:
    r = CopyResults()
    # buy 2 @ 100 copying a lead fill @ 99.5: slippage (100 - 99.5) x 2 = 1.0
    e = r.fill(NOW, "L", "BTC", D(2), D(100), lead_price=D("99.5"))
    assert (e.realized, e.slippage) == (0, D("1.0"))
    # buy 1 @ 103: entry (2 x 100 + 103) / 3 = 101
    r.fill(NOW, "L", "BTC", D(1), D(103), lead_price=D(103))
    assert r.holdings["L", "BTC"] == Holding(D(3), D(101))
    # partial close: sell 1 @ 105, lead sold @ 105.5 -> realized (105 - 101) x 1 = 4; slippage
    # (105 - 105.5) x -1 = 0.5 (sold lower than the lead: a cost); the entry stays 101
    e = r.fill(NOW, "L", "BTC", D(-1), D(105), lead_price=D("105.5"))
    assert (e.realized, e.slippage) == (D(4), D("0.5"))
    assert r.holdings["L", "BTC"] == Holding(D(2), D(101))
    assert r.unrealized({"BTC": D(104)}) == {"L": D(6)}  # (104 - 101) x 2
    # flip: sell 5 @ 98 -> closes 2: (98 - 101) x 2 = -6; the other 3 open short @ 98
    e = r.fill(NOW, "L", "BTC", D(-5), D(98))
    assert e.realized == D(-6)
    assert r.holdings["L", "BTC"] == Holding(D(-3), D(98))
    assert r.unrealized({"BTC": D(97)}) == {"L": D(3)}  # (97 - 98) x -3
    # close: buy 3 @ 96 -> (96 - 98) x 3 x -1 = 6
    e = r.fill(NOW, "L", "BTC", D(3), D(96))
    assert e.realized == D(6)
    assert ("L", "BTC") not in r.holdings
    # fees 0.30 paid, funding 0.12 paid (received -0.12)
    r.fee(NOW, "BTC", D("0.30"))
    r.funding(NOW, "BTC", D("-0.12"))
    total = r.totals(NOW)["L"]["all"]
    assert total == PnlTotals(realized=D(4), fees=D("0.30"), funding=D("-0.12"), slippage=D("1.5"), fills=5)
    assert total.net == D("3.58")  # 4 - 0.30 - 0.12


def test_contract_size_scales_pnl_and_slippage() -> None:
    held, realized = apply_fill(Holding(), D(10), D(2), D("0.1"))
    assert held == Holding(D(10), D(2), D("0.1"))
    held, realized = apply_fill(held, D(-4), D("2.5"), D("0.1"))
    assert realized == D("0.20")  # (2.5 - 2) x 4 x 0.1
    assert slippage_cost(D(-4), D("2.5"), D("2.6"), D("0.1")) == D("0.04")  # (2.5 - 2.6) x -4 x 0.1


def test_windows_keep_each_event_in_the_spans_that_contain_it() -> None:
    r = CopyResults()
    r.fill(NOW - 40 * DAY_MS, "L", "ETH", D(1), D(10))
    r.fill(NOW - 10 * DAY_MS, "L", "ETH", D(-1), D(12))  # realizes 2, 10 days ago
    r.fill(NOW - 3 * DAY_MS, "L", "ETH", D(1), D(10))
    r.fill(NOW - DAY_MS // 2, "L", "ETH", D(-1), D(15))  # realizes 5, half a day ago
    r.fee(NOW - 2 * DAY_MS, "ETH", D(1))
    per = r.totals(NOW)["L"]
    assert (per["1d"].realized, per["7d"].realized, per["30d"].realized, per["all"].realized) == (5, 5, 7, 7)
    assert (per["1d"].fees, per["7d"].fees) == (0, 1)
    assert (per["1d"].fills, per["7d"].fills, per["30d"].fills, per["all"].fills) == (1, 2, 3, 4)
    # folding the old events into all-time leaves the figures unchanged
    assert r.totals(NOW)["L"] == per


def test_fees_and_funding_split_among_the_leads_that_hold_the_symbol() -> None:
    r = CopyResults()
    r.fill(NOW, "A", "BTC", D(1), D(100), client_order_id="cid-a")
    r.fill(NOW, "B", "BTC", D(-3), D(100))  # a short copy of another lead: its own book
    assert r.holdings["A", "BTC"].qty == 1
    assert r.holdings["B", "BTC"].qty == -3
    r.funding(NOW, "BTC", D(4))  # split by open quantity: 1 and 3
    r.fee(NOW, "BTC", D("0.5"), lead=r.lead_of("cid-a"))  # a fee naming its order
    totals = r.totals(NOW)
    assert (totals["A"]["all"].funding, totals["B"]["all"].funding) == (D(1), D(3))
    assert (totals["A"]["all"].fees, totals["B"]["all"].fees) == (D("0.5"), 0)
    # once flat, a late fee goes to the lead of the symbol's last fill
    r.fill(NOW, "B", "BTC", D(3), D(100))
    r.fill(NOW, "A", "BTC", D(-1), D(100))
    r.fee(NOW, "BTC", D("0.2"))
    assert r.totals(NOW)["A"]["all"].fees == D("0.7")
    assert r.shares("ETH") == {}  # never traded: nothing to attribute


def test_funding_goes_to_the_leads_that_held_the_symbol_at_its_time() -> None:
    r = CopyResults()
    r.fill(NOW, "A", "BTC", D(1), D(100))
    r.fill(NOW + 10, "B", "BTC", D(3), D(100))
    r.fill(NOW + 20, "A", "BTC", D(-1), D(100))  # A closed after the funding time below
    assert r.positions_at("BTC", NOW + 15) == {"A": D(1), "B": D(3)}
    assert r.positions_at("BTC", NOW + 5) == {"A": D(1)}
    assert r.positions_at("BTC", NOW - 5) == {}
    r.funding(NOW + 15, "BTC", D(-4))
    totals = r.totals(NOW + 30)
    assert (totals["A"]["all"].funding, totals["B"]["all"].funding) == (D(-1), D(-3))
    # a fee without an order goes to the lead of the nearest fill
    r.fee(NOW + 11, "BTC", D("0.2"))
    assert r.totals(NOW + 30)["B"]["all"].fees == D("0.2")


def test_a_position_closed_outside_copybot_is_booked_closed_at_the_price_given() -> None:
    r = CopyResults()
    r.fill(NOW, "A", "BTC", D(1), D(100))
    r.fill(NOW, "B", "BTC", D(2), D(100))
    assert r.closed_outside(NOW, "BTC", D(3), D(90)) == []  # the venue holds it all
    assert r.closed_outside(NOW, "BTC", D(5), D(90)) == []  # holds more: not known whose
    # a stop-loss at the venue closed half: each book keeps half, the rest closes at 90
    events = r.closed_outside(NOW, "BTC", D("1.5"), D(90))
    assert [(e.lead, e.realized, e.fills) for e in events] == [("A", D(-5), 0), ("B", D(-10), 0)]
    assert (r.holdings["A", "BTC"].qty, r.holdings["B", "BTC"].qty) == (D("0.5"), D(1))
    # then the rest, flat at the venue
    r.closed_outside(NOW, "BTC", D(0), D(110))
    assert r.holdings == {}
    totals = r.totals(NOW)
    assert (totals["A"]["all"].realized, totals["B"]["all"].realized) == (D(0), D(0))  # -5 + 5, -10 + 10
