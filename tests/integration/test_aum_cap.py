"""The AUM cap in the running daemon: real ccxt against the local exchange, no mocks. The cap pass is
called here the way the daemon's AUM service runs it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.aum.service import AumService
from bot.service import aum_routes as aum_api
from bot.sim.config import SimConfig, load_sim_config
from bot.sim.server import SimExchange
from tests.integration.harness import BTC, THIN, Harness, follower

ALLOC = {"mode": "allocation", "allocation": 10_000}


@asynccontextmanager
async def serve_aum(aum: AumService) -> AsyncIterator[str]:
    app = web.Application()
    app.add_routes(aum_api.aum_routes(aum))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def get_json(url: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return resp.status, await resp.json()


async def test_absolute_cap_refuses_the_excess_and_the_route_answers(harness: Harness) -> None:
    h = harness
    h.build_config(
        [follower(fid, ALLOC, balance=20_000) for fid in ("a", "b", "c")],
        aum={"cap": 25_000},
    )
    engine = await h.start_daemon()
    aum = h.aum
    # The daemon applied the cap at start, before the first copy: a second pass changes nothing.
    assert aum.apply_cap() == []

    await h.trade(BTC, "buy", "0.1")
    await h.settle(fills=1)
    # a and b copy 10,000 / 100,000 of the lead; c only the admitted half of its allocation.
    positions = {fid: (await h.positions(fid)).get("BTCUSDT") for fid in ("a", "b", "c")}
    assert positions == {"a": Decimal("0.010"), "b": Decimal("0.010"), "c": Decimal("0.005")}

    (row,) = aum.lead_rows(now_ms=0)
    assert row.aum <= Decimal(25_000)
    assert Decimal(aum.snapshot()["lead"]) <= Decimal(25_000)  # the AUM history agrees

    engine.journal.flush()
    events = engine.journal.events(kind="aum_cap")
    assert [(e.subject, e.detail["admitted"]) for e in events] == [("c", "5000.0000")]
    assert "refused 5000.00" in events[0].detail["reason"]

    async with serve_aum(aum) as base:
        status, body = await get_json(f"{base}/aum?by=aum")
        assert status == 200
        assert [lead["lead"] for lead in body["leads"]] == ["lead"]
        assert Decimal(body["leads"][0]["aum"]) <= Decimal(body["leads"][0]["cap"]) == Decimal(25_000)
        assert [r["follower"] for r in body["refused"]] == ["c"]
        assert body["slippage"]["by_lead"]["lead"]["count"] == 3
        assert {f["follower"] for f in body["fairness"]["followers"]} == {"a", "b", "c"}
        status, body = await get_json(f"{base}/aum?by=nonsense")
        assert status == 400
        assert "unknown column" in body["error"]


def refilling_thin_book() -> SimConfig:
    """The default markets with the thin book's price frozen and its levels refilling in a tenth of
    a second, so that the book the cap is derived from is the same before and after the trades."""
    base = load_sim_config(tick_interval_s=0)
    markets = tuple(
        m.model_copy(update={"volatility": Decimal(0), "refill_per_s": Decimal(10)})
        if m.symbol == "THINUSDT"
        else m
        for m in base.markets
    )
    return base.model_copy(update={"markets": markets})


async def test_cap_derived_from_max_slippage_uses_the_live_book(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.sim = SimExchange(refilling_thin_book())
    async with h:
        await derived_cap_scenario(h)


async def derived_cap_scenario(h: Harness) -> None:
    # Four followers at 50,000 each copy twice the lead's size on the thin book: 100 units at the
    # lead's price (what it left of the first level) and 100 one level worse (+20 bps) average 10
    # bps, over the 5 allowed. The cap is where the average reaches 5 bps: about 2/3 of today's AUM.
    big = {"mode": "allocation", "allocation": 50_000}
    h.build_config([follower(f"f{i}", big, balance=50_000) for i in range(4)], aum={"max_slippage_bps": 5})
    await h.start_daemon()
    aum = h.aum
    await aum.refresh_capacity()
    assert aum.effective_cap("lead") is None  # no lead entry yet: nothing to size

    await h.trade(THIN, "buy", "100")
    await h.settle(fills=1)
    await h.trade(THIN, "sell", "100", reduceOnly=True)
    await h.settle(fills=2)
    await asyncio.sleep(0.3)  # the book refills
    await aum.refresh_capacity()
    cap = aum.effective_cap("lead")
    assert cap is not None
    assert Decimal(120_000) < cap < Decimal(145_000)
    reasons = aum.apply_cap()
    assert reasons
    assert all("AUM cap" in r for r in reasons)
    (row,) = aum.lead_rows(now_ms=0)
    assert row.aum <= cap
    assert row.projected_slippage_bps is not None
    assert row.trades == 2
