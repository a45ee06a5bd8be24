"""Late landing: the order request is accepted by the venue's gateway, held inside the venue past the
client's timeout, and reaches the matching engine afterwards (or is rejected there, -5028). Client
ids are reusable once an order is closed (`client_id_rule: open`, as on Binance), so the venue does
not stop a second request with the same id: only "never resend while the first could still land"
does. Twenty followers, several rounds, both settings of the engine's recvWindow check."""

from __future__ import annotations

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
