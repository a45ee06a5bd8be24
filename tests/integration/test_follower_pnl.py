"""Each follower's own results (docs/pnl.md), against the local exchange's own account figures:
a copy with fees, a price move, a partial close and funding at a short interval. copybot's
realized and unrealized PnL, fees and funding equal the exchange's (trades' realizedPnl and
commission, funding payments, wallet change, unrealized at the mark) to 0.01, slippage equals
the figure computed by hand from the lead's and the follower's fill prices, and the figures are
the same on /status, /aum, the metrics and `copybot status --follower`, and after a restart."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.commands.pnl_table import pnl_lines
from bot.sim.config import load_sim_config
from tests.integration.harness import BTC, Harness, follower

CENT = Decimal("0.01")
BALANCE = 20_000


async def _get(h: Harness, path: str) -> Any:
    assert h.daemon is not None
    assert h.http is not None
    async with h.http.get(f"http://127.0.0.1:{h.daemon.bound_api_port}{path}") as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json() if path != "/metrics" else await resp.text()


def _close(a: Decimal | str, b: Decimal) -> bool:
    return abs(Decimal(a) - b) <= CENT


def _slippage_by_hand(lead_trades: list[dict[str, Any]], follower_trades: list[dict[str, Any]]) -> Decimal:
    """Follower order k copies lead order k (one lead order per step): buy (follower price - lead
    price) x qty, sell (lead price - follower price) x qty, each at the order's average price."""

    def orders(trades: list[dict[str, Any]]) -> list[tuple[str, Decimal, Decimal]]:
        by_order: dict[Any, list[dict[str, Any]]] = {}
        for t in trades:
            by_order.setdefault(t["orderId"], []).append(t)
        out = []
        for rows in by_order.values():
            qty = sum((Decimal(r["qty"]) for r in rows), Decimal(0))
            avg = sum((Decimal(r["qty"]) * Decimal(r["price"]) for r in rows), Decimal(0)) / qty
            out.append((rows[0]["side"], qty, avg))
        return out

    total = Decimal(0)
    for (_, _, lead_avg), (side, qty, avg) in zip(orders(lead_trades), orders(follower_trades), strict=True):
        total += (avg - lead_avg) * qty if side == "BUY" else (lead_avg - avg) * qty
    return total


@pytest.mark.slow
@pytest.mark.parametrize("follower_venue", ["binance", "bybit"])
async def test_results_equal_the_exchanges_own_figures(tmp_path: Path, follower_venue: str) -> None:
    sim_config = load_sim_config(tick_interval_s=0, funding_interval_s=1)
    async with Harness(tmp_path, sim_config, follower_venue=follower_venue) as h:
        h.build_config(
            [follower("f", {"mode": "multiplier", "multiplier": "0.2"}, balance=BALANCE)],
            reconcile={"income_every_s": 0},
        )
        engine = await h.start_daemon()
        account = h.sim.engine.accounts[h.keys["f"][0]]
        await h.trade(BTC, "buy", "0.1")  # the follower copies 0.02, paying the taker fee
        await h.settle(fills=1)
        deadline = time.monotonic() + 5
        while not account.fundings and time.monotonic() < deadline:  # the next funding time, <= 1 s
            await asyncio.sleep(0.05)
        assert account.fundings, "no funding was paid on the follower's position"
        h.sim.engine.set_price("BTCUSDT", h.sim.engine.books["BTCUSDT"].fair * Decimal("1.02"))
        await h.trade(BTC, "sell", "0.05", reduceOnly=True)  # partial close: the follower sells 0.01
        await h.settle(fills=2)
        h.sim.engine.funding_rate = Decimal(0)  # later funding times pay nothing: figures hold still
        fair = h.sim.engine.books["BTCUSDT"].fair
        deadline = time.monotonic() + 5
        while engine.mark(BTC) != fair and time.monotonic() < deadline:  # the mark stream: every 1 s
            await asyncio.sleep(0.05)
        assert h.daemon is not None
        assert h.daemon.reconciler is not None
        await h.daemon.reconciler.run_once("test")  # reads the income log on the reconcile cadence

        admin = await h.admin("f")
        trades = admin["trades"]
        realized = sum((Decimal(t["realizedPnl"]) for t in trades), Decimal(0))
        fees = sum((Decimal(t["commission"]) for t in trades), Decimal(0))
        funding = sum((Decimal(f["amount"]) for f in admin["fundings"]), Decimal(0))
        unrealized = sum((Decimal(p["unRealizedProfit"]) for p in admin["positions"]), Decimal(0))
        assert realized > 0  # the price moved up 2% before the partial close
        assert funding < 0  # a long pays at a positive rate
        slippage = _slippage_by_hand((await h.admin("lead"))["trades"], trades)

        status = await _get(h, "/status")
        pnl = status["followers"]["f"]["pnl"]
        mine = pnl["leads"]["lead"]["windows"]
        for span in ("1d", "7d", "30d", "all"):
            got = mine[span]
            assert _close(got["realized"], realized), (span, got, realized)
            assert _close(got["fees"], fees), (span, got, fees)
            assert _close(got["funding"], funding), (span, got, funding)
            assert _close(got["slippage"], slippage), (span, got, slippage)
            assert got["fills"] == 2
        assert _close(pnl["leads"]["lead"]["unrealized"], unrealized)
        # the wallet's change is realized - fees + funding
        assert _close(Decimal(mine["all"]["net"]), Decimal(admin["balance"]) - BALANCE)

        aum = await _get(h, "/aum")
        assert aum["pnl"]["lead"]["windows"]["all"]["realized"] == mine["all"]["realized"]
        assert aum["pnl"]["lead"]["followers"]["f"]["unrealized"] == pnl["leads"]["lead"]["unrealized"]
        metrics = await _get(h, "/metrics")
        series = 'copybot_follower_fees_paid{follower="f",lead="lead"}'
        line = next(m for m in metrics.splitlines() if m.startswith(series))
        assert _close(Decimal(line.rsplit(" ", 1)[1]), fees)
        series = 'copybot_follower_pnl_unrealized{follower="f",lead="lead"}'
        line = next(m for m in metrics.splitlines() if m.startswith(series))
        assert _close(Decimal(line.rsplit(" ", 1)[1]), unrealized)
        table = pnl_lines("f", status["followers"]["f"])
        assert all(len(row) <= 80 for row in table)
        assert any(row.startswith("lead       all ") for row in table)

        await h.stop_daemon()  # the journal keeps fills and income: a restart shows the same
        await h.start_daemon()
        again = (await _get(h, "/status"))["followers"]["f"]["pnl"]["leads"]["lead"]["windows"]["all"]
        assert again == mine["all"]
        assert engine is not h.engine


