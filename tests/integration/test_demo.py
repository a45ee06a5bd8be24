"""The README's first command, as a user runs it (shortened): the demo exits 0 with every follower
on its targets and a summary that carries the measured figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
