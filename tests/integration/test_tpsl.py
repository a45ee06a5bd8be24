"""Take-profit and stop-loss on copied positions: reduce-only trigger orders rest at the venue (real
ccxt against the local exchange), act while the daemon is down, and the daemon restarted after
one closed the copy does not reopen it; the copy resumes when the lead closes and reopens."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest

from bot.sim.conditional import Conditional
from tests.integration.harness import BTC, Harness, follower
from tests.integration.membership_helpers import api, with_token

SIZING = {"mode": "multiplier", "multiplier": "0.2"}
PROTECT = {"take_profit_pct": "2", "stop_loss_pct": "1"}


def resting(h: Harness, account: str) -> dict[str, Conditional]:
    """The account's conditional orders waiting at the venue, by trigger direction."""
    acct = h.sim.engine.accounts[h.keys[account][0]]
    return {c.direction: c for c in h.sim.engine.conditionals.of(acct).values() if c.is_open}


def every(h: Harness, account: str) -> list[Conditional]:
    return list(h.sim.engine.conditionals.of(h.sim.engine.accounts[h.keys[account][0]]).values())


async def copied_and_protected(h: Harness) -> tuple[Conditional, Conditional]:
    h.build_config([follower("f", SIZING, **PROTECT)])
    await h.start_daemon()
    await h.trade(BTC, "buy", "0.1")
    await h.settle(fills=1)
    assert (await h.positions("f"))["BTCUSDT"] == Decimal("0.020")
    orders = resting(h, "f")
    assert set(orders) == {"up", "down"}, "a take-profit above and a stop-loss below the long"
    return orders["up"], orders["down"]


@pytest.mark.slow
@pytest.mark.parametrize("venue", ["binance", "bybit"])
@pytest.mark.parametrize("kind", ["tp", "sl"])
async def test_trigger_while_down_is_not_reopened_and_copy_resumes_on_reopen(
    tmp_path: object, kind: str, venue: str
) -> None:
    from pathlib import Path

    async with Harness(Path(str(tmp_path)), follower_venue=venue) as h:
        tp, sl = await copied_and_protected(h)
        acct = h.sim.engine.accounts[h.keys["f"][0]]
        entry = acct.position("BTCUSDT").entry_price
        # percent of the follower's own entry, rounded away from it to the tick (0.10)
        assert tp.trigger_price >= entry * Decimal("1.02") > tp.trigger_price - Decimal("0.1")
        assert sl.trigger_price <= entry * Decimal("0.99") < sl.trigger_price + Decimal("0.1")
        assert tp.reduce_only
        assert sl.reduce_only
        assert tp.working_type == sl.working_type == "MARK_PRICE"
        assert tp.qty == sl.qty == Decimal("0.020")
        assert tp.client_id.startswith("cb")  # a copybot client id: copybot's own order

        await h.stop_daemon()
        fired = tp if kind == "tp" else sl
        h.sim.engine.set_price("BTCUSDT", fired.trigger_price)  # the mark reaches it while down
        assert "BTCUSDT" not in await h.positions("f")  # the venue closed the copy by itself
        assert (await h.positions("lead"))["BTCUSDT"] == Decimal("0.1")

        engine = await h.start_daemon()
        await h.settle()
        assert "BTCUSDT" not in await h.positions("f"), "the restarted daemon reopened it"
        follower_rt = engine.followers["f"]
        assert ("lead", BTC) in follower_rt.holds
        assert resting(h, "f") == {}, "the other order was cancelled"
        engine.journal.flush()
        (event,) = engine.journal.events("tpsl_triggered")
        assert event.detail["kind"] == kind
        assert event.detail["symbol"] == BTC
        # a reconcile pass does not reopen it either
        assert h.daemon is not None
        assert h.daemon.reconciler is not None
        await h.daemon.reconciler.run_once("test")
        await h.settle()
        assert "BTCUSDT" not in await h.positions("f")
        # the lead adds: still paused
        await h.trade(BTC, "buy", "0.05")
        await h.settle(fills=1)
        assert "BTCUSDT" not in await h.positions("f")
        # the lead closes, then reopens: copied again, with fresh TP/SL orders
        await h.trade(BTC, "sell", "0.15", reduceOnly=True)
        await h.trade(BTC, "buy", "0.1")
        await h.settle(fills=3)
        assert (await h.positions("f"))["BTCUSDT"] == Decimal("0.020")
        assert set(resting(h, "f")) == {"up", "down"}
        assert ("lead", BTC) not in follower_rt.holds
        ids = [c.client_id for c in every(h, "f")]
        assert len(ids) == len(set(ids)), "a client id was used twice"


