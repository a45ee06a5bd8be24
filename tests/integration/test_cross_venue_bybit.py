"""Copying across venues with ccxt's own clients: a Binance lead with followers on Binance and Bybit,
and a Bybit lead with followers on both, over one local exchange that speaks both protocols.

The instrument Binance lists as 1000PEPE/USDT:USDT (1 contract = 1,000 PEPE) is Bybit's
PEPE/USDT:USDT (qty step 1,000 PEPE), mapped by the config's `symbol_map`. The exchange's admin
view speaks engine (Binance) symbols and units for every account, so positions on both venues
compare directly: 1000PEPEUSDT 2,500 is 2,500,000 PEPE on Bybit."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sqlite3
from collections.abc import AsyncIterator
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.sim.config import load_sim_config
from bot.sim.server import SimExchange
from bot.venues import VenueMode, make_rest
from tests.integration.harness import BTC, Harness, follower

PEPE_BINANCE = "1000PEPE/USDT:USDT"
PEPE_BYBIT = "PEPE/USDT:USDT"
SYMBOL_MAP = {
    "PEPE": {"local": {"symbol": PEPE_BINANCE, "multiplier": 1000}, "bybit": {"symbol": PEPE_BYBIT}}
}
# engine lot steps (the admin view): BTC 0.001 on both; PEPE 1 contract = 1,000 PEPE = Bybit's qtyStep
STEPS = {"BTCUSDT": Decimal("0.001"), "1000PEPEUSDT": Decimal(1)}


@pytest.fixture
async def xharness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = Harness(tmp_path)
    h.sim = SimExchange(load_sim_config(tick_interval_s=0), venues=("binance", "bybit"))
    async with h:
        yield h


def bybit_account(h: Harness, account_id: str, balance: int) -> None:
    h.account(account_id, balance, "bybit")


def cross_config(
    h: Harness, followers: list[dict[str, Any]], *, on_bybit: set[str], lead_on_bybit: bool
) -> None:
    for f in followers:
        if f["id"] in on_bybit:
            bybit_account(h, f["id"], f["balance"])
    if lead_on_bybit:
        bybit_account(h, "lead", 100_000)
    config = h.build_config(followers, symbol_map=SYMBOL_MAP)
    urls = h.sim.urls["bybit"]
    config["venues"]["bybit"] = {
        "exchange": "bybit",
        "mode": "sim",
        "rest_url": urls["rest"],
        "ws_url": urls["ws"],
    }
    for row in config["followers"]:
        if row["id"] in on_bybit:
            row["venue"] = "bybit"
    lead = config["leads"][0]
    if lead_on_bybit:
        lead.update(venue="bybit", symbols=[BTC, PEPE_BYBIT])
    else:
        lead["symbols"] = [BTC, PEPE_BINANCE]


async def bybit_lead(h: Harness) -> Any:
    if "lead" not in h.lead_clients:
        key, secret = h.keys["lead"]
        urls = h.sim.urls["bybit"]
        client = make_rest("bybit", VenueMode.SIM, api_key=key, secret=secret, rest_url=urls["rest"],
                           ws_url=urls["ws"])  # fmt: skip
        await client.load_markets()
        h.lead_clients["lead"] = client
    return h.lead_clients["lead"]


def journal(h: Harness, sql: str) -> list[Any]:
    with sqlite3.connect(h.config["journal"]["path"]) as db:
        return list(db.execute(sql))


async def assert_on_target(h: Harness, expected: dict[str, dict[str, Decimal]]) -> None:
    """Each follower's position (engine units) within one lot step of its target."""
    for fid, targets in expected.items():
        held = await h.positions(fid)
        for symbol, target in targets.items():
            assert abs(held.get(symbol, Decimal(0)) - target) < STEPS[symbol], (fid, symbol, held, target)


