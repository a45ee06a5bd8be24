"""The mark-to-market ledger a follower's equity comes from between account reads, on sequences
computed by hand."""

from __future__ import annotations

from decimal import Decimal as D

from bot.core.ledger import MarkToMarket

BTC, ETH = "BTC/USDT:USDT", "ETH/USDT:USDT"


def test_a_round_trip_realizes_its_pnl_less_fees() -> None:
    book = MarkToMarket()
    book.rebase(D("1000"), {}, {})
    book.fill(BTC, D("0.1"), D("60000"), D("3"), D(1))  # fee 0.1 x 60,000 x 0.0005
    assert book.equity({BTC: D("60000")}) == D("997")
    assert book.equity({BTC: D("61000")}) == D("1097")  # +0.1 x 1,000
    book.fill(BTC, D("-0.1"), D("60500"), D("3.025"), D(1))
    assert BTC not in book.positions
    # 1,000 + 0.1 x 500 - 3 - 3.025, whatever the mark does afterwards
    assert book.equity({BTC: D("10")}) == D("1043.975")
    assert book.fees == D("6.025")


def test_adding_and_flipping_books_at_each_fill_price() -> None:
    book = MarkToMarket()
    book.rebase(D("500"), {}, {})
    book.fill(ETH, D("2"), D("3000"), D(0), D(1))
    book.fill(ETH, D("1"), D("3100"), D(0), D(1))  # +2 x 100 booked; 3 held at 3,100
    assert book.booked_equity == D("700")
    assert book.equity({ETH: D("3000")}) == D("400")  # 700 - 3 x 100
    book.fill(ETH, D("-5"), D("3050"), D(0), D(1))  # 3 x -50 booked; short 2 at 3,050
    assert book.booked_equity == D("550")
    assert book.positions[ETH].qty == D("-2")
    assert book.equity({ETH: D("3000")}) == D("650")  # the short gains 2 x 50


def test_contract_size_scales_the_pnl() -> None:
    book = MarkToMarket()
    book.rebase(D("100"), {}, {})
    book.fill("1000PEPE/USDT:USDT", D("10"), D("0.012"), D(0), D("1000"))  # 10 contracts of 1,000
    assert book.equity({"1000PEPE/USDT:USDT": D("0.013")}) == D("110")


def test_rebase_adopts_the_venue_and_books_at_the_mark_or_entry() -> None:
    book = MarkToMarket()
    book.rebase(D("1000"), {}, {})
    book.fill(BTC, D("1"), D("100"), D("1"), D(1))
    # The account read says 1,020 with 1 BTC held (entry 100), when the mark is 120.
    book.rebase(D("1020"), {BTC: (D("1"), D("100"), D(1)), ETH: (D(0), D(0), D(1))}, {BTC: D("120")})
    assert book.fees == 0
    assert ETH not in book.positions  # flat rows are not held
    assert book.equity({BTC: D("120")}) == D("1020")
    assert book.equity({BTC: D("130")}) == D("1030")
    # With no mark yet, the venue's entry price is the booked price.
    book.rebase(D("1020"), {BTC: (D("1"), D("100"), D(1))}, {})
    assert book.equity({}) == D("1020")
    assert book.equity({BTC: D("101")}) == D("1021")


def test_a_missing_or_zero_mark_leaves_the_position_at_its_booked_price() -> None:
    book = MarkToMarket()
    book.rebase(D("50"), {BTC: (D("-1"), D("10"), D(1))}, {})
    assert book.equity({BTC: D(0)}) == D("50")
    assert book.equity({ETH: D("5")}) == D("50")
