"""Reconciliation: positions the lead closed while the daemon was down are closed on start; drift is
corrected, or only reported when so configured."""

from __future__ import annotations

from decimal import Decimal

from bot.live.engine import Engine
from bot.live.reconciler import ReconcileReport
from bot.venues import VenueMode, make_rest
from tests.integration.harness import BTC, Harness, follower


async def follower_holding(h: Harness, **overrides: object) -> Engine:
    """A follower that copied the lead's 0.1 BTC at 0.2: it holds 0.020."""
    h.build_config([follower("f", {"mode": "multiplier", "multiplier": "0.2"})], **overrides)
    engine = await h.start_daemon()
    await h.trade(BTC, "buy", "0.1")
    await h.settle(fills=1)
    assert (await h.positions("f"))["BTCUSDT"] == Decimal("0.020")
    return engine


async def trade_by_hand(h: Harness, account: str, side: str, qty: str) -> None:
    """The account's owner trades outside copybot."""
    key, secret = h.keys[account]
    own = make_rest("binanceusdm", VenueMode.SIM, api_key=key, secret=secret,
                    rest_url=h.sim.rest_url, ws_url=h.sim.ws_url)  # fmt: skip
    try:
        await own.create_order(BTC, "market", side, qty)
    finally:
        await own.close()


async def reconcile(h: Harness) -> ReconcileReport:
    assert h.daemon is not None
    assert h.daemon.reconciler is not None
    return await h.daemon.reconciler.run_once("test")


async def test_a_close_while_down_is_mirrored_on_start(harness: Harness) -> None:
    h = harness
    await follower_holding(h)
    await h.stop_daemon()
    await h.trade(BTC, "sell", "0.1", reduceOnly=True)  # the lead closes while copybot is down
    engine = await h.start_daemon()
    await h.settle()
    assert "BTCUSDT" not in await h.positions("f")
    with_fill = engine.journal.lead_fill_status("lead", str((await h.admin("lead"))["trades"][-1]["id"]))
    assert with_fill is not None  # journaled as already in the start snapshot


async def test_drift_is_only_reported_in_report_mode(harness: Harness) -> None:
    h = harness
    engine = await follower_holding(h, reconcile={"mode": "report"})
    # The owner sells part of copybot's quantity by hand (one he buys beside it is his own:
    # tests/integration/test_manual_trades.py).
    await trade_by_hand(h, "f", "sell", "0.005")
    report = await reconcile(h)
    assert [(d.follower, d.symbol, d.position, d.target) for d in report.drifts] == [
        ("f", BTC, "0.015", "0.020")
    ]
    await h.settle()
    assert (await h.positions("f"))["BTCUSDT"] == Decimal("0.015")  # reported, not corrected
    assert engine.metrics.drift.labels("f")._value.get() == 1


async def test_drift_is_corrected_in_correct_mode(harness: Harness) -> None:
    h = harness
    await follower_holding(h)
    await trade_by_hand(h, "f", "sell", "0.015")
    await reconcile(h)
    await h.settle()
    assert (await h.positions("f"))["BTCUSDT"] == Decimal("0.020")
    # The alert names the follower, the symbol and how far off it was.
    h.engine.journal.flush()
    (event,) = h.engine.journal.events("reconcile_drift")
    assert event.subject == "f"
    assert event.detail["follower"] == "f"
    assert event.detail["drifts"] == [
        {"symbol": BTC, "position": "0.005", "target": "0.020", "size": "0.015"}
    ]