@pytest.mark.slow
@pytest.mark.parametrize("lead_venue", ["binance", "bybit"])
async def test_funding_on_the_leads_account_is_not_a_fill(tmp_path: Path, lead_venue: str) -> None:
    """The lead's stream carries its funding (Binance ACCOUNT_UPDATE FUNDING_FEE, Bybit a Funding
    execution): nothing is copied from it."""
    sim_config = load_sim_config(tick_interval_s=0, funding_interval_s=1)
    async with Harness(tmp_path, sim_config, lead_venue=lead_venue) as h:
        h.build_config([follower("f", {"mode": "multiplier", "multiplier": "0.2"})])
        engine = await h.start_daemon()
        await h.trade(BTC, "buy", "0.1")
        await h.settle(fills=1)
        lead_account = h.sim.engine.accounts[h.keys["lead"][0]]
        paid = len(lead_account.fundings)
        deadline = time.monotonic() + 5
        while len(lead_account.fundings) < paid + 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert len(lead_account.fundings) >= paid + 2, "no funding was paid on the lead's position"
        await asyncio.sleep(0.3)  # what the stream carried has been handled
        await h.settle()
        assert engine.leads["lead"].fills == 1
        assert engine.leads["lead"].positions == {BTC: Decimal("0.1")}
        assert len((await h.admin("f"))["trades"]) == 1


@pytest.mark.slow
async def test_a_stop_loss_that_fired_at_the_venue_is_booked_closed(tmp_path: Path) -> None:
    """A stop-loss resting at the venue closes the copy while the daemon is down: the next
    reconcile pass books the close at the mark (realized PnL as the venue's, to within the fill's
    distance from the mark), and nothing stays open on the copy's book."""
    async with Harness(tmp_path) as h:
        h.build_config([follower("f", {"mode": "multiplier", "multiplier": "0.2"}, stop_loss_pct="1")],
                       reconcile={"income_every_s": 0})  # fmt: skip
        await h.start_daemon()
        await h.trade(BTC, "buy", "0.1")
        await h.settle(fills=1)
        account = h.sim.engine.accounts[h.keys["f"][0]]
        (stop,) = [c for c in h.sim.engine.conditionals.of(account).values() if c.is_open]
        await h.stop_daemon()
        h.sim.engine.set_price("BTCUSDT", stop.trigger_price)  # the stop fires while copybot is down
        assert "BTCUSDT" not in await h.positions("f")
        engine = await h.start_daemon()
        await h.settle()
        deadline = time.monotonic() + 5
        while engine.venue_mark("local", BTC) != h.sim.engine.books["BTCUSDT"].fair:
            assert time.monotonic() < deadline, "no live mark"
            await asyncio.sleep(0.05)
        assert h.daemon is not None
        assert h.daemon.reconciler is not None
        await h.daemon.reconciler.run_once("test")
        admin = await h.admin("f")
        realized = sum((Decimal(t["realizedPnl"]) for t in admin["trades"]), Decimal(0))
        fees = sum((Decimal(t["commission"]) for t in admin["trades"]), Decimal(0))
        pnl = (await _get(h, "/status"))["followers"]["f"]["pnl"]["leads"]["lead"]
        assert realized < 0
        assert abs(Decimal(pnl["windows"]["all"]["realized"]) - realized) <= Decimal("0.05")
        assert _close(pnl["windows"]["all"]["fees"], fees)  # the stop's fee too, from the income log
        assert pnl["unrealized"] == "0.0000"
