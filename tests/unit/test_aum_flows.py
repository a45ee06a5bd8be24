"""AUM flows against performance, on sequences computed by hand (docs/aum.md, "Flows and
performance"): joins, a withdrawal, price moves, a leave with a position open, a halt, the cap
clipping, a restart; and retention (median time followed with censoring, churn)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bot.aum.flow_report import flows_json, parse_period
from bot.aum.flow_tracker import flow_from_row
from bot.aum.flows import Flow, FlowKind, aum_at, periods, split
from bot.aum.retention import Spell, churn, retention, spells
from bot.aum.service import AumService, AumSettings
from bot.core.sizing import Sizing, SizingMode
from bot.core.types import TradingState
from bot.journal.store import Journal

D = Decimal


def follower(fid: str, equity: str, allocation: str | None = None) -> SimpleNamespace:
    sizing = (
        Sizing(SizingMode.ALLOCATION, allocation=D(allocation))
        if allocation
        else Sizing(SizingMode.EQUITY_RATIO)
    )
    return SimpleNamespace(id=fid, settings=SimpleNamespace(sizings={"L": sizing}),
                           balance=SimpleNamespace(equity=D(equity)), state=TradingState.ACTIVE)  # fmt: skip


class Desk:
    """A stand-in engine with one lead L and the real journal behind an AUM service."""

    def __init__(self, journal: Journal, cap: str | None = None) -> None:
        self.journal = journal
        self.view = SimpleNamespace(followers={}, followers_of={"L": []},
                                    leads={"L": SimpleNamespace(equity=D(100_000))}, marks={})  # fmt: skip
        self.aum = AumService(self.view, journal, AumSettings(cap=None if cap is None else D(cap)))

    def join(self, f: SimpleNamespace) -> None:
        self.view.followers[f.id] = f
        self.view.followers_of["L"].append(f)

    def leave(self, fid: str) -> None:
        self.view.followers_of["L"].remove(self.view.followers[fid])

    def equity(self, **values: str) -> None:
        for fid, value in values.items():
            self.view.followers[fid].balance.equity = D(value)

    def flows(self) -> list[Flow]:
        self.journal.flush()
        return [flow_from_row(r) for r in self.journal.aum_flows("L")]

    def samples(self) -> list[tuple[int, Decimal]]:
        self.journal.flush()
        return [(p.ts, p.aum) for p in self.journal.aum_history("L")]


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    j = Journal.open(tmp_path / "journal.sqlite")
    yield j
    j.close()


def run_sequence(desk: Desk) -> None:
    """The sequence of docs/aum.md's worked example. A: allocation 1000 of 2000 equity; B: no
    allocation (its whole equity), C joins later; B leaves with a position open."""
    aum = desk.aum
    desk.join(follower("A", "2000", "1000"))
    desk.join(follower("B", "500"))
    aum.snapshot(1000, actor="start")  # first observation: A +1000, B +500; AUM 1500
    desk.equity(B="600")
    aum.snapshot(2000)  # price move, no flow: AUM 1600
    desk.join(follower("C", "800"))
    aum.snapshot(3000, actor="api:ops")  # C +800: AUM 2400
    desk.view.followers["A"].settings.sizings["L"] = Sizing(SizingMode.ALLOCATION, allocation=D(700))
    aum.snapshot(4000, actor="api:ops")  # A withdraws 300: AUM 2100
    desk.equity(A="1900", B="550", C="700")
    aum.snapshot(5000)  # prices: AUM 700 + 550 + 700 = 1950
    desk.equity(B="520")  # B's open position marked down before it leaves
    desk.leave("B")
    assert aum.observe_flows(6000, actor="api:ops")[0].amount == D(-520)  # AUM 1400
    desk.equity(B="400", C="750")  # B's position no longer counts; C gains 50
    aum.snapshot(7000)  # AUM 1450


def test_flows_and_performance_on_a_known_sequence(journal: Journal) -> None:
    desk = Desk(journal)
    run_sequence(desk)
    flows = desk.flows()
    assert [(f.ts, f.follower, f.kind, f.amount, f.actor) for f in flows] == [
        (1000, "A", FlowKind.JOIN, D(1000), "start"),
        (1000, "B", FlowKind.JOIN, D(500), "start"),
        (3000, "C", FlowKind.JOIN, D(800), "api:ops"),
        (4000, "A", FlowKind.ALLOCATION, D(-300), "api:ops"),
        (6000, "B", FlowKind.LEAVE, D(-520), "api:ops"),
    ]
    samples = desk.samples()
    assert samples == [(1000, D(1500)), (2000, D(1600)), (3000, D(2400)), (4000, D(2100)),
                       (5000, D(1950)), (6000, D(1400)), (7000, D(1450))]  # fmt: skip

    whole = split("L", samples, flows, 0, 7000)
    assert (whole.start_aum, whole.end_aum) == (D(0), D(1450))
    assert (whole.inflows, whole.outflows, whole.net_flows) == (D(2300), D(-820), D(1480))
    # B +100 -50 -30 while it counted, C -100 +50, A none (its allocation binds): -30
    assert whole.performance == D(-30)
    assert (whole.joined, whole.left) == (3, 1)

    middle = split("L", samples, flows, 2500, 5500)
    assert (middle.start_aum, middle.end_aum, middle.net_flows) == (D(1600), D(1950), D(500))
    assert middle.performance == D(-150)  # C -100, B -50

    last = split("L", samples, flows, 5500, 7000)
    assert (last.start_aum, last.end_aum, last.net_flows) == (D(1950), D(1450), D(-520))
    assert last.performance == D(20)  # B -30 until it left, C +50
    # The periods add up: the whole change is the sum of the parts' flows and performance.
    first = split("L", samples, flows, 0, 2500)
    parts = (first, middle, last)
    assert sum((p.net_flows for p in parts), D(0)) == whole.net_flows
    assert sum((p.performance for p in parts), D(0)) == whole.performance


def test_a_flow_belongs_to_the_period_its_sample_is_in() -> None:
    samples = [(1000, D(100)), (2000, D(300))]
    flows = [Flow(2000, "L", "x", FlowKind.JOIN, D(200))]
    assert aum_at(samples, 999) == 0
    assert aum_at(samples, 2000) == D(300)
    before = split("L", samples, flows, 1000, 1999)
    at = split("L", samples, flows, 1999, 2000)
    after = split("L", samples, flows, 2000, 3000)
    assert (before.net_flows, before.performance) == (0, 0)
    assert (at.net_flows, at.performance) == (D(200), 0)
    assert (after.net_flows, after.performance, after.start_aum) == (0, 0, D(300))


def test_halt_and_resume_are_flows_not_losses(journal: Journal) -> None:
    desk = Desk(journal)
    desk.join(follower("A", "1000"))
    desk.aum.snapshot(1000)
    desk.view.followers["A"].state = TradingState.HALTED
    desk.equity(A="900")  # its loss before the halt was seen stays performance
    (halt,) = desk.aum.observe_flows(2000)
    assert (halt.kind, halt.amount) == (FlowKind.STATE, D(-900))
    desk.view.followers["A"].state = TradingState.REDUCE_ONLY  # still counted: exits are copied
    (resume,) = desk.aum.observe_flows(3000)
    assert (resume.kind, resume.amount) == (FlowKind.STATE, D(900))
    s = split("L", desk.samples(), desk.flows(), 1000, 3000)
    assert (s.net_flows, s.performance, s.end_aum) == (0, D(-100), D(900))


def test_the_cap_clipping_is_a_flow_with_its_reason(journal: Journal) -> None:
    desk = Desk(journal, cap="1500")
    desk.join(follower("A", "1000"))
    desk.join(follower("B", "1000"))
    desk.aum.apply_cap()
    desk.aum.snapshot(1000)
    joins = {f.follower: f for f in desk.flows()}
    assert joins["A"].amount == D(1000)
    assert joins["B"].amount == D(500)  # admitted after A, up to the cap
    assert joins["B"].detail is not None
    assert joins["B"].detail["requested"] == "1000"
    desk.leave("A")
    desk.aum.observe_flows(2000)  # A leaves: -1000
    desk.aum.apply_cap()  # room again: B is admitted whole, +500
    desk.aum.observe_flows(3000)
    later = [(f.follower, f.kind, f.amount) for f in desk.flows() if f.ts > 1000]
    assert later == [("A", FlowKind.LEAVE, D(-1000)), ("B", FlowKind.CAP, D(500))]


def test_a_restart_counts_only_who_came_and_went_while_stopped(journal: Journal) -> None:
    desk = Desk(journal)
    desk.join(follower("A", "1000"))
    desk.join(follower("B", "400"))
    desk.aum.snapshot(1000)
    journal.flush()
    again = Desk(journal)  # a new process on the same journal: B removed from the file, C added
    again.join(follower("A", "1100"))  # A gained 100 while the daemon was stopped
    again.join(follower("C", "300"))
    again.aum.snapshot(5000, actor="daemon")
    restart = [(f.follower, f.kind, f.amount, f.actor) for f in again.flows() if f.ts == 5000]
    assert restart == [("B", FlowKind.LEAVE, D(-400), "start"), ("C", FlowKind.JOIN, D(300), "start")]
    s = split("L", again.samples(), again.flows(), 1000, 5000)
    assert (s.start_aum, s.end_aum, s.net_flows, s.performance) == (D(1400), D(1400), D(-100), D(100))


def test_retention_median_with_censoring_and_churn() -> None:
    day = 86_400_000
    flows = [
        Flow(0, "L", "a", FlowKind.JOIN, D(1)),
        Flow(0, "L", "b", FlowKind.JOIN, D(1)),
        Flow(1 * day, "L", "c", FlowKind.JOIN, D(1)),
        Flow(2 * day, "L", "a", FlowKind.LEAVE, D(-1)),  # a: 2 days
        Flow(3 * day, "L", "c", FlowKind.LEAVE, D(-1)),  # c: 2 days
        Flow(3 * day, "L", "d", FlowKind.LEAVE, D(-1)),  # d: there before flows, from origin 0: 3 days
        Flow(4 * day, "L", "e", FlowKind.JOIN, D(1)),
    ]
    all_spells = spells("L", flows, present=["b", "e", "f"], origin_ms=0)
    assert Spell("b", 0, None) in all_spells  # still following: censored
    assert Spell("f", 0, None) in all_spells  # following now, no join recorded
    kept = retention(all_spells, now_ms=5 * day)
    # lengths: a 2, c 2, d 3, b 5 (censored), e 1 (censored), f 5 (censored): nearest-rank median 2
    assert (kept.spells, kept.censored, kept.following) == (6, 3, 3)
    assert kept.median_followed_ms == 2 * day
    # As of day 2.5 (a period's end): e has not joined yet; b, c, d and f are open then (censored at
    # 2.5): lengths a 2, c 1.5, b d f 2.5: median 2.5
    then = retention(all_spells, now_ms=5 * day // 2)
    assert (then.spells, then.censored, then.median_followed_ms) == (5, 4, 5 * day // 2)
    # day 2 to 3: b, c, d, f followed at its start (a left at day 2: not); c and d left: 2 / 4
    assert churn(all_spells, 2 * day, 3 * day) == D("0.5")
    assert churn(all_spells, 4 * day, 5 * day) == 0
    assert churn([], 0, day) is None


def test_periods_and_report(journal: Journal) -> None:
    assert periods(0, 100, 30, 10) == [(-20, 10), (10, 40), (40, 70), (70, 100)]
    assert periods(0, 100, 30, 2) == [(40, 70), (70, 100)]
    assert parse_period("7d") == 7 * 86_400_000
    with pytest.raises(ValueError, match="unit"):
        parse_period("7 days")
    desk = Desk(journal)
    run_sequence(desk)
    journal.flush()
    report: dict[str, Any] = flows_json(journal, now_ms=7000, period="3s", most=3, present={"L": ["A", "C"]})
    rows = report["leads"]["L"]["periods"]
    assert [(r["start_ms"], r["end_ms"]) for r in rows] == [(-2000, 1000), (1000, 4000), (4000, 7000)]
    assert [(r["start_aum"], r["net_flows"], r["performance"], r["end_aum"]) for r in rows] == [
        ("0", "1500", "0", "1500"),
        ("1500", "500", "100", "2100"),
        ("2100", "-520", "-130", "1450"),
    ]
    assert [(r["joined"], r["left"], r["followers_at_start"]) for r in rows] == [
        (2, 0, 0),
        (1, 0, 2),
        (0, 1, 3),
    ]
    assert rows[2]["churn"] == str(D(1) / D(3))
    kept = report["leads"]["L"]["retention"]
    assert kept == {"following": 2, "spells": 3, "censored": 2, "median_followed_s": 5.0}
    assert report["leads"]["L"]["recent"][-1]["kind"] == "leave"


def test_the_report_reads_only_its_window_and_all_joins_and_leaves(journal: Journal) -> None:
    desk = Desk(journal)
    run_sequence(desk)
    journal.flush()
    # One period of 1 s ending at 7000: (6000, 7000]. The sample at 6000 is its start, the leave at
    # 6000 is before it; retention still sees every join and leave, offline (no `present`).
    report = flows_json(journal, now_ms=7000, period="1s", most=1)
    (row,) = report["leads"]["L"]["periods"]
    assert (row["start_aum"], row["net_flows"], row["performance"], row["end_aum"]) == (
        "1400",
        "0",
        "50",
        "1450",
    )
    assert (row["followers_at_start"], row["churn"]) == (2, "0")
    assert report["leads"]["L"]["retention"]["spells"] == 3
    assert report["leads"]["L"]["recent"] == []  # no flow within the period
    assert journal.aum_origin("L") == 1000
    assert journal.aum_leads() == ["L"]


def test_plot_stacks_performance_on_flows_going_the_same_way(tmp_path: Path) -> None:
    from bot.aum.plot import plot_aum, stacked

    assert stacked(D(500), D(20)) == (0, D(500))  # a gain on inflows: on top of them
    assert stacked(D(-520), D(-30)) == (0, D(-520))  # a loss with outflows: below them
    assert stacked(D(800), D(-150)) == (0, 0)  # opposite ways: each from the axis
    day = 86_400_000
    bars = {"L": [(day * (i + 1), day, D(100 * i - 200), D(i * 7 - 10)) for i in range(5)], "M": []}
    target = tmp_path / "flows.png"
    plot_aum([(day, "L", D(1000))], [], str(target), flows=bars)
    assert target.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    plot_aum([], [], str(tmp_path / "none.png"), flows={})  # no history yet: still a picture
