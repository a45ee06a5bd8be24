"""Realized slippage aggregates and fan-out fairness."""

from __future__ import annotations

import random
from decimal import Decimal

import pytest

from bot.aum.slippage import SlippageBook, SlippageRecord, summarize
from bot.core.fanout import fanout_order
from bot.core.stats import percentile
from bot.core.types import Side

D = Decimal


def rec(
    trigger: str, follower: str, bps: str, notional: str, rank: int = 1, symbol: str = "BTC"
) -> SlippageRecord:
    return SlippageRecord("L1", trigger, follower, symbol, D(bps), D(notional), rank)


def test_record_fill_measures_against_the_lead_price() -> None:
    book = SlippageBook()
    buy = book.record_fill(
        lead="L1",
        trigger="t1",
        follower="a",
        symbol="BTC",
        side=Side.BUY,
        lead_price=D(100),
        avg_price=D("100.1"),
        qty=D(2),
        rank=1,
    )
    sell = book.record_fill(
        lead="L1",
        trigger="t1",
        follower="b",
        symbol="BTC",
        side=Side.SELL,
        lead_price=D(100),
        avg_price=D("100.1"),
        qty=D(-2),
        rank=2,
    )
    assert (buy.bps, buy.notional) == (D(10), D("200.2"))  # paid more: worse
    assert sell.bps == D(-10)  # sold higher: better
    assert len(book) == 2


def test_aggregates_per_lead_follower_symbol() -> None:
    book = SlippageBook()
    # t1: a 2 bps on 300, b 4 bps on 100; t2: a 6 bps on 100 (ETH).
    for r in [
        rec("t1", "a", "2", "300"),
        rec("t1", "b", "4", "100", 2),
        rec("t2", "a", "6", "100", symbol="ETH"),
    ]:
        book.add(r)
    lead = book.by_lead()["L1"]
    # mean (2+4+6)/3 = 4; weighted (2*300 + 4*100 + 6*100) / 500 = 3.2;
    # nearest rank over [2, 4, 6]: p50 = ceil(1.5) = 2nd = 4, p90 = ceil(2.7) = 3rd = 6.
    assert (lead.count, lead.mean, lead.weighted_mean, lead.p50, lead.p90, lead.max) == (
        3,
        D(4),
        D("3.2"),
        D(4),
        D(6),
        D(6),
    )
    assert book.by_follower()["a"].mean == 4
    assert book.by_follower()["b"].count == 1
    assert set(book.by_symbol()) == {"BTC", "ETH"}
    assert book.by_symbol()["ETH"].max == 6


def test_summarize_and_percentile_edges() -> None:
    with pytest.raises(ValueError, match="no slippage records"):
        summarize([])
    assert percentile([], D("0.5")) is None  # summarize refuses an empty window before asking
    only = summarize([rec("t", "a", "-3", "0")])
    assert (only.weighted_mean, only.p50, only.p90) == (D(-3), D(-3), D(-3))


def test_bounded_window_keeps_the_most_recent() -> None:
    book = SlippageBook(max_records=2)
    for i in range(5):
        book.add(rec(f"t{i}", "a", str(i), "1"))
    assert len(book) == 2
    assert book.by_follower()["a"].mean == D("3.5")


def test_fairness_ties_share_ranks_and_single_follower_fills_are_skipped() -> None:
    book = SlippageBook()
    for r in [
        rec("t1", "a", "1", "1"),
        rec("t1", "b", "1", "1", 2),
        rec("t1", "c", "5", "1", 3),
        rec("t2", "a", "9", "1"),
    ]:
        book.add(r)
    report = book.fairness()
    by = {row.follower: row for row in report.followers}
    assert (by["a"].mean_rank, by["b"].mean_rank, by["c"].mean_rank) == (D("1.5"), D("1.5"), D(3))
    assert by["a"].fills == 1  # t2 had no other follower
    assert by["a"].mean_bps == 5  # but its slippage still counts in the mean
    assert report.spread_bps == D(5) - D(1)
    assert book.fairness(lead="nobody").followers == ()


def simulate(order_of: str, fills: int, followers: list[str]) -> SlippageBook:
    # Slippage grows with send position (each earlier follower took liquidity), plus a little noise.
    noise = random.Random(7)
    book = SlippageBook()
    for n in range(fills):
        trigger = f"trade-{n}"
        order = fanout_order(followers, trigger) if order_of == "random" else list(followers)
        for position, follower in enumerate(order, start=1):
            bps = D(position) * D("0.5") + D(noise.randint(0, 10)) / 100
            book.add(SlippageRecord("L1", trigger, follower, "BTC", bps, D(100), position))
    return book


def test_random_fanout_spreads_the_last_place_while_a_fixed_order_does_not() -> None:
    followers = ["f1", "f2", "f3", "f4", "f5"]
    fixed = {r.follower: r for r in simulate("fixed", 1000, followers).fairness().followers}
    assert fixed["f5"].mean_rank == 5  # always last
    assert fixed["f1"].mean_rank == 1

    fair = simulate("random", 1000, followers).fairness()
    # Expected mean rank 3 for everyone; its standard error over 1000 fills is about 0.045.
    for row in fair.followers:
        assert D("2.7") < row.mean_rank < D("3.3"), row
    assert fair.spread_bps < D("0.3")  # versus 2 bps (0.5 x 4 positions) with the fixed order


def test_fanout_order_is_a_reproducible_permutation() -> None:
    followers = [f"f{i}" for i in range(20)]
    first = fanout_order(followers, "trade-1")
    assert sorted(first) == sorted(followers)
    assert fanout_order(followers, "trade-1") == first  # a replayed fill keeps its order
    assert fanout_order(followers, "trade-2") != first
    assert followers == [f"f{i}" for i in range(20)]  # input untouched
    rng = random.Random(1)
    assert sorted(fanout_order(followers, rng)) == sorted(followers)
