"""The benchmark's arithmetic and its output: copy lag per lead fill on the exchange's own clock,
percentiles over fills, and the Markdown / JSON report.

Everything here is pure: it takes the exchange's records (lead trades, follower orders) as the admin
API returns them, so it can be tested on hand-made records. Lags are measurements in nanoseconds
turned into milliseconds for display; no money passes through this module."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from bot.core.stats import percentile

NS_PER_MS = 1_000_000


@dataclass(frozen=True)
class FillLag:
    """One lead fill and the follower orders that copied it, all times on the exchange's clock."""

    lead_order_id: str
    lead_trade_ns: int  # the lead's first trade of the order (its fill reaching the book)
    followers: int  # how many follower orders were expected
    orders: int  # how many were found
    first_ms: float | None  # min over followers of order recvTimeNs - lead trade timeNs
    last_ms: float | None  # max of the same
    first_ack_ms: float | None  # min of ackTimeNs - lead trade timeNs
    last_ack_ms: float | None
    orders_per_s: float | None  # orders / (last recv - first recv); None for fewer than two orders


@dataclass(frozen=True)
class Stats:
    p50: float | None
    p99: float | None
    max: float | None
    samples: int


@dataclass
class LimitsTally:
    """Request weight and rate-limit answers per source address, from successive readings of the
    exchange's GET /_sim/limits (which reports the current minute only): the peak weight of any
    minute, the 429s summed over minutes, and the 418 bans since the first reading. Each minute's
    figures are kept too, so the minutes after start-up (the steady state) can be told apart."""

    peak_weight_1m: dict[str, int] = field(default_factory=dict)
    rejected_429: dict[str, int] = field(default_factory=dict)
    bans_418: dict[str, int] = field(default_factory=dict)
    # minute -> (highest weight of any address, 429s of all addresses) in that minute
    minutes: dict[int, tuple[int, int]] = field(default_factory=dict)
    _last: dict[str, tuple[int, int]] = field(default_factory=dict)  # address -> (window, 429s)
    _bans_at_start: dict[str, int] = field(default_factory=dict)

    def observe(self, snapshot: dict[str, Any], window: int) -> None:
        """One reading; `window` is the minute it was taken in (the exchange's clock // 60 s)."""
        for address, row in (snapshot.get("addresses") or {}).items():
            used, rejected, bans = int(row["usedWeight"]), int(row["rejected429"]), int(row["bans"])
            self.peak_weight_1m[address] = max(self.peak_weight_1m.get(address, 0), used)
            last_window, last_rejected = self._last.get(address, (window, 0))
            if last_window != window:  # the last minute's count is final: bank it
                self.rejected_429[address] = self.rejected_429.get(address, 0) + last_rejected
                last_rejected = 0
            self._last[address] = (window, max(last_rejected, rejected))
            self._bans_at_start.setdefault(address, bans)
            self.bans_418[address] = bans - self._bans_at_start[address]
            peak, rejected_in_minute = self.minutes.get(window, (0, 0))
            self.minutes[window] = (max(peak, used), max(rejected_in_minute, rejected))

    def totals(self) -> tuple[int, int, int]:
        """(peak weight of any minute at any address, 429s, 418s) over all addresses."""
        pending = {a: r for a, (_, r) in self._last.items()}
        rejected = sum(
            self.rejected_429.get(a, 0) + pending.get(a, 0) for a in set(self.rejected_429) | set(pending)
        )
        return max(self.peak_weight_1m.values(), default=0), rejected, sum(self.bans_418.values())

    def per_address(self) -> dict[str, tuple[int, int, int]]:
        """address -> (peak weight of any minute, 429s, 418s)."""
        pending = {a: r for a, (_, r) in self._last.items()}
        return {
            a: (peak, self.rejected_429.get(a, 0) + pending.get(a, 0), self.bans_418.get(a, 0))
            for a, peak in self.peak_weight_1m.items()
        }

    def steady(self, after_window: int) -> tuple[int, int, int] | None:
        """(peak weight, 429s, whole minutes seen) over the minutes after `after_window` (the minute
        the daemon became ready in, which still holds start-up's reads); None without any."""
        later = {w: v for w, v in self.minutes.items() if w > after_window}
        if not later:
            return None
        return max(v[0] for v in later.values()), sum(v[1] for v in later.values()), len(later)


