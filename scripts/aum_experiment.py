"""AUM slippage experiment (issue 5): the same scripted lead trades on the thin symbol copied at
growing AUM, realized slippage against the capacity model's projection, then an AUM cap derived from
max_slippage_bps, and the fairness of the fan-out.

Everything runs in this process on loopback: the local exchange (SimExchange) and the copybot
daemon, driven through the real ccxt client. The thin market's price is frozen (volatility 0, no
random walk) so that the only thing moving the book is the orders themselves, and its levels refill
in about two seconds, so every lead order meets a full book after the pause before it.

    python scripts/aum_experiment.py [--max-slippage-bps 20] [--small 10] [--large 100]

Phases: 10 followers (allocation 10,000 each), 100 followers (same allocation), then the daemon
restarted on the second phase's journal and accounts with aum.max_slippage_bps set: the cap is
derived from the lead's typical entry (known from the journal) and the book before each entry.
Bounded: about a minute and a half on a 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from bot.aum.capacity import projection, walk_book
from bot.aum.service import AumService
from bot.config.models import parse_config
from bot.core.rounding import dec
from bot.core.sizing import base_ratio
from bot.core.types import ZERO, Intent, OrderOutcome, Side
from bot.live.engine import Engine
from bot.service.app import Daemon
from bot.service.logs import configure_logging
from bot.sim.config import load_sim_config
from bot.sim.server import SimExchange
from bot.venues import VenueMode, make_rest

THIN = "THIN/USDT:USDT"
LEAD_BALANCE = Decimal(100_000)
ALLOCATION = Decimal(10_000)
LEAD_QTY = Decimal(100)
# (side, reduce_only): long entry and exit, short entry and exit, twice.
SCRIPT = [("buy", False), ("sell", True), ("sell", False), ("buy", True)] * 2
PAUSE_S = 2.5  # the thin book refills a level in 2 s


def sim_config() -> Any:
    base = load_sim_config(tick_interval_s=0)
    markets = [
        m.model_copy(update={"volatility": Decimal(0), "refill_per_s": Decimal("0.5")})
        if m.symbol == "THINUSDT"
        else m
        for m in base.markets
    ]
    return base.model_copy(update={"markets": tuple(markets)})


@dataclass
class Bucket:
    """Follower fills of one lead order, as (bps, notional)."""

    fills: list[tuple[Decimal, Decimal]] = field(default_factory=list)

    def weighted(self) -> Decimal | None:
        total = sum((n for _, n in self.fills), ZERO)
        return sum((b * n for b, n in self.fills), ZERO) / total if total else None


class Collector:
    """An engine observer that files each follower fill under the lead order being copied."""

    def __init__(self) -> None:
        self.current = Bucket()

    def on_decision(self, follower: str, decision: Any) -> None:
        pass

    def on_outcome(
        self, follower: str, intent: Intent, outcome: OrderOutcome, sent_ns: int, acked_ns: int
    ) -> None:
        if outcome.filled_qty > 0 and outcome.avg_price is not None and intent.ref_price > 0:
            bps = (outcome.avg_price - intent.ref_price) / intent.ref_price * 10_000 * intent.side.sign
            self.current.fills.append((bps, outcome.filled_qty * outcome.avg_price))


@dataclass
class Step:
    side: str
    combined_qty: Decimal
    projected: Decimal
    extrapolated: bool
    realized: Decimal | None
    fills: int


@dataclass
class Phase:
    name: str
    followers: int
    aum: Decimal = ZERO
    cap: Decimal | None = None
    admitted: int = 0
    steps: list[Step] = field(default_factory=list)
    slip: Any = None
    fairness: Any = None


class Accounts:
    def __init__(self, sim: SimExchange) -> None:
        self.sim = sim
        self.env: dict[str, str] = {}
        self.keys: dict[str, tuple[str, str]] = {}

    def add(self, account_id: str, balance: Decimal) -> None:
        key, secret = secrets.token_hex(24), secrets.token_hex(24)
        self.sim.create_account(key, secret, balance, name=account_id)
        self.keys[account_id] = (key, secret)
        self.env[f"K_{account_id.upper()}"], self.env[f"S_{account_id.upper()}"] = key, secret

    @staticmethod
    def creds(account_id: str) -> dict[str, str]:
        return {"api_key_env": f"K_{account_id.upper()}", "secret_env": f"S_{account_id.upper()}"}


def app_config(sim: SimExchange, accounts: Accounts, followers: list[str], journal: Path,
               max_slippage_bps: Decimal | None) -> Any:  # fmt: skip
    sizing = {"mode": "allocation", "allocation": str(ALLOCATION)}
    risk = {"max_order_notional": 1_000_000, "max_position_notional": 1_000_000,
            "max_total_exposure": 1_000_000, "max_leverage": 50, "slippage_bps": None}  # fmt: skip
    data = {
        "venues": {"local": {"exchange": "binanceusdm", "mode": "sim", "rest_url": sim.rest_url,
                             "ws_url": sim.ws_url}},
        "leads": [{"id": "lead", "venue": "local", "credentials": accounts.creds("lead"), "symbols": [THIN]}],
        "followers": [{"id": f, "venue": "local", "credentials": accounts.creds(f), "leverage": 10,
                       "risk": risk, "follows": [{"lead": "lead", "sizing": sizing}]} for f in followers],
        "feed": {"keepalive_s": 5, "stale_after_s": 30},
        "reconcile": {"mode": "correct", "interval_s": 3600, "on_start": True},
        "executor": {"balance_refresh_s": 3600, "drain_timeout_s": 10},
        "journal": {"path": str(journal)},
        "api": {"enabled": False},
        "aum": {"max_slippage_bps": str(max_slippage_bps)} if max_slippage_bps is not None else {},
        "logging": {"level": "warning"},
    }  # fmt: skip
    return parse_config(data, source="aum-experiment", env=accounts.env)


async def start_daemon(cfg: Any) -> tuple[Daemon, asyncio.Task[int]]:
    daemon = Daemon(cfg)
    task = asyncio.create_task(daemon.run(), name="daemon")
    deadline = time.monotonic() + 60
    while daemon.engine is None or not daemon.engine.ready.is_set():
        if task.done():
            task.result()
            raise RuntimeError("the daemon stopped before it was ready")
        if time.monotonic() > deadline:
            raise RuntimeError("the daemon was not ready within 60 s")
        await asyncio.sleep(0.05)
    return daemon, task


def total_ratio(engine: Engine, entry: bool) -> Decimal:
    """Sum of the followers' copy ratios for the next order: the ratio an entry would take now, or
    the ratio each follower holds for the open position it is about to exit."""
    lead = engine.leads["lead"]
    total = ZERO
    for f in engine.followers_of["lead"]:
        if entry:
            total += base_ratio(f.settings.sizings["lead"], lead_after=LEAD_QTY, price=Decimal(1),
                                follower_equity=f.balance.equity, lead_equity=lead.equity)  # fmt: skip
        else:
            total += f.ratios.get(("lead", THIN), ZERO)
    return total


def progress(text: str) -> None:
    """On stderr, so the report on stdout stays clean to redirect."""
    print(f"aum experiment: {text}", file=sys.stderr, flush=True)


async def run_script(engine: Engine, aum: AumService, client: Any, phase: Phase, *, capped: bool) -> None:
    collector = Collector()
    engine.observers.append(collector)
    for step, (side, reduce_only) in enumerate(SCRIPT, start=1):
        progress(
            f"{phase.name}: lead order {step}/{len(SCRIPT)} ({side}{', reduce-only' if reduce_only else ''})"
        )
        if capped:  # what the upkeep pass does, right before the entry it protects
            await aum.refresh_capacity()
            aum.apply_cap()
        book = await client.fetch_order_book(THIN)
        levels = [(dec(p), dec(q)) for p, q in (book["asks"] if side == "buy" else book["bids"])]
        ratio = total_ratio(engine, entry=not reduce_only)
        lead_walk = walk_book(levels, LEAD_QTY)
        assert lead_walk.avg_price is not None, "the thin book is empty"
        (point,) = projection(levels, lead_walk.avg_price, Side(side), LEAD_QTY, ratio, (1,))
        collector.current = Bucket()
        params = {"reduceOnly": True} if reduce_only else {}
        await client.create_order(THIN, "market", side, str(LEAD_QTY), None, params)
        await asyncio.sleep(0.3)  # the fill reaches the daemon through the user-data stream
        await engine.wait_idle(30)
        bucket = collector.current
        phase.steps.append(
            Step(side, point.qty, point.bps, point.extrapolated, bucket.weighted(), len(bucket.fills))
        )
        if not reduce_only:
            rows = aum.lead_rows(now_ms=int(time.time() * 1000))
            phase.aum = rows[0].aum  # at the last entry: what the cap left
            phase.cap = aum.effective_cap("lead")
            phase.admitted = sum(1 for f in engine.followers_of["lead"] if f.position(THIN) != 0)
        await asyncio.sleep(PAUSE_S)
    engine.observers.remove(collector)
    phase.slip = summarize_fills(aum)
    phase.fairness = aum.slippage.fairness("lead")


def summarize_fills(aum: AumService) -> Any:
    stats = aum.slippage.by_symbol()
    return stats.get(THIN)


async def experiment(args: argparse.Namespace, tmp: Path) -> list[Phase]:
    phases: list[Phase] = []
    for n in (args.small, args.large):
        sim = SimExchange(sim_config())
        await sim.start()
        accounts = Accounts(sim)
        accounts.add("lead", LEAD_BALANCE)
        names = [f"f{i:03d}" for i in range(1, n + 1)]
        for name in names:
            accounts.add(name, ALLOCATION)
        key, secret = accounts.keys["lead"]
        client = make_rest("binanceusdm", VenueMode.SIM, api_key=key, secret=secret,
                           rest_url=sim.rest_url, ws_url=sim.ws_url)  # fmt: skip
        journal = tmp / f"journal-{n}.sqlite"
        try:
            await client.load_markets()
            progress(f"starting the daemon with {n} followers")
            daemon, task = await start_daemon(app_config(sim, accounts, names, journal, None))
            assert daemon.engine is not None
            assert daemon.aum is not None
            phase = Phase(f"{n} followers", n)
            await run_script(daemon.engine, daemon.aum, client, phase, capped=False)
            phases.append(phase)
            daemon.request_stop("phase done")
            await task
            if n == args.large:
                # The operator turns the cap on: same accounts and journal, a restarted daemon.
                await asyncio.sleep(PAUSE_S)
                progress(f"restarting the daemon with {n} followers and the AUM cap")
                daemon, task = await start_daemon(
                    app_config(sim, accounts, names, journal, args.max_slippage_bps)
                )
                assert daemon.engine is not None
                assert daemon.aum is not None
                capped = Phase(f"{n} followers, cap at {args.max_slippage_bps} bps", n)
                await run_script(daemon.engine, daemon.aum, client, capped, capped=True)
                phases.append(capped)
                daemon.request_stop("phase done")
                await task
        finally:
            await client.close()
            await sim.stop()
    return phases


def fmt(value: Decimal | None, places: int = 2) -> str:
    return "-" if value is None else f"{value + 0:,.{places}f}"  # + 0 turns -0 into 0


def report(phases: list[Phase], max_bps: Decimal) -> str:
    out = ["| phase | AUM | cap | copying | lead orders | follower fills | realized mean bps "
           "| realized p90 bps | projected mean bps | mean error bps | mean abs error bps |",
           "|" + "---|" * 11]  # fmt: skip
    for p in phases:
        pairs = [(s.realized, s.projected) for s in p.steps if s.realized is not None]
        errors = [r - j for r, j in pairs]
        out.append(
            f"| {p.name} | {fmt(p.aum, 0)} | {fmt(p.cap, 0)} | {p.admitted}/{p.followers} | {len(p.steps)} "
            f"| {p.slip.count if p.slip else 0} | {fmt(p.slip.mean if p.slip else None)} "
            f"| {fmt(p.slip.p90 if p.slip else None)} "
            f"| {fmt(sum((j for _, j in pairs), ZERO) / len(pairs) if pairs else None)} "
            f"| {fmt(sum(errors, ZERO) / len(errors) if errors else None)} "
            f"| {fmt(sum((abs(e) for e in errors), ZERO) / len(errors) if errors else None)} |"
        )
    out += ["", "Per lead order (realized = notional-weighted mean of the follower fills copying it):", "",
            "| phase | # | side | combined qty (model) | projected bps | realized bps | error bps |",
            "|---|---|---|---|---|---|---|"]  # fmt: skip
    for p in phases:
        for i, s in enumerate(p.steps, start=1):
            err = s.realized - s.projected if s.realized is not None else None
            flag = " (beyond visible depth)" if s.extrapolated else ""
            out.append(f"| {p.name} | {i} | {s.side} | {s.combined_qty:.0f}{flag} | {fmt(s.projected)} "
                       f"| {fmt(s.realized)} | {fmt(err)} |")  # fmt: skip
    out += ["", "Fairness (mean rank of a follower's slippage among the followers of the same lead fill; "
            "1 = best, the middle is (n+1)/2):", "",
            "| phase | followers | best mean rank | worst mean rank | middle | spread of mean bps |",
            "|---|---|---|---|---|---|"]  # fmt: skip
    for p in phases:
        ranks = [f.mean_rank for f in p.fairness.followers if f.fills]
        n = len(p.fairness.followers)
        best, worst = (min(ranks), max(ranks)) if ranks else (None, None)
        out.append(f"| {p.name} | {n} | {fmt(best)} | {fmt(worst)} | {fmt(Decimal(n + 1) / 2, 1)} "
                   f"| {fmt(p.fairness.spread_bps)} |")  # fmt: skip
    capped = phases[-1]
    if capped.slip is not None:
        verdict = "under" if capped.slip.mean <= max_bps else "ABOVE"
        out += ["", f"With the cap, realized mean slippage {fmt(capped.slip.mean)} bps is {verdict} the "
                f"configured maximum of {max_bps} bps."]  # fmt: skip
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--small", type=int, default=10, help="followers in the first phase")
    parser.add_argument("--large", type=int, default=100, help="followers in the second and capped phases")
    parser.add_argument("--max-slippage-bps", type=Decimal, default=Decimal(20), help="aum.max_slippage_bps")
    args = parser.parse_args()
    configure_logging("error", json=False, stream=sys.stderr)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="copybot-aum-") as tmp:
        phases = asyncio.run(asyncio.wait_for(experiment(args, Path(tmp)), timeout=170))
    print(report(phases, args.max_slippage_bps))
    print(f"\n({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