def assert_every_fill_accounted(h: Harness, followers: list[str], lead_trades: int) -> None:
    """Invariant 1: each lead fill the exchange made is journaled and has a disposition (an order,
    a denial or a deferral with its reason) for every follower."""
    fills = [r[0] for r in journal(h, "select trade_id from lead_fills where lead = 'lead'")]
    assert len(fills) == lead_trades
    accounted = {(str(t), str(f)) for t, f in journal(h, "select trigger, follower from decisions")}
    missing = [(t, f) for t in fills for f in followers if (t, f) not in accounted]
    assert not missing, f"lead fills without a recorded disposition: {missing}"
    denied = journal(h, "select reason from decisions where verdict = 'denied' and reason is null")
    assert not denied


def assert_orders_settled(h: Harness, followers: set[str]) -> None:
    """A Bybit create reply carries no status: every order is still settled (by lookup) with its
    fills and price, none left unknown."""
    rows = journal(h, "select follower, status, avg_price, error from orders")
    mine = [r for r in rows if r[0] in followers]
    assert mine
    for _, status, avg_price, error in mine:
        assert status in ("filled", "expired"), mine
        assert avg_price is not None
        assert error is None


async def test_binance_lead_to_bybit_and_binance_followers(xharness: Harness) -> None:
    h = xharness
    followers = [
        follower("bin", {"mode": "multiplier", "multiplier": "0.5"}),
        follower("byb", {"mode": "multiplier", "multiplier": "0.5"}),
        follower("byb-eq", {"mode": "equity_ratio"}, balance=25_000),
    ]
    cross_config(h, followers, on_bybit={"byb", "byb-eq"}, lead_on_bybit=False)
    await h.start_daemon()

    await h.trade(BTC, "buy", "0.123")
    await h.trade(PEPE_BINANCE, "buy", "5000")  # 5,000,000 PEPE, about 60 USDT
    await h.settle(fills=2)
    await h.trade(PEPE_BINANCE, "sell", "1234", reduceOnly=True)
    await h.trade(BTC, "sell", "0.2")  # a flip: 0.123 long -> 0.077 short
    await h.settle(fills=4)

    lead = await h.positions("lead")
    assert lead == {"BTCUSDT": Decimal("-0.077"), "1000PEPEUSDT": Decimal(3766)}
    quarter = Decimal("0.25")  # 25,000 / 100,000 of the lead's equity
    await assert_on_target(h, {
        "bin": {"BTCUSDT": Decimal("-0.0385"), "1000PEPEUSDT": Decimal(1883)},
        "byb": {"BTCUSDT": Decimal("-0.0385"), "1000PEPEUSDT": Decimal(1883)},
        "byb-eq": {"BTCUSDT": lead["BTCUSDT"] * quarter, "1000PEPEUSDT": lead["1000PEPEUSDT"] * quarter},
    })  # fmt: skip
    assert_every_fill_accounted(
        h, ["bin", "byb", "byb-eq"], lead_trades=len((await h.admin("lead"))["trades"])
    )
    assert_orders_settled(h, {"byb", "byb-eq"})
    # Bybit followers' orders carry Bybit-legal orderLinkIds; the Binance follower keeps its form.
    ids = {f: {r[0] for r in journal(h, f"select client_order_id from orders where follower = '{f}'")}
           for f in ("bin", "byb")}  # fmt: skip
    assert all("." not in cid and len(cid) <= 36 for cid in ids["byb"])
    assert all("." in cid for cid in ids["bin"])


