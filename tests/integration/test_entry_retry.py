"""An IOC entry that comes back short on a thin book is tried again within seconds (bounded
backoff, the same slippage band around the lead's price), not at the next reconcile."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path

from bot.sim.config import SimConfig, load_sim_config
from tests.integration.harness import THIN, Harness, follower


def thin_refilling_config() -> SimConfig:
    """THIN: 200 a level, levels 0.002 apart from 1.0000, a level refills in one second."""
    base = load_sim_config(tick_interval_s=0)
    fast = {"refill_per_s": Decimal(1)}
    markets = tuple(m.model_copy(update=fast) if m.symbol == "THINUSDT" else m for m in base.markets)
    return base.model_copy(update={"markets": markets})


async def test_short_ioc_entry_is_retried_before_the_reconcile(tmp_path: Path) -> None:
    async with Harness(tmp_path, thin_refilling_config()) as h:
        # A band of 10 bps: the follower may pay at most 0.1% over the lead's price.
        h.build_config([follower("f0", {"mode": "multiplier", "multiplier": "1"}, slippage_bps=10)])
        engine = await h.start_daemon()
        started = time.monotonic()
        await h.trade(THIN, "buy", "300")  # takes the first level and half the second
        await h.settle(fills=1, timeout=20)
        deadline = time.monotonic() + 15
        while (await h.positions("f0")).get("THINUSDT") != Decimal(300):
            assert time.monotonic() < deadline, (await h.positions("f0"), engine.followers["f0"].entry_retry)
            await h.settle(timeout=20)
        took = time.monotonic() - started
        retry = engine.followers["f0"].entry_retry
        assert retry.scheduled >= 1, "the first IOC must have come back short"
        assert took < 8, took  # the reconcile interval in the harness is an hour
        data = await h.admin("f0")
        lead_price = max(Decimal(t["price"]) for t in (await h.admin("lead"))["trades"])
        for order in data["orders"]:
            assert order["type"] == "LIMIT", order
            assert order["timeInForce"] == "IOC", order
            assert Decimal(order["price"]) <= lead_price * Decimal("1.001"), (order, lead_price)
        assert sum(Decimal(o["executedQty"]) for o in data["orders"]) == Decimal(300)
