"""`copybot aum`: leads ranked by AUM (or any column) beside returns, drawdown, win rate, copier PnL
and projected slippage, then per lead and period the AUM change split into net flows and
performance with the followers who joined and left (`--period`, `--periods`; docs/aum.md); from a
running daemon's /aum, or from the journal file when it is stopped.

Offline (--journal), the report is bot.aum.report.journal_report: what only the running process
knows (the lead's equity series, copier PnL, live projections, slippage aggregates) is missing.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.aum.definition import RANK_COLUMNS
from bot.aum.flow_report import DEFAULT_PERIOD, DEFAULT_PERIODS, MAX_PERIODS, parse_period
from bot.aum.report import journal_report
from bot.commands.common import CommandError

DEFAULT_API = "http://127.0.0.1:8787"
_PERCENT = {"return_7d", "return_30d", "return_90d", "return_all", "max_drawdown", "win_rate"}
_COLUMNS = [
    ("aum", "AUM"), ("followers", "followers"), ("return_7d", "7d"), ("return_30d", "30d"),
    ("return_90d", "90d"), ("return_all", "all"), ("pnl_realized", "realized PnL"),
    ("max_drawdown", "max DD"), ("win_rate", "win rate"), ("trades", "trades"),
    ("copier_pnl", "copier PnL"), ("projected_slippage_bps", "slip 1x bps"), ("cap", "AUM cap"),
]  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--api", default=None, help=f"the daemon's API base URL (default {DEFAULT_API})")
    source.add_argument("--journal", default=None, help="read this journal file (when the daemon is stopped)")
    parser.add_argument("--by", default="aum", choices=RANK_COLUMNS, help="rank by this column (default aum)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--plot", metavar="FILE.png", default=None,
                        help="write AUM, slippage, and flows vs performance plots")  # fmt: skip
    parser.add_argument("--period", default=DEFAULT_PERIOD,
                        help=f"length of a period of the flows table: 30s, 15m, 4h, 1d, 7d, 2w... (default "
                        f"{DEFAULT_PERIOD})")  # fmt: skip
    parser.add_argument("--periods", type=int, default=DEFAULT_PERIODS,
                        help=f"how many periods back from now (default {DEFAULT_PERIODS})")  # fmt: skip


def fetch_report(
    api: str, by: str, period: str = DEFAULT_PERIOD, periods: int = DEFAULT_PERIODS
) -> dict[str, Any]:
    if not api.startswith(("http://", "https://")):
        raise CommandError(f"--api {api}: expected an http:// or https:// URL, e.g. {DEFAULT_API}")
    query = urllib.parse.urlencode({"by": by, "period": period, "periods": periods})
    url = f"{api.rstrip('/')}/aum?{query}"
    req = urllib.request.Request(url)  # noqa: S310 - operator-given API URL
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            data: dict[str, Any] = json.loads(resp.read())
            return data
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"{url}: HTTP {exc.code}: {exc.read().decode(errors='replace')[:200]}") from None
    except urllib.error.URLError as exc:
        raise RuntimeError(f"{url}: {exc.reason} (is the daemon running? else use --journal)") from None


def report_from_journal(
    path: str,
    by: str,
    *,
    now_ms: int | None = None,
    period: str = DEFAULT_PERIOD,
    periods: int = DEFAULT_PERIODS,
) -> dict[str, Any]:
    from bot.journal.store import Journal  # the daemon's writer; only needed offline

    # Opening a journal creates it (and its folders): a mistyped path must be an error, not a new
    # empty journal next to the real one.
    if not Path(path).is_file():
        raise CommandError(f"no journal at {path} (the daemon's journal.path; see copybot check-config)")
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    with Journal.open(path) as journal:
        return journal_report(journal, by, now_ms=now_ms, source=f"journal {path}", period=period,
                              periods=periods)  # fmt: skip


def _fixed(value: Any, places: int, suffix: str = "") -> str:
    amount = Decimal(value).quantize(Decimal(1).scaleb(-places))
    return f"{abs(amount) if amount == 0 else amount:,.{places}f}{suffix}"  # never "-0.00"


def _cell(name: str, value: Any) -> str:
    if value is None:
        return "-"
    if name in _PERCENT:
        return _fixed(Decimal(value) * 100, 2, " %")
    if name in ("followers", "trades"):
        return str(value)
    if name == "projected_slippage_bps":
        return _fixed(value, 1)
    return _fixed(value, 2)


# What fits in 80 columns; the rest is in --json (and in a wider terminal, or piped).
_NARROW = ("aum", "followers", "return_30d", "return_all", "max_drawdown", "copier_pnl")


def print_table(report: dict[str, Any]) -> None:
    """A table on a terminal (the columns that fit its width); plain aligned text when piped."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    piped = not console.is_terminal
    if piped:
        console = Console(width=400, color_system=None, highlight=False)
    wide = piped or console.width >= 150
    columns = [(n, t) for n, t in _COLUMNS if wide or n in _NARROW]
    table = Table(title=f"Leads by {report['by']}", title_justify="left", box=None if piped else box.SIMPLE)
    table.add_column("#", justify="right")
    table.add_column("lead", no_wrap=True)
    for _, title in columns:
        table.add_column(title, justify="right", no_wrap=True)
    for i, lead in enumerate(report["leads"], start=1):
        table.add_row(str(i), lead["lead"], *(_cell(name, lead.get(name)) for name, _ in columns))
    console.print(table)
    if not wide:
        console.print("(more columns in a wider terminal, or with --json)")
    for r in report.get("refused") or []:
        console.print(f"capped: {r['follower']} -> {r['lead']}: {r['reason']}")
    by_lead = (report.get("slippage") or {}).get("by_lead") or {}
    for lead, s in by_lead.items():
        console.print(f"realized slippage {lead}: mean {_fixed(s['mean'], 2)} bps, "
                      f"p90 {_fixed(s['p90'], 2)} bps over {s['count']} fills")  # fmt: skip


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86_400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def _when(ts_ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts_ms / 1000))


