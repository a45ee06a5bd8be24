"""The README's first command, as a user runs it (shortened): the demo exits 0 with every follower
on its targets and a summary that carries the measured figures; mid-run one follower joins and one
leaves through the runtime membership service, and the lead's AUM flows show both."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param(["--followers", "3"], id="built-in"),
        pytest.param(["--config", str(ROOT / "config" / "demo.yaml")], id="config-demo-yaml"),
        pytest.param(["--venues", "binance,bybit"], id="binance-lead-followers-on-both"),
        pytest.param(["--venues", "bybit,binance"], id="bybit-lead-followers-on-both"),
        pytest.param(["--venues", "bybit"], id="bybit-only"),
    ],
)
def test_demo_json_summary(extra: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bot.cli", "demo", "--seconds", "6", "--json", *extra],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["all_match"] is True
    assert summary["lead_fills"] > 0
    assert summary["follower_orders"] > 0
    assert summary["copy_lag_ms"]["samples"] > 0
    assert summary["copy_lag_ms"]["p50"] is not None
    assert all(f["match"] for f in summary["followers"].values())
    if "--venues" in extra and "," in extra[-1]:  # copy lag per venue pair, each measured
        lead_venue, other = extra[-1].split(",")
        pairs = summary["copy_lag_ms_by_venue"]
        assert set(pairs) == {f"{lead_venue}->{lead_venue}", f"{lead_venue}->{other}"}
        assert all(p["samples"] > 0 for p in pairs.values()), pairs
        assert all(0 < p["p50"] < 1000 for p in pairs.values()), pairs  # on each venue's clock
        assert {f["venue"] for f in summary["followers"].values()} == {lead_venue, other}
    check_membership_and_flows(summary)


def check_membership_and_flows(summary: dict[str, Any]) -> None:
    """The joiner copies and ends on target; the leaver (on_leave close) held positions, closed
    them and was retired; the AUM flows have every follower's join, the joiner's by the demo, and
    the leaver's leave, and the lead's AUM change is net flows + performance."""
    joined, left = summary["membership"]["joined"], summary["membership"]["left"]
    assert joined["id"] in summary["followers"]
    assert summary["followers"][joined["id"]]["match"] is True
    assert summary["followers"][joined["id"]]["orders"] > 0
    assert left["id"] not in summary["followers"]
    assert left["on_leave"] == "close"
    assert left["held_at_leave"], "the leaver held no position: its close was not shown"
    assert (left["flat"], left["retired"], left["positions_after"]) == (True, True, {})
    flows = summary["aum_flows"]
    kinds = [(f["kind"], f["follower"], f["actor"]) for f in flows["flows"]]
    assert ("join", joined["id"], "demo") in kinds
    assert ("leave", left["id"], "demo") in kinds
    assert ("join", left["id"], "start") in kinds
    amounts = {(f["kind"], f["follower"]): Decimal(f["amount"]) for f in flows["flows"]}
    assert amounts[("join", joined["id"])] == Decimal(joined["equity"])  # no allocation: its equity
    assert amounts[("leave", left["id"])] < 0
    assert (flows["joined"], flows["left"]) == (len(summary["followers"]) + 1, 1)
    assert Decimal(flows["start_aum"]) == 0  # the period reaches back before the daemon started
    start, end = Decimal(flows["start_aum"]), Decimal(flows["end_aum"])
    assert end - start == Decimal(flows["net_flows"]) + Decimal(flows["performance"])
    assert Decimal(flows["net_flows"]) == sum(amounts.values())
    # Performance is the counted capital's marks, fills and fees over seconds: small against AUM.
    assert abs(Decimal(flows["performance"])) < end / 100