async def test_bybit_lead_to_binance_and_bybit_followers(xharness: Harness) -> None:
    h = xharness
    followers = [
        follower("bin", {"mode": "multiplier", "multiplier": "0.5"}),
        follower("byb", {"mode": "multiplier", "multiplier": "0.5"}),
        follower("bin-fixed", {"mode": "fixed_notional", "notional": 300}),
    ]
    cross_config(h, followers, on_bybit={"byb"}, lead_on_bybit=True)
    await h.start_daemon()
    lead = await bybit_lead(h)

    await lead.create_order(BTC, "market", "buy", "0.05")
    await lead.create_order(PEPE_BYBIT, "market", "sell", "8000000")  # 8,000 contracts on Binance
    await h.settle(fills=2)
    await lead.create_order(PEPE_BYBIT, "market", "buy", "2001000", None, {"reduceOnly": True})
    await lead.create_order(BTC, "market", "buy", "0.021")
    await h.settle(fills=4)

    held = await h.positions("lead")
    assert held == {"BTCUSDT": Decimal("0.071"), "1000PEPEUSDT": Decimal(-5999)}
    await assert_on_target(h, {
        "bin": {"BTCUSDT": Decimal("0.0355"), "1000PEPEUSDT": Decimal("-2999.5")},
        "byb": {"BTCUSDT": Decimal("0.0355"), "1000PEPEUSDT": Decimal("-2999.5")},
    })  # fmt: skip
    fixed = await h.positions("bin-fixed")
    # fixed_notional: 300 USDT per lead entry order, in the follower's own units (1000PEPE contracts)
    pepe_price = Decimal("0.012")
    assert abs(fixed["1000PEPEUSDT"] * pepe_price + Decimal(300) * Decimal(5999) / Decimal(8000)) < 2
    lead_trades = len((await h.admin("lead"))["trades"])
    assert lead_trades >= 4
    assert_every_fill_accounted(h, ["bin", "byb", "bin-fixed"], lead_trades=lead_trades)
    assert_orders_settled(h, {"byb"})


# -- kill -9 in the middle of a cross-venue fan-out ---------------------------------------------------

CROSS_FOLLOWERS = {"bin-a": "0.5", "bin-b": "0.25", "byb-a": "0.5", "byb-b": "0.25", "byb-c": "0.1"}
CROSS_KILLS = 6
LOT = {"BTCUSDT": Decimal("0.001"), "1000PEPEUSDT": Decimal(1)}  # engine units, both venues
MIN_NOTIONAL = {"BTCUSDT": Decimal(100), "1000PEPEUSDT": Decimal(5)}
PRICE_BOUND = {"BTCUSDT": Decimal(61_000), "1000PEPEUSDT": Decimal("0.0125")}


async def cross_trader(h: Harness, stop: asyncio.Event, seed: int) -> int:
    rng = random.Random(seed)
    orders = 0
    while not stop.is_set():
        symbol, qty = rng.choice(
            [(BTC, rng.choice(["0.05", "0.1"])), (PEPE_BINANCE, rng.choice(["4000", "9000"]))]
        )
        with contextlib.suppress(Exception):
            await h.trade(symbol, rng.choice(["buy", "sell"]), qty)
            orders += 1
        await asyncio.sleep(rng.uniform(0.05, 0.3))
    return orders


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_kill_minus_nine_during_cross_venue_fan_out_places_nothing_twice(
    xharness: Harness, tmp_path: Path
) -> None:
    from tests.integration.test_restarts import (
        converged,
        free_port,
        kill_repeatedly,
        spawn,
        wait_for,
        write_config,
    )

    h = xharness
    followers = [follower(fid, {"mode": "multiplier", "multiplier": m}) for fid, m in CROSS_FOLLOWERS.items()]
    cross_config(
        h, followers, on_bybit={f for f in CROSS_FOLLOWERS if f.startswith("byb")}, lead_on_bybit=False
    )
    port = free_port()
    config = tmp_path / "copybot.yaml"
    write_config(h, config, port)
    log = tmp_path / "daemon.log"
    lead_orders = await kill_repeatedly(
        h, config, log, port, kills=CROSS_KILLS, rng=random.Random(20261128), pause_s=(0.5, 3.0),
        trader=lambda stop: cross_trader(h, stop, seed=12),
    )  # fmt: skip
    assert lead_orders > 10

    proc = await spawn(config, h.env, log)
    try:
        await wait_for(lambda: converged(port), 60, "followers on target after the last restart")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0, log.read_text()[-3000:]

    lead_data = await h.admin("lead")
    lead_pos = {p["symbol"]: Decimal(p["positionAmt"]) for p in lead_data["positions"]}
    volume = {s: Decimal(0) for s in LOT}
    for t in lead_data["trades"]:
        volume[t["symbol"]] += Decimal(t["qty"])
    fills = len(lead_data["trades"])
    for fid, m in CROSS_FOLLOWERS.items():
        data = await h.admin(fid)
        held = {p["symbol"]: Decimal(p["positionAmt"]) for p in data["positions"]}
        for symbol, lot in LOT.items():
            target = (lead_pos.get(symbol, Decimal(0)) * Decimal(m)).quantize(lot, rounding=ROUND_DOWN)
            position = held.get(symbol, Decimal(0))
            if position != target:  # only an entry below the venue minimum may wait
                assert abs(position) < abs(target), (fid, symbol, position, target)
                assert abs(target - position) * PRICE_BOUND[symbol] < MIN_NOTIONAL[symbol], (fid, symbol)
            traded = sum(Decimal(o["executedQty"]) for o in data["orders"] if o["symbol"] == symbol)
            assert traded <= volume[symbol] * Decimal(m) + fills * lot, (fid, symbol, traded)
        assert {o["symbol"] for o in data["orders"] if Decimal(o["executedQty"])} == set(LOT), fid
        ids = [o["clientOrderId"] for o in data["orders"] if o["clientOrderId"]]
        assert len(ids) == len(set(ids)), f"{fid}: a client order id was used twice"
    journaled = {str(r[0]) for r in journal(h, "select trade_id from lead_fills")}
    missing = {str(t["id"]) for t in lead_data["trades"]} - journaled
    assert not missing, f"lead fills missing from the journal: {sorted(missing)[:10]}"


