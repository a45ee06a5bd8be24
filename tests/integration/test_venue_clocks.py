"""Copy lag per venue pair on each exchange's own clock: the Bybit personality's clock runs 1.5 s ahead
of (or behind) the Binance one's and this host's. copybot turns each venue's timestamps into local
time with the clock offset it measured for that venue before subtracting, so the lag it reports
across venues is the few milliseconds a copy takes, not the clocks' 1.5 s skew (or minus that). A
venue clock behind ours also needs copybot's requests signed on the venue's clock (Bybit refuses a
timestamp more than 1 s ahead of its own: 10002)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.service.status import snapshot
from bot.sim.config import load_sim_config
from tests.integration.harness import BTC, CONFIG_VENUE, Harness, follower

CLOCK_ERROR_MS = 20  # the least error allowed the clock estimates, whatever their round trips say


@pytest.mark.parametrize("offset_ms", [1500, -1500], ids=["bybit-ahead", "bybit-behind"])
@pytest.mark.parametrize(
    ("lead_venue", "follower_venue"),
    [
        pytest.param("binance", "bybit", id="binance-bybit"),
        pytest.param("bybit", "binance", id="bybit-binance"),
    ],
)
async def test_cross_venue_lag_is_small_and_positive_despite_a_skewed_venue_clock(
    tmp_path: Path, lead_venue: str, follower_venue: str, offset_ms: int
) -> None:
    sim_config = load_sim_config(tick_interval_s=0, bybit={"clock_offset_ms": offset_ms})
    async with Harness(tmp_path, sim_config, lead_venue=lead_venue, follower_venue=follower_venue) as h:
        h.build_config([
            follower("cross", {"mode": "multiplier", "multiplier": "0.1"}),
            follower("same", {"mode": "multiplier", "multiplier": "0.1"}, venue=lead_venue),
        ])  # fmt: skip
        engine = await h.start_daemon()
        # copybot measured the skew it has to undo
        assert abs(engine.venues["bybit"].clock.offset_ms - offset_ms) < 100
        assert abs(engine.venues["local"].clock.offset_ms) < 100
        if lead_venue == "bybit":  # the test's own lead client signs on Bybit's clock too
            (await h.lead()).options["timeDifference"] = -offset_ms
        for n, side in enumerate(["buy", "sell", "buy", "sell"], start=1):
            await h.trade(BTC, side, "0.05")
            await h.settle(fills=n)
        assert (await h.positions("cross")).get("BTCUSDT", Decimal(0)) == 0

        lead, cross, same = CONFIG_VENUE[lead_venue], CONFIG_VENUE[follower_venue], CONFIG_VENUE[lead_venue]
        lags = {pair: list(samples) for pair, samples in engine.lags.by_pair.items()}
        assert set(lags) == {(lead, cross), (lead, same)}
        # Each venue's offset is estimated to within half the round trip of its reading (plus the
        # venue's millisecond), so a copy that took under a millisecond can show a little below zero
        # (seen: -0.79 ms idle; -33 ms on a loaded machine, where the round trips grow): not a skew
        # left over, which would be 1,500 ms.
        error_ms = max(
            CLOCK_ERROR_MS, sum(engine.venues[v].clock.uncertainty_ms + 1 for v in ("bybit", "local"))
        )
        assert error_ms < 500, error_ms  # still far inside the skew this test is about
        for pair, values in lags.items():
            assert len(values) == 4, (pair, values)
            # a copy on loopback takes milliseconds; the uncorrected figure would be off by 1,500.
            assert all(-error_ms < lag < 500 for lag in values), (pair, values, error_ms)
        shown = snapshot(engine)["copy_lag_ms_by_venue"]
        assert set(shown) == {f"{lead}->{cross}", f"{lead}->{same}"}
        assert shown[f"{lead}->{cross}"]["samples"] == 4
        assert -error_ms < shown[f"{lead}->{cross}"]["p50"] < 500
        metrics = engine.metrics.render().decode()
        count = (
            f'copybot_copy_lag_seconds_count{{follower_venue="{cross}",lead_venue="{lead}",stage="venue"}}'
        )
        assert f"{count} 4.0" in metrics
