"""The account's owner trades the copied symbol by hand in the middle of a copy (a separate ccxt
client on the follower's own keys, so the order carries no copybot client id), under each
`manual_trades` policy: leave (his quantity survives reconciles and restarts, copybot's own
quantity ends on target), adopt (the account ends on the copy target), alert (as leave, one alert
per hand trade). Followers on both venues of the local exchange."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from bot.live.reconciler import ReconcileReport
from bot.service.status import follower_positions
from bot.venues import VenueMode, make_rest
from tests.integration.harness import BTC, EXCHANGE, PAIRS, Harness, follower

FOLLOWER_PAIRS = [p for p in PAIRS if p.id in ("binance-binance", "binance-bybit")]
D = Decimal


async def trade_by_hand(h: Harness, account: str, side: str, qty: str) -> Any:
    """The owner trades in his own account, outside copybot."""
    key, secret = h.keys[account]
    urls = h.sim.urls[h.venue_of[account]]
    own = make_rest(EXCHANGE[h.venue_of[account]], VenueMode.SIM, api_key=key, secret=secret,
                    rest_url=urls["rest"], ws_url=urls["ws"])  # fmt: skip
    try:
        return await own.create_order(BTC, "market", side, qty)
    finally:
        await own.close()


async def copying(h: Harness, policy: str | None) -> None:
    """A follower copying the lead's 0.1 BTC at 0.2: it holds 0.020."""
    h.build_config([follower("f", {"mode": "multiplier", "multiplier": "0.2"})])
    if policy is not None:
        h.config["followers"][0]["manual_trades"] = policy
    await h.start_daemon()
    await h.trade(BTC, "buy", "0.1")
    await h.settle(fills=1)
    assert (await h.positions("f"))["BTCUSDT"] == D("0.020")


async def reconcile(h: Harness) -> ReconcileReport:
    assert h.daemon is not None
    assert h.daemon.reconciler is not None
    report = await h.daemon.reconciler.run_once("test")
    await h.settle()
    return report


def manual_events(h: Harness) -> list[Any]:
    h.engine.journal.flush()
    return h.engine.journal.events("manual_trade")


@pytest.mark.parametrize("vharness", FOLLOWER_PAIRS, indirect=True)
async def test_leave_keeps_the_owners_position_through_copies_and_a_restart(vharness: Harness) -> None:
    h = vharness
    await copying(h, None)  # leave is the default
    order = await trade_by_hand(h, "f", "buy", "0.010")
    report = await reconcile(h)
    assert report.drifts == []  # measured on copybot's own 0.020: on target
    assert (await h.positions("f"))["BTCUSDT"] == D("0.030")  # the owner's 0.010 is not sold
    (event,) = manual_events(h)
    assert event.subject == "f"
    keys = ("follower", "symbol", "qty", "order_id", "policy", "manual_qty")
    assert {k: event.detail[k] for k in keys} == {
        "follower": "f", "symbol": BTC, "qty": "0.010", "order_id": str(order["id"]), "policy": "leave",
        "manual_qty": "0.010",
    }  # fmt: skip
    assert h.engine.journal.manual_trades_applied("f") == {str(order["id"]): D("0.010")}

    # The lead adds in the middle of it: copybot's own quantity goes to its new target, 0.040.
    await h.trade(BTC, "buy", "0.1")
    await h.settle(fills=2)
    assert (await h.positions("f"))["BTCUSDT"] == D("0.050")
    follower_rt = h.engine.followers["f"]
    assert follower_rt.own(BTC) == D("0.040")
    assert (await reconcile(h)).drifts == []
    assert len(manual_events(h)) == 1  # the same hand trade is not seen twice

    # A restart: the owner's quantity comes back from the journal, a hand trade made while copybot
    # was down is found by the start's pass (once), and nothing is traded away.
    await h.stop_daemon()
    await trade_by_hand(h, "f", "buy", "0.005")
    engine = await h.start_daemon()
    await h.settle()
    assert engine.followers["f"].manual.manual(BTC) == D("0.015")
    assert (await reconcile(h)).drifts == []
    assert (await h.positions("f"))["BTCUSDT"] == D("0.055")
    assert [e.detail["qty"] for e in manual_events(h)] == ["0.005", "0.010"]  # most recent first
    status = follower_positions(engine, "f")[BTC]
    assert (status["position"], status["own"], status["manual"], status["match"]) == (
        "0.055",
        "0.040",
        "0.015",
        True,
    )

    # The lead closes: copybot closes its own 0.040; the owner's 0.015 stays.
    await h.trade(BTC, "sell", "0.2", reduceOnly=True)
    await h.settle(fills=1)  # the first since the restart
    await reconcile(h)
    assert (await h.positions("f"))["BTCUSDT"] == D("0.015")


