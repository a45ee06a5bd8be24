"""AUM flows against performance in the running daemon (docs/aum.md): a follower added and one
removed with a position open through the control API are flows in /aum, in `copybot aum` and on
the dashboard, with who made them; a price move is performance; bad input is a 400. Real ccxt
against the local exchange (frozen prices: the amounts are exact)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from bot.cli import main
from tests.integration.harness import BTC, Harness, follower
from tests.integration.membership_helpers import MULT, api, block, set_price, with_token


def _split_holds(period: dict[str, Any]) -> None:
    start, end = Decimal(period["start_aum"]), Decimal(period["end_aum"])
    assert end - start == Decimal(period["net_flows"]) + Decimal(period["performance"]), period


async def test_joins_and_a_leave_with_a_position_open_are_flows(
    harness: Harness, capsys: pytest.CaptureFixture[str]
) -> None:
    h = harness
    h.build_config([follower("a", MULT), follower("b", MULT)], api=with_token(h))
    engine = await h.start_daemon()
    await h.trade(BTC, "buy", "0.1")
    await h.settle(fills=1)
    status, body = await api(h, "POST", "/followers", {"follower": block(h, "c"), "actor": "ops"})
    assert status == 200, body
    b_equity = engine.followers["b"].balance.equity
    status, body = await api(h, "DELETE", "/followers/b", {"on_leave": "keep", "actor": "ops"})
    assert status == 200, body

    status, report = await api(h, "GET", "/aum?period=1h&periods=2")
    assert status == 200, report
    lead = report["flows"]["leads"]["lead"]
    flows = {(f["kind"], f["follower"]): f for f in lead["recent"]}
    assert set(flows) == {("join", "a"), ("join", "b"), ("join", "c"), ("leave", "b")}
    assert flows[("join", "a")]["actor"] == "start"
    assert flows[("join", "c")]["actor"].startswith("api:ops@")
    assert Decimal(flows[("join", "c")]["amount"]) == Decimal(20_000)  # no allocation: its equity
    # b leaves holding 0.010 BTC: it stops counting at its equity then, fees and all
    assert Decimal(flows[("leave", "b")]["amount"]) == -b_equity
    now = lead["periods"][-1]
    assert (now["joined"], now["left"]) == (3, 1)
    assert Decimal(now["net_flows"]) == Decimal(20_000) + Decimal(20_000) + Decimal(20_000) - b_equity
    _split_holds(now)
    assert lead["retention"]["following"] == 2

    # A price move: performance, not a flow (a and c hold 0.010 BTC each, copied at 60,000.5).
    await set_price(h, "BTCUSDT", "61000.5")
    await asyncio.sleep(1.5)  # the marks reach the followers' equity, the AUM loop observes
    status, later = await api(h, "GET", "/aum?period=1h&periods=1")
    (period,) = later["flows"]["leads"]["lead"]["periods"]
    assert period["net_flows"] == now["net_flows"]
    assert Decimal(period["performance"]) > Decimal(now["performance"])
    _split_holds(period)

    # The dashboard shows the same block (its period is the last day).
    status, day = await api(h, "GET", "/aum?period=1d&periods=1")
    status, doc = await api(h, "GET", "/dashboard/state")
    assert status == 200
    shown = doc["flows"]["lead"]
    assert (shown["period"]["net_flows"], shown["period"]["joined"], shown["period"]["left"]) == (
        day["flows"]["leads"]["lead"]["periods"][0]["net_flows"], 3, 1)  # fmt: skip
    assert shown["retention"]["following"] == 2

    # The command line prints the same split (it reads /aum like an operator would).
    port = h.daemon.bound_api_port if h.daemon else None
    code = await asyncio.to_thread(main, ["aum", "--api", f"http://127.0.0.1:{port}", "--period", "1h"])
    out = capsys.readouterr().out
    assert code == 0
    assert "AUM change of lead per 1h" in out
    assert "net flows" in out
    assert "median time followed" in out

    for query, words in (("period=7days", "unit"), ("periods=0", "periods"), ("bogus=1", "bogus")):
        status, body = await api(h, "GET", f"/aum?{query}")
        assert status == 400, (query, body)
        assert words in body["error"]
