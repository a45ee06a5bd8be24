"""A follower on another venue than its lead: symbols map by ccxt's unified symbol, sizes by the
follower venue's own precision. Two local exchanges, one with a coarser BTC lot."""

from __future__ import annotations

import secrets
from decimal import Decimal

from bot.sim.config import load_sim_config
from bot.sim.server import SimExchange
from tests.integration.harness import BTC, Harness, follower


async def test_follower_on_a_second_venue_uses_its_own_lot_size(harness: Harness) -> None:
    h = harness
    base = load_sim_config(tick_interval_s=0)
    coarse = tuple(
        m.model_copy(update={"step": Decimal("0.01"), "min_qty": Decimal("0.01")})
        if m.symbol == "BTCUSDT"
        else m
        for m in base.markets
    )
    other = SimExchange(base.model_copy(update={"markets": coarse}))
    await other.start()
    try:
        key, secret = secrets.token_hex(24), secrets.token_hex(24)
        other.create_account(key, secret, Decimal(50_000), name="remote")
        h.env["K_REMOTE"], h.env["S_REMOTE"] = key, secret
        config = h.build_config([follower("local", {"mode": "multiplier", "multiplier": "0.5"})])
        config["venues"]["other"] = {"exchange": "binanceusdm", "mode": "sim",
                                     "rest_url": other.rest_url, "ws_url": other.ws_url}  # fmt: skip
        remote = dict(config["followers"][0], id="remote", venue="other",
                      credentials={"api_key_env": "K_REMOTE", "secret_env": "S_REMOTE"})  # fmt: skip
        config["followers"].append(remote)
        await h.start_daemon()
        await h.trade(BTC, "buy", "0.123")
        await h.settle(fills=1)
        assert (await h.positions("local"))["BTCUSDT"] == Decimal("0.061")  # 0.0615 on a 0.001 lot
        remote_account = other.engine.accounts[key]
        assert remote_account.position("BTCUSDT").amt == Decimal("0.06")  # the same on a 0.01 lot
    finally:
        await h.stop_daemon()
        await other.stop()