class FillRows:
    """Figures over a run's fills, for each kind of benchmark row (`fills` set by the dataclass)."""

    fills: list[FillLag]

    @property
    def missing_orders(self) -> int:
        return sum(f.followers - f.orders for f in self.fills)

    def stats(self, metric: str) -> Stats:
        return stats(getattr(f, metric) for f in self.fills)


@dataclass(frozen=True)
class RunResult(FillRows):
    """One configuration measured: copybot or the polling baseline with N followers."""

    copier: str  # "copybot" or "baseline"
    followers: int
    fills: list[FillLag]
    venues: str = "binance->binance"  # lead venue -> follower venue
    startup_s: float | None = None
    rss_mb: float | None = None
    internal_lag_ms: dict[str, Any] | None = None  # the daemon's /status figure
    exit_code: int | None = None
    notes: tuple[str, ...] = ()
    # per source address, from the exchange (None: not measured, e.g. the baseline)
    peak_weight_1m: int | None = None
    rejected_429: int | None = None
    bans_418: int | None = None
    # the minutes after start-up, with the daemon's production read intervals (--steady-s)
    steady_weight_1m: int | None = None
    steady_429: int | None = None
    steady_minutes: int | None = None


@dataclass(frozen=True)
class Machine:
    cpus: int
    cpu_model: str
    ram_gb: float
    python: str


@dataclass(frozen=True)
class Report:
    machine: Machine
    results: list[RunResult]
    fills_per_run: int
    profile: dict[str, list[str]] = field(default_factory=dict)  # "tottime"/"cumtime" -> rows

    def ratio_at_one(self) -> float | None:
        """Baseline first-follower lag p50 over copybot's, with one follower."""
        ours = self._find("copybot", 1)
        theirs = self._find("baseline", 1)
        if ours is None or theirs is None:
            return None
        a, b = theirs.stats("first_ms").p50, ours.stats("first_ms").p50
        if a is None or b is None or b <= 0:
            return None
        return a / b

    def _find(self, copier: str, followers: int) -> RunResult | None:
        return next(
            (
                r
                for r in self.results
                if r.copier == copier and r.followers == followers and r.venues == "binance->binance"
            ),
            None,
        )


def stats(values: Iterable[float | None]) -> Stats:
    present = [v for v in values if v is not None]
    return Stats(
        percentile(present, 0.5), percentile(present, 0.99), max(present, default=None), len(present)
    )


def fill_lags(
    lead_trades: list[dict[str, Any]],
    follower_orders: list[dict[str, Any]],
    followers: int,
    client_ids: Callable[[str], Iterable[str]],
) -> list[FillLag]:
    """Per lead order, the copy lag of the follower orders that answer it.

    `client_ids(trade_id)` gives every client order id a follower order copying that lead trade can
    carry; a lead market order that walks the book has several trades and the copier may key its
    copy on any of them, so all of the order's trades are tried. Orders that match no lead trade
    (reconciliation, another run) are ignored."""
    trades_by_order: dict[str, list[dict[str, Any]]] = {}
    for trade in lead_trades:
        trades_by_order.setdefault(str(trade["orderId"]), []).append(trade)
    by_cid = {str(o["clientOrderId"]): o for o in follower_orders if o.get("clientOrderId")}
    out = []
    for order_id, trades in trades_by_order.items():
        t0 = min(int(t["timeNs"]) for t in trades)
        matched: dict[str, dict[str, Any]] = {}
        for trade in trades:
            for cid in client_ids(str(trade["id"])):
                if cid in by_cid:
                    matched[cid] = by_cid[cid]
        recv = sorted(int(o["recvTimeNs"]) for o in matched.values())
        ack = sorted(int(o["ackTimeNs"]) for o in matched.values() if o.get("ackTimeNs"))
        span = recv[-1] - recv[0] if len(recv) > 1 else 0
        out.append(
            FillLag(
                lead_order_id=order_id,
                lead_trade_ns=t0,
                followers=followers,
                orders=len(recv),
                first_ms=(recv[0] - t0) / NS_PER_MS if recv else None,
                last_ms=(recv[-1] - t0) / NS_PER_MS if recv else None,
                first_ack_ms=(ack[0] - t0) / NS_PER_MS if ack else None,
                last_ack_ms=(ack[-1] - t0) / NS_PER_MS if ack else None,
                orders_per_s=len(recv) / (span / 1e9) if span > 0 else None,
            )
        )
    return sorted(out, key=lambda f: f.lead_trade_ns)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _triple(s: Stats, digits: int = 1) -> str:
    return f"{_fmt(s.p50, digits)} / {_fmt(s.p99, digits)} / {_fmt(s.max, digits)}"


