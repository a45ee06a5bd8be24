"""Copying across venues with ccxt's own clients: a Binance lead with followers on Binance and Bybit,
and a Bybit lead with followers on both, over one local exchange that speaks both protocols.

The instrument Binance lists as 1000PEPE/USDT:USDT (1 contract = 1,000 PEPE) is Bybit's
PEPE/USDT:USDT (qty step 1,000 PEPE), mapped by the config's `symbol_map`. The exchange's admin
view speaks engine (Binance) symbols and units for every account, so positions on both venues
compare directly: 1000PEPEUSDT 2,500 is 2,500,000 PEPE on Bybit."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

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
    async with Harness(tmp_path, bybit=True) as h:
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


# The kill -9 loop and the fault tests run for every lead venue x follower venue in test_restarts.py
# and test_faults.py.
