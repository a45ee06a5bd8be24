"""Late landing: the order request is accepted by the venue's gateway, held inside the venue past the
client's timeout, and reaches the matching engine afterwards (or is rejected there, -5028). Client
ids are reusable once an order is closed (`client_id_rule: open`, as on Binance), so the venue does
not stop a second request with the same id: only "never resend while the first could still land"
does. Twenty followers, several rounds, both settings of the engine's recvWindow check."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import pytest

from bot.sim.config import load_sim_config
from tests.integration.harness import BTC, Harness, follower

FOLLOWERS = 20
MULTIPLIER = Decimal("0.1")
ROUNDS = [("buy", "0.05"), ("buy", "0.03"), ("sell", "0.06"), ("sell", "0.02")]
RECV_WINDOW_MS = 2000
TIMEOUT_MS = 1000
# Below the recvWindow: the order lands after the client gave up, while the executor still waits.
# Above it: with the engine check the order is refused at the engine (-5028); without it, it lands
# later still, within the executor's margin (recvWindow + landing_margin_ms after its timestamp).
DELAYS_MS = (1500, 2400)


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("engine_check", [True, False], ids=["engine-check", "no-engine-check"])
async def test_late_landing_never_fills_twice(tmp_path: Path, engine_check: bool) -> None:
    sim_config = load_sim_config(tick_interval_s=0, client_id_rule="open", recv_window_at_engine=engine_check)
    async with Harness(tmp_path, sim_config) as h:
        ids = [f"f{i:02d}" for i in range(FOLLOWERS)]
        h.build_config(
            [follower(fid, {"mode": "multiplier", "multiplier": str(MULTIPLIER)}) for fid in ids],
            executor={"order_timeout_ms": TIMEOUT_MS, "recv_window_ms": RECV_WINDOW_MS,
                      "landing_margin_ms": 1000},
        )  # fmt: skip
        engine = await h.start_daemon()
        lead_position = Decimal(0)
        lead_volume = Decimal(0)
        started = time.monotonic()
        for n, (side, qty) in enumerate(ROUNDS, start=1):
            for i, fid in enumerate(ids):
                delay = DELAYS_MS[(i + n) % len(DELAYS_MS)]
                await h.fault(api_key=h.keys[fid][0], late_landing_ms=delay, count=1)
            await h.trade(BTC, side, qty)
            lead_position += Decimal(qty) if side == "buy" else -Decimal(qty)
            lead_volume += Decimal(qty)
            await h.settle(fills=n, timeout=60)
        elapsed = time.monotonic() - started

        target = lead_position * MULTIPLIER
        waits = sum(f.placer.landing_waits for f in engine.followers.values())
        assert waits >= FOLLOWERS * len(ROUNDS), "every late order must have been waited out"
        for fid in ids:
            data = await h.admin(fid)
            traded = sum(Decimal(o["executedQty"]) for o in data["orders"] if o["symbol"] == "BTCUSDT")
            assert traded <= lead_volume * MULTIPLIER, (fid, traded, lead_volume * MULTIPLIER)
            assert traded == lead_volume * MULTIPLIER, (fid, traded)  # and nothing was lost either
            assert (await h.positions(fid)).get("BTCUSDT", Decimal(0)) == target, fid
            assert not engine.followers[fid].needs_resync
        # Each late order costs its follower the landing window, never more than one round trip on top.
        assert elapsed < len(ROUNDS) * (RECV_WINDOW_MS + 1000 + 2500) / 1000, elapsed


# -- Bybit: an orderLinkId is taken by every order ever placed -----------------------------------------

BYBIT_FOLLOWERS = 10
BYBIT_ROUNDS = ROUNDS[:3]


@pytest.mark.slow
@pytest.mark.timeout(60)
async def test_bybit_followers_under_late_landing_never_fill_twice(tmp_path: Path) -> None:
    """On Bybit there is no landing window to wait out (bot.venues.bybit.adapter): the executor looks
    the order up as soon as its request timed out, finds nothing (the order is still held inside the
    venue) and sends the same orderLinkId again. That resend becomes the order; when the first
    request lands, Bybit refuses it (110072: the id is taken by every order ever placed), so nothing
    fills twice."""
    async with Harness(tmp_path, follower_venue="bybit") as h:
        ids = [f"b{i:02d}" for i in range(BYBIT_FOLLOWERS)]
        h.build_config(
            [follower(fid, {"mode": "multiplier", "multiplier": str(MULTIPLIER)}) for fid in ids],
            executor={"order_timeout_ms": TIMEOUT_MS, "recv_window_ms": RECV_WINDOW_MS,
                      "landing_margin_ms": 200},
        )  # fmt: skip
        engine = await h.start_daemon()
        lead_position = Decimal(0)
        lead_volume = Decimal(0)
        for n, (side, qty) in enumerate(BYBIT_ROUNDS, start=1):
            for i, fid in enumerate(ids):
                delay = DELAYS_MS[(i + n) % len(DELAYS_MS)]
                await h.fault(api_key=h.keys[fid][0], late_landing_ms=delay, count=1)
            await h.trade(BTC, side, qty)
            lead_position += Decimal(qty) if side == "buy" else -Decimal(qty)
            lead_volume += Decimal(qty)
            await h.settle(fills=n, timeout=30)
        await asyncio.sleep(max(DELAYS_MS) / 1000)  # every held request has landed (or been refused)

        waits = sum(f.placer.landing_waits for f in engine.followers.values())
        assert waits >= BYBIT_FOLLOWERS * len(BYBIT_ROUNDS), "every late order timed out first"
        for fid in ids:
            data = await h.admin(fid)
            # one order per round: the resend; the late first request was refused when it landed
            assert len(data["orders"]) == len(BYBIT_ROUNDS), (fid, data["orders"])
            links = [o["clientOrderId"] for o in data["orders"]]
            assert len(set(links)) == len(links)
            traded = sum(Decimal(o["executedQty"]) for o in data["orders"] if o["symbol"] == "BTCUSDT")
            assert traded <= lead_volume * MULTIPLIER, (fid, traded, lead_volume * MULTIPLIER)
            assert traded == lead_volume * MULTIPLIER, (fid, traded)
            assert (await h.positions(fid)).get("BTCUSDT", Decimal(0)) == lead_position * MULTIPLIER, fid
            assert not engine.followers[fid].needs_resync