@pytest.mark.parametrize("vharness", FOLLOWER_PAIRS, indirect=True)
async def test_adopt_takes_the_owners_trade_into_the_copy(vharness: Harness) -> None:
    h = vharness
    await copying(h, "adopt")
    order = await trade_by_hand(h, "f", "buy", "0.010")
    report = await reconcile(h)
    assert [(d.position, d.target) for d in report.drifts] == [("0.030", "0.020")]
    assert (await h.positions("f"))["BTCUSDT"] == D("0.020")  # reconciled to the copy target
    (event,) = manual_events(h)
    assert (event.detail["order_id"], event.detail["policy"], event.detail["qty"]) == (
        str(order["id"]),
        "adopt",
        "0.010",
    )
    assert h.engine.followers["f"].manual.manual(BTC) == 0


@pytest.mark.parametrize("vharness", FOLLOWER_PAIRS, indirect=True)
async def test_alert_raises_one_alert_per_hand_trade_and_leaves_the_position(vharness: Harness) -> None:
    h = vharness
    await copying(h, "alert")
    sent: list[tuple[str, str, dict[str, Any], str]] = []
    engine = h.engine
    engine.alerts = _Recorder(sent)
    order = await trade_by_hand(h, "f", "buy", "0.010")
    for _ in range(2):  # seen at the first pass only
        assert (await reconcile(h)).drifts == []
    assert (await h.positions("f"))["BTCUSDT"] == D("0.030")
    ((kind, subject, detail, severity),) = [a for a in sent if a[0] == "manual_trade"]
    assert (kind, subject, severity) == ("manual_trade", "f", "warning")
    assert (detail["follower"], detail["symbol"], detail["size"], detail["order_id"]) == (
        "f",
        BTC,
        "0.010",
        str(order["id"]),
    )
    assert len(manual_events(h)) == 1  # the alert path journals it too

    # A second hand trade (he sells part of his own): one more alert.
    await trade_by_hand(h, "f", "sell", "0.004")
    assert (await reconcile(h)).drifts == []
    assert len([a for a in sent if a[0] == "manual_trade"]) == 2
    assert (await h.positions("f"))["BTCUSDT"] == D("0.026")
    assert engine.followers["f"].own(BTC) == D("0.020")


async def test_the_policy_changes_at_run_time_and_adopt_takes_what_the_owner_held(harness: Harness) -> None:
    h = harness
    await copying(h, None)
    await trade_by_hand(h, "f", "buy", "0.010")
    await reconcile(h)
    assert (await h.positions("f"))["BTCUSDT"] == D("0.030")
    assert h.daemon is not None
    assert h.daemon.membership is not None
    await h.daemon.membership.set("f", {"manual_trades": "adopt"}, "test")
    assert h.engine.followers["f"].settings.manual_trades == "adopt"
    await reconcile(h)  # the manual quantity becomes copybot's: traded to the copy target
    await reconcile(h)
    assert (await h.positions("f"))["BTCUSDT"] == D("0.020")
    h.engine.journal.flush()
    (adopted,) = h.engine.journal.events("manual_adopted")
    assert adopted.detail == {"follower": "f", "symbol": BTC, "qty": "0.010", "policy": "adopt"}