def print_flows(report: dict[str, Any]) -> None:
    """Per lead and period: AUM change = net flows + performance, who joined and left, churn; then
    the lead's retention. Plain aligned text (it is read in a terminal and in logs alike)."""
    flows = report.get("flows") or {}
    for lead, block in (flows.get("leads") or {}).items():
        kept = block["retention"]
        print(f"\nAUM change of {lead} per {flows['period']} (UTC, period ending): "
              "end AUM - start AUM = net flows + performance")  # fmt: skip
        print(f"  {'period ending':<19} {'start AUM':>14} {'net flows':>13} {'performance':>13} "
              f"{'end AUM':>14} {'joined':>6} {'left':>5} {'churn':>8} {'median followed':>15}")  # fmt: skip
        for row in block["periods"]:
            rate = "-" if row["churn"] is None else _fixed(Decimal(row["churn"]) * 100, 1, " %")
            amounts = (_fixed(row[k], 2) for k in ("start_aum", "net_flows", "performance", "end_aum"))
            print(f"  {_when(row['end_ms']):<19} {next(amounts):>14} {next(amounts):>13} {next(amounts):>13} "
                  f"{next(amounts):>14} {row['joined']:>6} {row['left']:>5} {rate:>8} "
                  f"{_duration(row['median_followed_s']):>15}")  # fmt: skip
        print(f"  followers now {kept['following']}; median time followed "
              f"{_duration(kept['median_followed_s'])} over {kept['spells']} spells, {kept['censored']} of "
              "them still following (counted up to now: a lower bound)")  # fmt: skip


def slippage_points(report: dict[str, Any]) -> list[tuple[Decimal, Decimal]]:
    """From the journal, every follower fill; from the API, one point per lead (its AUM now against
    its mean realized slippage), as the daemon's report carries aggregates, not single fills."""
    if "slippage_points" in report:
        return [(Decimal(a), Decimal(b)) for a, b in report["slippage_points"]]
    by_lead = (report.get("slippage") or {}).get("by_lead") or {}
    aum = {lead["lead"]: Decimal(lead["aum"]) for lead in report["leads"]}
    return [(aum[lead], Decimal(s["mean"])) for lead, s in by_lead.items() if lead in aum]


def require_plot_extra() -> None:
    """--plot needs matplotlib, the `plot` extra: say so before any work is done."""
    try:
        import matplotlib  # noqa: F401 - imported again by bot.aum.plot, from the module cache
    except ImportError:
        raise CommandError("--plot needs matplotlib, the plot extra: pip install 'copybot[plot]'") from None


def flow_bars(report: dict[str, Any]) -> dict[str, list[tuple[int, int, Decimal, Decimal]]]:
    """What the stacked-bar plot takes from the report's flows block."""
    flows = report.get("flows") or {}
    length = int(flows.get("period_s", 0)) * 1000
    return {
        lead: [(int(r["end_ms"]), length, Decimal(r["net_flows"]), Decimal(r["performance"]))
               for r in block["periods"]]
        for lead, block in (flows.get("leads") or {}).items()
    }  # fmt: skip


def cluster_aum_lines(cluster: dict[str, Any] | None) -> list[str]:
    """A cluster role's /aum: the table above is this process's followers; this is every shard's
    follower capital per lead, through Redis (docs/cluster.md, "One view of the whole")."""
    if not cluster:
        return []
    if "error" in cluster:
        return [f"cluster: Redis did not answer: {cluster['error']}"]
    lines = []
    for lead, row in sorted((cluster.get("aum") or {}).items()):
        shards = ", ".join(f"{s} {_fixed(a, 2)}" for s, a in sorted(row["by_shard"].items()))
        lines.append(f"cluster {lead}: follower capital {_fixed(row['aum'], 2)} over {row['followers']} "
                     f"followers ({shards})")  # fmt: skip
    return lines or ["cluster: no shard reports follower capital yet"]


def run(args: argparse.Namespace) -> int:
    try:
        parse_period(args.period)
    except ValueError as exc:
        raise CommandError(f"--period: {exc}", 2) from None
    if not 1 <= args.periods <= MAX_PERIODS:
        raise CommandError(f"--periods: a whole number from 1 to {MAX_PERIODS}", 2)
    if args.plot:
        require_plot_extra()
    try:
        if args.journal:
            report = report_from_journal(args.journal, args.by, period=args.period, periods=args.periods)
        else:
            report = fetch_report(args.api or DEFAULT_API, args.by, args.period, args.periods)
    except (RuntimeError, OSError, sqlite3.Error) as exc:
        print(f"copybot aum: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
        print_flows(report)
        for line in cluster_aum_lines(report.get("cluster")):
            print(line)
    if args.plot:
        from bot.aum.plot import plot_aum

        history = [(int(ts), str(lead), Decimal(aum)) for ts, lead, aum in report.get("history", [])]
        plot_aum(history, slippage_points(report), args.plot, flows=flow_bars(report))
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0
