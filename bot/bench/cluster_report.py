"""The cluster benchmark's rows (`copybot bench --shards`) and their Markdown / JSON: one row per
layout (the single process, then N follower shards behind one lead feed), each with its copy lag,
fan-out rate, request weight per source address, daemon CPU per follower order and failover times.
Pure, like bot/bench/report.py, whose lag arithmetic it reuses."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bot.bench.report import FillLag, FillRows, Machine, machine_line

CLK_TCK_FALLBACK = 100


def cpu_seconds(pid: int, ticks_per_s: int = CLK_TCK_FALLBACK) -> float | None:
    """utime + stime of a live process (/proc/<pid>/stat fields 14 and 15), or None once it is gone.
    The command name (field 2) may hold spaces and parentheses: the fields are read after its last ')'."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / ticks_per_s  # fields 14, 15 counted from 1


@dataclass(frozen=True)
class AddressLoad:
    """What the exchange counted for one source address over the row: its busiest minute's weight
    and the rate-limit answers it got."""

    role: str  # who sent from it: "lead (bench)", "feed-a", "s1", "all", ...
    peak_weight_1m: int
    rejected_429: int
    bans_418: int


@dataclass(frozen=True)
class ClusterRow(FillRows):
    layout: str  # "single process" or "N shards"
    shards: int  # 0 for the single process
    followers: int
    fills: list[FillLag]
    limits: str  # "lifted (counted only)", "Binance 2,400/min per address", "scaled: 600/min ..."
    startup_s: float | None = None  # first spawn -> every process ready and every follower served
    cpu_s: float | None = None  # daemon CPU (feeds + shards) over the measured fills
    follower_orders: int = 0
    addresses: dict[str, AddressLoad] = field(default_factory=dict)
    rss_mb: float | None = None  # sum over the daemon processes of their peak RSS
    shard_failover_s: float | None = None  # kill -9 of a shard -> its sampled followers served again
    feed_failover_s: float | None = None  # kill -9 of the active feed -> the standby's first publish
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def cpu_us_per_order(self) -> float | None:
        if self.cpu_s is None or not self.follower_orders:
            return None
        return self.cpu_s * 1e6 / self.follower_orders


@dataclass(frozen=True)
class ClusterReport:
    machine: Machine
    rows: list[ClusterRow]
    fills_per_run: int
    command: str


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _addresses(row: ClusterRow) -> str:
    """Per daemon address: peak weight/min (429s, 418s); the bench's own lead client left out."""
    cells = [
        f"{a.role} {a.peak_weight_1m:,} ({a.rejected_429}, {a.bans_418})"
        for a in sorted(row.addresses.values(), key=lambda a: a.role)
        if not a.role.startswith("lead")
    ]
    return "<br>".join(cells) or "-"


HEAD = (
    "| layout | followers | fills | limits | start-up s | fan-out orders/s p50 "
    "| last-follower lag ms p50/p99 | first-follower lag ms p50 | missing orders "
    "| CPU µs per follower order | peak weight/min per address (429s, 418s) "
    "| shard failover s | feed failover s | peak RSS MB (sum) |\n"
    "|---|---:|---:|---|---:|---:|---|---:|---:|---:|---|---:|---:|---:|"
)


def row_line(r: ClusterRow) -> str:
    last = r.stats("last_ms")
    na = "n/a"
    cells = [
        r.layout,
        f"{r.followers:,}",
        str(len(r.fills)),
        r.limits,
        _fmt(r.startup_s, 1),
        _fmt(r.stats("orders_per_s").p50, 0),
        f"{_fmt(last.p50, 0)} / {_fmt(last.p99, 0)}",
        _fmt(r.stats("first_ms").p50, 0),
        str(r.missing_orders),
        _fmt(r.cpu_us_per_order, 0),
        _addresses(r),
        na if r.shards < 2 else _fmt(r.shard_failover_s, 2),
        na if r.shards < 1 else _fmt(r.feed_failover_s, 2),
        _fmt(r.rss_mb, 0),
    ]
    return "| " + " | ".join(cells) + " |"


def render_markdown(report: ClusterReport) -> str:
    lines = [
        "# copybot bench --shards",
        "",
        f"`{report.command}`",
        "",
        f"Machine: {machine_line(report.machine)}. {report.fills_per_run} lead fills per row, each "
        "fan-out complete before the next. Lags on the exchange's clock from the lead's trade to the "
        "follower order's arrival. CPU: utime + stime of the daemon processes (feeds and shards, or "
        "the single process) over the fills, divided by the follower orders placed. Weight: the "
        "busiest minute of each source address as the exchange counts it (Binance allows 2,400).",
        "",
        HEAD,
        *(row_line(r) for r in report.rows),
        "",
    ]
    for r in report.rows:
        for note in r.notes:
            lines.append(f"- {r.layout}: {note}")
    return "\n".join(lines) + "\n"


def to_json(report: ClusterReport) -> str:
    data: dict[str, Any] = {
        "command": report.command,
        "machine": asdict(report.machine),
        "fills_per_run": report.fills_per_run,
        "rows": [],
    }
    for r in report.rows:
        row = asdict(r)
        row["summary"] = {m: asdict(r.stats(m)) for m in ("first_ms", "last_ms", "orders_per_s")}
        row["missing_orders"] = r.missing_orders
        row["cpu_us_per_order"] = r.cpu_us_per_order
        data["rows"].append(row)
    return json.dumps(data, indent=2)