class _Recorder:
    def __init__(self, sent: list[tuple[str, str, dict[str, Any], str]]) -> None:
        self.sent = sent

    def send(self, kind: str, subject: str, detail: dict[str, Any], severity: str = "warning") -> None:
        self.sent.append((kind, subject, detail, severity))


async def test_only_a_pass_after_a_hand_trade_reads_the_order_history(harness: Harness) -> None:
    """The request budget: a pass where nobody traded by hand reads nothing more than positions and
    balance; the pass after a hand trade reads one history page for that symbol, once."""
    h = harness
    await copying(h, None)
    client = h.engine.followers["f"].client
    reads: list[tuple[str, int | None]] = []
    fetch_orders = client.fetch_orders

    async def counted(symbol: str, since: int | None = None, *args: Any, **kwargs: Any) -> Any:
        reads.append((symbol, since))
        return await fetch_orders(symbol, since, *args, **kwargs)

    client.fetch_orders = counted
    await h.trade(BTC, "buy", "0.05")  # copybot's own fills: explained, nothing to read
    await h.settle(fills=2)
    await reconcile(h)
    await reconcile(h)
    assert reads == []
    await trade_by_hand(h, "f", "sell", "0.002")
    await reconcile(h)
    assert [symbol for symbol, _ in reads] == [BTC]
    await reconcile(h)
    assert len(reads) == 1
    assert (await h.positions("f"))["BTCUSDT"] == D("0.030")  # 0.028 by hand, bought back


async def test_the_owner_going_short_beside_the_copy(harness: Harness) -> None:
    """In a one-way account the owner sells past copybot's long: copybot's quantity goes to zero
    and the rest is his short; the copy is bought back beside it, and the lead's close is sent as a
    plain sell (reduce-only would be refused: the account is short), leaving his short."""
    h = harness
    await copying(h, None)
    await trade_by_hand(h, "f", "sell", "0.050")
    assert (await h.positions("f"))["BTCUSDT"] == D("-0.030")
    await reconcile(h)  # copybot's 0.020 is bought back: the account holds -0.010
    follower_rt = h.engine.followers["f"]
    assert (await h.positions("f"))["BTCUSDT"] == D("-0.010")
    assert (follower_rt.own(BTC), follower_rt.manual.manual(BTC)) == (D("0.020"), D("-0.030"))
    assert (await reconcile(h)).drifts == []

    await h.trade(BTC, "sell", "0.1", reduceOnly=True)
    await h.settle(fills=2)
    assert (await h.positions("f"))["BTCUSDT"] == D("-0.030")  # his short, untouched
    assert follower_rt.own(BTC) == 0
    assert (await reconcile(h)).drifts == []


async def test_an_unreadable_order_history_corrects_nothing_until_it_is_read(harness: Harness) -> None:
    """While the account's orders cannot be read, the owner's quantity is unknown: the symbol is
    skipped, not traded; the next pass that reads it finds the hand trade."""
    h = harness
    await copying(h, None)
    await h.fault(api_key=h.keys["f"][0], path="/fapi/v1/allOrders", method="GET", http_status=500,
                  code=-1000, count=1)  # fmt: skip
    await trade_by_hand(h, "f", "buy", "0.010")
    report = await reconcile(h)
    assert report.drifts == []
    assert "f: BTC/USDT:USDT manual trades unread" in report.skipped
    assert (await h.positions("f"))["BTCUSDT"] == D("0.030")  # not sold
    assert manual_events(h) == []
    report = await reconcile(h)
    assert (report.drifts, report.skipped) == ([], [])
    assert (await h.positions("f"))["BTCUSDT"] == D("0.030")
    assert [e.detail["qty"] for e in manual_events(h)] == ["0.010"]