async def test_orders_follow_the_position_and_go_when_it_closes(harness: Harness) -> None:
    h = harness
    tp, sl = await copied_and_protected(h)
    await h.trade(BTC, "buy", "0.1")  # the lead adds: the copy doubles, the orders cover all of it
    await h.settle(fills=2)
    orders = resting(h, "f")
    assert {c.qty for c in orders.values()} == {Decimal("0.040")}
    assert tp.status == sl.status == "CANCELED"
    ids = {c.client_id for c in orders.values()}
    await h.trade(BTC, "sell", "0.1", reduceOnly=True)  # a reduction leaves entry and triggers
    await h.settle(fills=3)
    assert (await h.positions("f"))["BTCUSDT"] == Decimal("0.020")
    assert {c.client_id for c in resting(h, "f").values()} == ids  # kept: they cap at the position
    await h.trade(BTC, "sell", "0.1", reduceOnly=True)  # the lead closes: no order left behind
    await h.settle(fills=4)
    assert "BTCUSDT" not in await h.positions("f")
    assert resting(h, "f") == {}


async def test_restart_finds_its_orders_instead_of_placing_more(harness: Harness) -> None:
    h = harness
    tp, sl = await copied_and_protected(h)
    before = {c.client_id for c in every(h, "f")}
    assert h.http is not None
    assert h.daemon is not None
    async with h.http.get(f"http://127.0.0.1:{h.daemon.bound_api_port}/status") as resp:
        shown = (await resp.json())["followers"]["f"]["tpsl"][BTC]
    assert shown["tp"]["client_order_id"] == tp.client_id
    assert shown["sl"]["trigger_price"] == str(sl.trigger_price)
    await h.stop_daemon()
    await h.start_daemon()
    await h.settle()
    assert {c.client_id for c in every(h, "f")} == before
    assert set(resting(h, "f")) == {"up", "down"}


async def test_trigger_while_running_pauses_before_the_next_lead_fill(harness: Harness) -> None:
    """The mark feed sees the stop crossed: the follower re-reads its account at once, so the lead's
    next add is not copied onto a position the venue already closed."""
    h = harness
    _, sl = await copied_and_protected(h)
    engine = h.engine
    h.sim.engine.set_price("BTCUSDT", sl.trigger_price - Decimal("10"))
    assert "BTCUSDT" not in await h.positions("f")
    for _ in range(200):  # the public mark feed pushes every second
        if ("lead", BTC) in engine.followers["f"].holds:
            break
        await asyncio.sleep(0.05)
    assert ("lead", BTC) in engine.followers["f"].holds
    await h.trade(BTC, "buy", "0.05")
    await h.settle(fills=2)
    assert "BTCUSDT" not in await h.positions("f")


async def test_keys_set_at_run_time_apply_at_the_next_account_read(harness: Harness) -> None:
    h = harness
    h.build_config([follower("f", SIZING)], api=with_token(h))
    await h.start_daemon()
    await h.trade(BTC, "buy", "0.1")
    await h.settle(fills=1)
    assert resting(h, "f") == {}  # no keys, no orders
    status, body = await api(h, "PATCH", "/followers/f", {"changes": {"risk": {"stop_loss_pct": 150}}})
    assert status == 400, body  # refused with the key path, nothing changed
    assert "stop_loss_pct" in json.dumps(body)
    status, body = await api(h, "PATCH", "/followers/f", {"changes": {"risk": {"stop_loss_pct": 3}}})
    assert status == 200, body
    assert h.daemon is not None
    assert h.daemon.reconciler is not None
    await h.daemon.reconciler.run_once("test")
    orders = resting(h, "f")
    assert set(orders) == {"down"}  # a stop-loss only
    status, body = await api(h, "PATCH", "/followers/f", {"changes": {"risk": {"stop_loss_pct": None}}})
    assert status == 200, body
    await h.daemon.reconciler.run_once("test")
    assert resting(h, "f") == {}