# -- a Bybit follower's order faults, and a Bybit lead's stream drop ---------------------------------


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param({"code": 10006, "http_status": 200, "count": 1}, id="10006-rate-limit"),
        pytest.param({"http_status": 503, "count": 2}, id="http-503"),
        pytest.param({"delay_ms": 800, "count": 2}, id="slow-responses"),
        pytest.param({"accept_then_timeout": 1}, id="accept-then-time-out"),
    ],
)
async def test_bybit_follower_order_faults_place_exactly_one_order(
    xharness: Harness, fault: dict[str, object]
) -> None:
    h = xharness
    followers = [follower("byb", {"mode": "multiplier", "multiplier": "0.1"})]
    cross_config(h, followers, on_bybit={"byb"}, lead_on_bybit=False)
    h.config["executor"]["order_timeout_ms"] = 1500
    await h.start_daemon()
    await h.fault(api_key=h.keys["byb"][0], method="POST", path="/v5/order/create", **fault)
    await h.trade(BTC, "buy", "0.05")
    await h.settle(fills=1, timeout=30)
    orders = (await h.admin("byb"))["orders"]
    assert len(orders) == 1, orders
    assert (await h.positions("byb"))["BTCUSDT"] == Decimal("0.005")
    assert not h.engine.followers["byb"].needs_resync
    assert_orders_settled(h, {"byb"})


async def test_bybit_lead_fill_while_the_stream_is_down_is_backfilled(xharness: Harness) -> None:
    h = xharness
    followers = [follower("bin", {"mode": "multiplier", "multiplier": "0.5"})]
    cross_config(h, followers, on_bybit=set(), lead_on_bybit=True)
    await h.start_daemon()
    lead = await bybit_lead(h)
    feed = h.engine.feeds["lead"]
    sessions = feed.sessions
    await h.fault(api_key=h.keys["lead"][0], drop_ws=True)
    await lead.create_order(PEPE_BYBIT, "market", "buy", "4000000")  # probably while the stream is down
    await h.settle(fills=1, timeout=30)
    assert feed.sessions > sessions
    assert (await h.positions("bin"))["1000PEPEUSDT"] == Decimal(2000)
