"""`copybot bench --shards 2` end to end at a tiny size: the single process, then a real redis-server,
two lead feeds and two follower shards as subprocesses, each on its own loopback address; every
follower order arrives, each address is counted apart, and both failovers are measured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.bench.cluster_report import cpu_seconds

ROOT = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def test_bench_shards_measures_each_layout_and_both_failovers(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--shards", "2", "--followers", "6", "--fills", "3", "--out", str(out), "--baseline-max", "0"]
    done = subprocess.run(
        [sys.executable, "-m", "bot.bench", *args],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=170,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| 2 shards | 6 |" in (out / "shards.md").read_text()
    single, cluster = json.loads((out / "shards.json").read_text())["rows"]

    assert (single["layout"], single["shards"], cluster["shards"]) == ("single process", 0, 2)
    for row in (single, cluster):
        assert row["missing_orders"] == 0
        assert len(row["fills"]) == 3
        assert row["follower_orders"] == 18
        assert row["cpu_us_per_order"] > 0
        assert row["startup_s"] > 0
        assert row["summary"]["last_ms"]["p50"] > 0
    assert set(cluster["exit_codes"].values()) <= {0, None}  # None: the two killed with SIGKILL

    # Each process's requests reached the exchange from its own address; the shards placed orders.
    roles = {a["role"]: (addr, a["peak_weight_1m"]) for addr, a in cluster["addresses"].items()}
    assert {"feed-a", "feed-b", "s1", "s2"} <= set(roles)
    assert len({roles[r][0] for r in ("feed-a", "feed-b", "s1", "s2")}) == 4
    assert all(roles[s][1] > 0 for s in ("s1", "s2"))
    assert single["addresses"]
    assert "all" in {a["role"] for a in single["addresses"].values()}

    # The default timings: dead after 3 s without a heartbeat, 2 s grace, recvWindow + margin 3 s.
    assert single["shard_failover_s"] is None
    assert 3 < cluster["shard_failover_s"] < 30
    # A lease of 5 s: the standby publishes within the ttl plus a renewal period and a fill interval.
    assert 0 < cluster["feed_failover_s"] < 10


def test_cpu_seconds_reads_this_process_and_none_for_a_missing_one() -> None:
    before = cpu_seconds(os.getpid(), os.sysconf("SC_CLK_TCK"))
    sum(i * i for i in range(2_000_000))  # some CPU to count
    after = cpu_seconds(os.getpid(), os.sysconf("SC_CLK_TCK"))
    assert before is not None
    assert after is not None
    assert after > before
    assert cpu_seconds(2**22 + 12345) is None
