"""The mark feed: one public connection per venue keeps the engine's marks on the venue's mark price,
shows on /status and /metrics, and survives a dropped stream."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from bot.live.engine import Engine
from tests.integration.harness import BTC, ETH, Harness, follower

# xharness: both venues over one exchange (a fixture, imported for pytest to find)
from tests.integration.test_cross_venue_bybit import PEPE_BINANCE, PEPE_BYBIT, cross_config, xharness  # noqa: F401


async def set_price(h: Harness, symbol: str, price: str) -> None:
    assert h.http is not None
    async with h.http.post(f"{h.sim.rest_url}/_sim/price", json={"symbol": symbol, "price": price}) as r:
        r.raise_for_status()


async def mark_reaches(engine: Engine, symbol: str, price: Decimal, timeout: float) -> float:
    started = time.monotonic()
    while engine.mark(symbol) != price:
        assert time.monotonic() - started < timeout, f"{symbol} mark {engine.mark(symbol)}, wanted {price}"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def status_of(h: Harness) -> dict[str, Any]:
    assert h.daemon is not None
    async with aiohttp.ClientSession() as http:
        async with http.get(f"http://127.0.0.1:{h.daemon.bound_api_port}/status") as resp:
            data: dict[str, Any] = await resp.json()
        async with http.get(f"http://127.0.0.1:{h.daemon.bound_api_port}/metrics") as resp:
            data["_metrics"] = await resp.text()
    return data


async def test_engine_mark_follows_the_venue_within_two_seconds(harness: Harness) -> None:
    h = harness
    h.build_config([follower(f"f{i}", {"mode": "multiplier", "multiplier": "0.1"}) for i in range(3)])
    engine = await h.start_daemon()
    seen: list[tuple[str, Decimal, str | None]] = []
    stored = engine.on_mark

    def observed(symbol: str, price: Decimal, *, venue: str | None = None) -> None:
        seen.append((symbol, price, venue))  # the hook stops will use
        stored(symbol, price, venue=venue)

    engine.on_mark = observed  # type: ignore[method-assign]
    await mark_reaches(engine, BTC, Decimal("60000"), 5)  # the venue's mark, before any fill

    await set_price(h, "BTCUSDT", "61111.1")
    assert await mark_reaches(engine, BTC, Decimal("61111.1"), 2.5) < 2.0
    assert (BTC, Decimal("61111.1"), "local") in seen
    await set_price(h, "ETHUSDT", "3210.5")
    await mark_reaches(engine, ETH, Decimal("3210.5"), 2.5)

    # One public connection for the venue, whatever the number of followers.
    assert len(h.sim.stream.public.connections()) == 1
    status = await status_of(h)
    marks = status["marks"]["local"]
    assert marks["connected"] is True
    assert marks["age_s"] is not None
    assert marks["age_s"] < 2
    assert marks["marks"]["BTC/USDT:USDT"] == "61111.1"
    assert set(marks["symbols"]) >= {BTC, ETH}
    assert status["workers"]["marks:local"]["running"] is True
    assert 'copybot_mark_updates_total{venue="local"}' in status["_metrics"]
    assert 'copybot_mark_age_seconds{venue="local"}' in status["_metrics"]


async def test_a_dropped_public_stream_reconnects_and_copying_goes_on(harness: Harness) -> None:
    h = harness
    h.build_config([follower("f0", {"mode": "multiplier", "multiplier": "0.1"})])
    engine = await h.start_daemon()
    feed = engine.mark_feeds["local"]
    await mark_reaches(engine, BTC, Decimal("60000"), 5)
    sessions = feed.sessions
    await h.fault(drop_ws=True, public_ws=True)  # the public socket only: the lead feed stays up
    await h.trade(BTC, "buy", "0.05")  # copying does not wait for the marks
    await h.settle(fills=1)
    assert (await h.positions("f0"))["BTCUSDT"] == Decimal("0.005")
    deadline = time.monotonic() + 5
    while not (feed.sessions > sessions and feed.connected):
        assert time.monotonic() < deadline, f"mark feed did not reconnect: {feed.status()}"
        await asyncio.sleep(0.02)
    assert feed.reconnects >= 1
    assert feed.last_error is not None
    await set_price(h, "BTCUSDT", "60500")
    await mark_reaches(engine, BTC, Decimal("60500"), 2.5)
    assert engine.feeds["lead"].sessions == 1  # the lead's private stream was not touched


async def test_marks_off_means_no_public_connection(harness: Harness) -> None:
    h = harness
    h.build_config([follower("f0", {"mode": "multiplier", "multiplier": "0.1"})], feed={"marks": False})
    engine = await h.start_daemon()
    await h.trade(BTC, "buy", "0.05")
    await h.settle(fills=1)
    assert engine.mark_feeds == {}
    assert h.sim.stream.public.connections() == []
    assert engine.mark(BTC) is not None  # the fill price, as before the feed
    assert (await status_of(h))["marks"] == {}


async def test_one_feed_per_venue_and_followers_read_their_own(xharness: Harness) -> None:  # noqa: F811
    """A Binance lead, followers on Binance and Bybit: one public connection per venue; the Bybit
    follower's PEPE mark is Bybit's own (per PEPE), Binance's 1000PEPE mark stays Binance's."""
    h = xharness
    fol = [follower(fid, {"mode": "multiplier", "multiplier": "0.1"}) for fid in ("fa", "fb")]
    cross_config(h, fol, on_bybit={"fb"}, lead_on_bybit=False)
    engine = await h.start_daemon()
    assert set(engine.mark_feeds) == {"local", "bybit"}
    await set_price(h, "1000PEPEUSDT", "0.0125")
    await mark_reaches(engine, PEPE_BINANCE, Decimal("0.0125"), 3)
    await mark_reaches(engine, PEPE_BYBIT, Decimal("0.0000125"), 3)  # Bybit lists PEPE per coin
    assert engine.venue_mark("bybit", PEPE_BYBIT) == Decimal("0.0000125")
    assert engine.venue_mark("local", PEPE_BINANCE) == Decimal("0.0125")
    assert engine.followers["fb"].engine.mark(PEPE_BYBIT) == Decimal("0.0000125")
    # BTC is one unified name on both venues: each feed keeps its own, LeadView reads its venue's.
    deadline = time.monotonic() + 3
    while None in (engine.venue_mark("bybit", BTC), engine.venue_mark("local", BTC)):
        assert time.monotonic() < deadline, "a venue never said BTC's mark"
        await asyncio.sleep(0.02)
    assert engine.venue_mark("bybit", BTC) == engine.venue_mark("local", BTC) == Decimal("60000")
    assert len(h.sim.stream.public.connections()) == 1
    assert h.sim.bybit is not None
    assert len(h.sim.bybit.stream.public.connections()) == 1


async def test_a_silent_stream_is_stale_and_reconnects(harness: Harness) -> None:
    h = harness
    h.build_config([follower("f0", {"mode": "multiplier", "multiplier": "0.1"})],
                   feed={"marks_stale_after_s": 1})  # fmt: skip
    engine = await h.start_daemon()
    feed = engine.mark_feeds["local"]
    await mark_reaches(engine, BTC, Decimal("60000"), 5)
    # Stalled: no update, no pong, for longer than the limit; the sim cuts it only after 2.5 s.
    await h.fault(stall_ws=2.5, public_ws=True)
    started = time.monotonic()
    while feed.sessions < 2 or not feed.connected:
        assert time.monotonic() - started < 2.4, f"stale stream not replaced: {feed.status()}"
        await asyncio.sleep(0.02)
    # Whichever sees it first: ccxt's missed pongs (it pings at a third of the limit) or the feed's
    # own check (no update and no pong for the limit).
    assert "pong" in (feed.last_error or "")
    await set_price(h, "BTCUSDT", "60100")
    await mark_reaches(engine, BTC, Decimal("60100"), 2.5)


async def test_a_symbol_newly_in_use_is_subscribed(harness: Harness) -> None:
    h = harness
    h.build_config([follower("f0", {"mode": "multiplier", "multiplier": "0.1"})])
    del h.config["leads"][0]["symbols"]  # the lead's symbols are what it holds or trades
    engine = await h.start_daemon()
    feed = engine.mark_feeds["local"]
    assert feed.subscribed == ()
    await h.trade(ETH, "buy", "1")
    await h.settle(fills=1)
    await set_price(h, "ETHUSDT", "3333.3")
    await mark_reaches(engine, ETH, Decimal("3333.3"), 5)
    assert feed.subscribed == (ETH,)
    await h.trade(BTC, "buy", "0.05")
    await h.settle(fills=2)
    await set_price(h, "BTCUSDT", "60200")
    await mark_reaches(engine, BTC, Decimal("60200"), 5)
    assert feed.subscribed == (BTC, ETH)
    assert feed.reconnects == 0  # a resubscription is not a failure
    assert len(h.sim.stream.public.connections()) == 1


@pytest.mark.slow
async def test_a_quiet_live_stream_is_not_stale(xharness: Harness) -> None:  # noqa: F811
    """Frozen prices: Bybit pushes nothing while nothing changes; the pongs keep the feed alive."""
    h = xharness
    fol = [follower("fb", {"mode": "multiplier", "multiplier": "0.1"})]
    cross_config(h, fol, on_bybit={"fb"}, lead_on_bybit=False)
    h.config["feed"]["marks_stale_after_s"] = 1
    engine = await h.start_daemon()
    feed = engine.mark_feeds["bybit"]
    await mark_reaches(engine, BTC, Decimal("60000"), 5)
    await asyncio.sleep(3)  # three times the limit without a price change
    assert feed.updates <= 2  # nothing moved: the snapshots of BTC and PEPE at most
    assert feed.sessions == 1, feed.status()
    assert feed.connected
