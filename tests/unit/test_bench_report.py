"""The benchmark's arithmetic and rendering, on hand-made exchange records."""

from __future__ import annotations

import json

import pytest

from bot.bench.report import (
    FillLag,
    Machine,
    Report,
    RunResult,
    fill_lags,
    render_markdown,
    stats,
    to_json,
)

MS = 1_000_000
T0 = 1_700_000_000_000_000_000


def cids(trade_id: str) -> list[str]:
    return [f"c-{trade_id}-{i}" for i in range(3)]


def order(cid: str, recv_ms: float, ack_ms: float) -> dict[str, object]:
    return {"clientOrderId": cid, "recvTimeNs": T0 + int(recv_ms * MS), "ackTimeNs": T0 + int(ack_ms * MS)}


def test_stats_skips_missing_values() -> None:
    s = stats([3.0, None, 1.0, 2.0])
    assert (s.p50, s.p99, s.max, s.samples) == (2.0, 3.0, 3.0, 3)
    assert stats([None]).samples == 0


def test_fill_lags_first_last_ack_and_rate_on_the_exchange_clock() -> None:
    trades = [
        {"id": 11, "orderId": 1, "timeNs": T0},
        {"id": 12, "orderId": 1, "timeNs": T0 + 1 * MS},  # same lead order walking the book
        {"id": 21, "orderId": 2, "timeNs": T0 + 1000 * MS},
    ]
    orders = [
        order("c-12-0", 4, 6),  # keyed on the order's second trade: still this fill
        order("c-11-1", 2, 3),
        order("c-11-2", 12, 20),
        order("c-21-0", 1003, 1004),
        order("unrelated", 1, 1),
        {"clientOrderId": "", "recvTimeNs": T0, "ackTimeNs": T0},
    ]
    first, second = fill_lags(trades, orders, followers=3, client_ids=cids)
    assert first.lead_order_id == "1"
    assert (first.orders, first.first_ms, first.last_ms) == (3, 2.0, 12.0)
    assert (first.first_ack_ms, first.last_ack_ms) == (3.0, 20.0)
    assert first.orders_per_s == pytest.approx(3 / 0.010)
    assert (second.orders, second.first_ms, second.last_ms) == (1, 3.0, 3.0)
    assert second.orders_per_s is None  # one order spans no time
    assert RunResult("copybot", 3, [first, second]).missing_orders == 2


def test_fill_lags_of_a_fill_nobody_copied() -> None:
    (only,) = fill_lags([{"id": 5, "orderId": 9, "timeNs": T0}], [], followers=2, client_ids=cids)
    assert (only.orders, only.first_ms, only.last_ms, only.orders_per_s) == (0, None, None, None)


def lag(first: float, last: float) -> FillLag:
    return FillLag("1", T0, 1, 1, first, last, first + 1, last + 1, 100.0)


def sample_report() -> Report:
    copybot = RunResult("copybot", 1, [lag(2.0, 2.0), lag(4.0, 4.0), lag(3.0, 3.0)], startup_s=1.25,
                        rss_mb=80.4, internal_lag_ms={"p50": 0.4, "p99": 0.9}, exit_code=0)  # fmt: skip
    baseline = RunResult("baseline", 1, [lag(600.0, 600.0), lag(300.0, 300.0)], notes=("InvalidOrder: x",))
    machine = Machine(2, "Test CPU", 3.9, "3.11.7")
    return Report(machine, [copybot, baseline], 3, {"tottime": ["ncalls  tottime  f"]})


def test_ratio_of_baseline_over_copybot_at_one_follower() -> None:
    # p50 baseline 300 (nearest rank of [300, 600]) over p50 copybot 3.
    assert sample_report().ratio_at_one() == pytest.approx(100.0)
    # A cross-venue row is not the same-venue copier the polling baseline compares with.
    cross = RunResult("copybot", 1, [lag(30.0, 30.0)], venues="binance->bybit")
    report = sample_report()
    assert Report(report.machine, [cross, *report.results], 3).ratio_at_one() == pytest.approx(100.0)
    only_ours = Report(Machine(1, "x", 1.0, "3.11"), sample_report().results[:1], 3)
    assert only_ours.ratio_at_one() is None


def test_markdown_has_machine_table_rows_ratio_notes_and_profile() -> None:
    text = render_markdown(sample_report())
    assert "2 CPUs (Test CPU), 3.9 GB RAM, Python 3.11.7" in text
    rows = [
        line for line in text.splitlines() if line.startswith("| copybot") or line.startswith("| baseline")
    ]
    assert rows[0].split(" | ")[:6] == [
        "| copybot", "binance->binance", "1", "3", "3.0 / 4.0 / 4.0", "3.0 / 4.0 / 4.0",
    ]  # fmt: skip
    assert "0.40 / 0.90" in rows[0]
    assert "1.25" in rows[0]
    assert "| 80 |" in rows[0]
    assert rows[1].split(" | ")[4] == "300.0 / 600.0 / 600.0"
    assert "first-follower lag p50 at 1 follower: 100x" in text
    assert "baseline binance->binance N=1: InvalidOrder: x" in text
    assert "top functions by tottime" in text
    assert "ncalls  tottime  f" in text


def test_json_round_trips_runs_and_summaries() -> None:
    data = json.loads(to_json(sample_report()))
    assert data["machine"]["cpus"] == 2
    assert data["ratio_baseline_over_copybot_first_p50_n1"] == pytest.approx(100.0)
    ours, theirs = data["runs"]
    assert ours["copier"] == "copybot"
    assert ours["exit_code"] == 0
    assert ours["summary"]["first_ms"] == {"p50": 3.0, "p99": 4.0, "max": 4.0, "samples": 3}
    assert theirs["summary"]["last_ms"]["max"] == 600.0
    assert len(ours["fills"]) == 3
    assert ours["missing_orders"] == 0


def test_limits_tally_peaks_per_minute_sums_429s_over_minutes_and_counts_new_bans() -> None:
    from bot.bench.report import LimitsTally

    def snap(used: int, rejected: int, bans: int) -> dict[str, object]:
        return {"addresses": {"127.0.0.1": {"usedWeight": used, "rejected429": rejected, "bans": bans}}}

    tally = LimitsTally()
    tally.observe(snap(100, 0, 1), window=10)  # a ban from before the run does not count
    tally.observe(snap(2500, 3, 1), window=10)
    tally.observe(snap(40, 0, 2), window=11)  # new minute: 3 429s banked, one new ban
    tally.observe(snap(900, 2, 2), window=11)
    assert tally.totals() == (2500, 5, 1)


def test_markdown_shows_weight_and_rate_limit_columns() -> None:
    run = RunResult("copybot", 10, [], peak_weight_1m=1234, rejected_429=0, bans_418=0)
    text = render_markdown(Report(Machine(2, "cpu", 1.0, "3.11"), [run], 1))
    assert "peak weight/min per address | 429s | 418s |" in text
    assert "| 1,234 | 0 | 0 |" in text
