"""Stops and the kill switch, against the local exchange: they change the trading state, and exits
still go through where they should."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal
from pathlib import Path

from bot.commands.control import status_lines
from bot.core.trading_state import StateCode
from bot.core.types import TradingState
from bot.service.status import snapshot
from tests.integration.harness import BTC, Harness, follower


async def wait_state(h: Harness, fid: str, state: TradingState, timeout: float = 10) -> None:
    for _ in range(int(timeout / 0.05)):
        if h.engine.followers[fid].state is state:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{fid} is {h.engine.followers[fid].state}, not {state}")


async def move_price(h: Harness, symbol_id: str, price: Decimal) -> None:
    async with h.http.post(f"{h.sim.rest_url}/_sim/price", json={"symbol": symbol_id, "price": str(price)}):  # type: ignore[union-attr]
        pass


async def test_kill_switch_file_halts_every_copy(harness: Harness, tmp_path: Path) -> None:
    h = harness
    kill = tmp_path / "KILL"
    h.build_config([follower("f", {"mode": "multiplier", "multiplier": "0.1"})], kill_switch_file=str(kill))
    engine = await h.start_daemon()
    kill.touch()
    for _ in range(60):
        if engine.kill_switch():
            break
        await asyncio.sleep(0.05)
    assert engine.kill_switch()
    # Through the one setter: the global state is HALTED with the kill switch's code.
    assert (engine.state, engine.states.global_standing.code) == (TradingState.HALTED, StateCode.KILL_SWITCH)
    # What `copybot status` shows while the file exists.
    first = status_lines(snapshot(engine))[0]
    assert first.startswith(f"global: HALTED (kill switch engaged): kill switch file {kill}")
    await h.trade(BTC, "buy", "0.05")
    await h.settle(fills=1)
    assert "BTCUSDT" not in await h.positions("f")
    kill.unlink()
    for _ in range(60):
        if not engine.kill_switch():
            break
        await asyncio.sleep(0.05)
    assert engine.state is TradingState.ACTIVE
    assert status_lines(snapshot(engine))[0].startswith("global: ACTIVE")
    await h.trade(BTC, "buy", "0.05")  # copying resumes from the target: both fills are covered
    await h.settle(fills=2)
    assert (await h.positions("f"))["BTCUSDT"] == Decimal("0.010")


async def test_kill_switch_file_present_at_start_halts_before_anything_is_placed(
    harness: Harness, tmp_path: Path
) -> None:
    h = harness
    kill = tmp_path / "KILL"
    h.build_config([follower("f", {"mode": "multiplier", "multiplier": "0.1"})], kill_switch_file=str(kill))
    await h.trade(BTC, "buy", "0.05")  # a lead position the start-up reconciliation would copy
    kill.touch()
    engine = await h.start_daemon()
    assert (engine.state, engine.states.global_standing.code) == (TradingState.HALTED, StateCode.KILL_SWITCH)
    await h.settle()
    assert (await h.admin("f"))["orders"] == []


async def test_portfolio_stop_closes_the_copy_and_halts(harness: Harness) -> None:
    h = harness
    h.build_config(
        [follower("f", {"mode": "multiplier", "multiplier": "1"}, balance=2_000, portfolio_stop="0.9")],
    )  # no account read after start (reconcile hourly): the stop comes from the mark feed
    await h.start_daemon()
    read_ms = h.engine.followers["f"].balance.read_ms
    order = await h.trade(BTC, "buy", "0.3")
    await h.settle(fills=len((await h.admin("lead"))["trades"]))
    assert (await h.positions("f"))["BTCUSDT"] == Decimal("0.300")
    price = Decimal(order["info"]["avgPrice"])
    await move_price(h, "BTCUSDT", price * Decimal("0.975"))  # about -450 USDT on 2,000: below 90%
    await wait_state(h, "f", TradingState.HALTED)
    assert h.engine.followers["f"].standing.code is StateCode.PORTFOLIO_STOP
    assert h.engine.followers["f"].balance.read_ms == read_ms, "stopped on a read, not on the mark"
    await h.settle()
    assert "BTCUSDT" not in await h.positions("f")
    with sqlite3.connect(h.config["journal"]["path"]) as db:
        stops = [r[0] for r in db.execute("select detail from events where kind = 'stop_triggered'")]
    assert any("portfolio_stop" in d for d in stops)


async def test_daily_loss_turns_entries_off_but_not_exits(harness: Harness) -> None:
    h = harness
    h.build_config(
        [follower("f", {"mode": "multiplier", "multiplier": "1"}, balance=5_000, daily_loss_limit=50)],
    )  # no account read after start (reconcile hourly): the stop comes from the mark feed
    await h.start_daemon()
    read_ms = h.engine.followers["f"].balance.read_ms
    order = await h.trade(BTC, "buy", "0.1")
    fills = len((await h.admin("lead"))["trades"])
    await h.settle(fills=fills)
    price = Decimal(order["info"]["avgPrice"])
    await move_price(h, "BTCUSDT", price * Decimal("0.985"))  # about -90 USDT today
    await wait_state(h, "f", TradingState.REDUCE_ONLY)
    assert h.engine.followers["f"].balance.read_ms == read_ms, "stopped on a read, not on the mark"
    held = (await h.positions("f"))["BTCUSDT"]
    await h.trade(BTC, "buy", "0.1")  # an entry: denied
    fills = len((await h.admin("lead"))["trades"])
    await h.settle(fills=fills)
    assert (await h.positions("f"))["BTCUSDT"] == held
    await h.trade(BTC, "sell", "0.2", reduceOnly=True)  # the exit: copied
    await h.settle(fills=len((await h.admin("lead"))["trades"]))
    assert "BTCUSDT" not in await h.positions("f")


async def test_an_operator_halt_survives_a_restart(harness: Harness) -> None:
    h = harness
    h.build_config([follower("f", {"mode": "multiplier", "multiplier": "0.1"}),
                    follower("g", {"mode": "multiplier", "multiplier": "0.1"})])  # fmt: skip
    engine = await h.start_daemon()
    engine.set_state(TradingState.HALTED, "operator: maintenance")
    engine.set_state(TradingState.REDUCE_ONLY, "operator: review", "g")
    await h.stop_daemon()
    engine = await h.start_daemon()
    assert engine.state is TradingState.HALTED
    assert engine.states.global_standing.code is StateCode.OPERATOR
    assert engine.followers["g"].state is TradingState.REDUCE_ONLY
    assert engine.followers["f"].state is TradingState.ACTIVE
    await h.trade(BTC, "buy", "0.05")
    await h.settle(fills=1)
    assert "BTCUSDT" not in await h.positions("f")
    engine.set_state(TradingState.ACTIVE, "operator: done")
    await h.stop_daemon()
    engine = await h.start_daemon()  # resumed: the start-up reconciliation copies the open position
    await h.settle()
    assert engine.state is TradingState.ACTIVE
    assert (await h.positions("f"))["BTCUSDT"] == Decimal("0.005")