TABLE_HEAD = (
    "| copier | venues | followers | fills | first-follower lag ms p50/p99/max "
    "| last-follower lag ms p50/p99/max | first ack ms p50 | last ack ms p99 | fan-out orders/s p50 "
    "| internal lag ms p50/p99 "
    "| start-up s | peak RSS MB | missing orders | peak weight/min per address | 429s | 418s "
    "| steady weight/min (429s, minutes) |\n"
    "|---|---|---:|---:|---|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
)


def _steady(r: RunResult) -> str:
    if r.steady_weight_1m is None:
        return "-"
    return f"{r.steady_weight_1m:,} ({_count(r.steady_429)}, {_count(r.steady_minutes)})"


def table_row(r: RunResult) -> str:
    internal = "-"
    if r.internal_lag_ms:
        internal = f"{_fmt(r.internal_lag_ms.get('p50'), 2)} / {_fmt(r.internal_lag_ms.get('p99'), 2)}"
    cells = [
        r.copier,
        r.venues,
        str(r.followers),
        str(len(r.fills)),
        _triple(r.stats("first_ms")),
        _triple(r.stats("last_ms")),
        _fmt(r.stats("first_ack_ms").p50),
        _fmt(r.stats("last_ack_ms").p99),
        _fmt(r.stats("orders_per_s").p50, 0),
        internal,
        _fmt(r.startup_s, 2),
        _fmt(r.rss_mb, 0),
        str(r.missing_orders),
        _count(r.peak_weight_1m),
        _count(r.rejected_429),
        _count(r.bans_418),
        _steady(r),
    ]
    return "| " + " | ".join(cells) + " |"


def machine_line(m: Machine) -> str:
    return f"{m.cpus} CPUs ({m.cpu_model}), {m.ram_gb:.1f} GB RAM, Python {m.python}"


def render_markdown(report: Report) -> str:
    lines = [
        "# copybot bench",
        "",
        f"Machine: {machine_line(report.machine)}. {report.fills_per_run} lead fills per copybot run; "
        "lags on the exchange's clock from the lead's trade to the follower order's arrival (recv) "
        "or response (ack). Request weight: the highest minute of any source address, as the exchange "
        "counts it (Binance allows 2,400 per minute per IP), and the 429/418 answers; unless run with "
        "--venue-limits, the exchange's limits are lifted (copy lags compare with earlier reports) and "
        "a peak above 2,400 is what Binance would have refused. Steady weight: the highest minute after "
        "the one the daemon became ready in, with its production read intervals (--steady-s).",
        "",
        TABLE_HEAD,
        *(table_row(r) for r in report.results),
        "",
    ]
    ratio = report.ratio_at_one()
    if ratio is not None:
        lines += [f"Polling baseline / copybot, first-follower lag p50 at 1 follower: {ratio:,.0f}x", ""]
    for r in report.results:
        for note in r.notes:
            lines.append(f"- {r.copier} {r.venues} N={r.followers}: {note}")
    if any(r.notes for r in report.results):
        lines.append("")
    for key, rows in report.profile.items():
        lines += [f"## Profile of the largest run, top functions by {key}", "", "```", *rows, "```", ""]
    return "\n".join(lines)


def to_json(report: Report) -> str:
    data: dict[str, Any] = {
        "machine": asdict(report.machine),
        "fills_per_run": report.fills_per_run,
        "ratio_baseline_over_copybot_first_p50_n1": report.ratio_at_one(),
        "runs": [],
        "profile": report.profile,
    }
    for r in report.results:
        run = asdict(r)
        run["summary"] = {
            m: asdict(r.stats(m))
            for m in ("first_ms", "last_ms", "first_ack_ms", "last_ack_ms", "orders_per_s")
        }
        run["missing_orders"] = r.missing_orders
        data["runs"].append(run)
    return json.dumps(data, indent=2)
