"""Each injected fault, one test each: the copy still lands exactly once. Faults on the lead's stream
run with a Binance and a Bybit lead, faults on follower orders with Binance and Bybit followers
(`vharness`, parametrized by lead venue x follower venue)."""

from __future__ import annotations

import asyncio
import sqlite3
from decimal import Decimal

import pytest

from bot.core.trading_state import StateCode
from bot.core.types import TradingState
from tests.integration.harness import BTC, PAIRS, Harness, follower

# Lead-side faults: the lead's venue matters; follower-side faults: the followers' (the lead's venue
# does not enter a follower's order path, so those run with a Binance lead only, to save suite time).
LEAD_PAIRS = [p for p in PAIRS if p.id in ("binance-binance", "bybit-binance", "bybit-bybit")]
FOLLOWER_PAIRS = [p for p in PAIRS if p.id in ("binance-binance", "binance-bybit")]
# The venue's own rate-limit answer: Binance's HTTP 429 -1003 with Retry-After, Bybit's 10006 (HTTP 200).
RATE_LIMITED = {
    "binance": {"http_status": 429, "code": -1003, "retry_after": 1, "count": 1},
    "bybit": {"code": 10006, "http_status": 200, "count": 1},
}
# Where a follower's order lookups go: Binance's GET order, Bybit's order realtime and history.
LOOKUP_PATH = {"binance": "/fapi/v1/order", "bybit": "/v5/order/"}


async def setup(h: Harness, n: int = 1, **overrides: object) -> None:
    h.build_config([follower(f"f{i}", {"mode": "multiplier", "multiplier": "0.1"}) for i in range(n)],
                   **overrides)  # fmt: skip
    await h.start_daemon()


async def orders_of(h: Harness, fid: str) -> list[dict[str, object]]:
    return list((await h.admin(fid))["orders"])


@pytest.mark.parametrize("vharness", LEAD_PAIRS, indirect=True)
async def test_websocket_dropped_then_fill_while_down_is_backfilled(vharness: Harness) -> None:
    h = vharness
    await setup(h)
    feed = h.engine.feeds["lead"]
    sessions = feed.sessions
    await h.fault(api_key=h.keys["lead"][0], drop_ws=True)
    await h.trade(BTC, "buy", "0.05")  # probably lands while the stream is down
    await h.settle(fills=1)
    assert feed.sessions > sessions
    assert (await h.positions("f0"))["BTCUSDT"] == Decimal("0.005")
    assert len(await orders_of(h, "f0")) == 1


async def test_listen_key_expired_gets_a_new_key(harness: Harness) -> None:
    h = harness
    await setup(h)
    feed = h.engine.feeds["lead"]
    sessions = feed.sessions
    await h.fault(api_key=h.keys["lead"][0], expire_listen_keys=True)
    for _ in range(100):
        if feed.sessions > sessions and feed.live:
            break
        await asyncio.sleep(0.05)
    assert feed.sessions > sessions, "an expired listenKey must end the session"
    assert "listenKeyExpired" in (feed.last_error or "")
    await h.trade(BTC, "buy", "0.05")
    await h.settle(fills=1)
    assert (await h.positions("f0"))["BTCUSDT"] == Decimal("0.005")


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(None, id="rate-limited"),
        pytest.param({"http_status": 503, "count": 2}, id="http-503"),
        pytest.param({"delay_ms": 800, "count": 2}, id="slow-responses"),
        pytest.param({"accept_then_timeout": 1}, id="accept-then-time-out"),
    ],
)
@pytest.mark.parametrize("vharness", FOLLOWER_PAIRS, indirect=True)
async def test_order_faults_place_exactly_one_order(
    vharness: Harness, fault: dict[str, object] | None
) -> None:
    h = vharness
    await setup(h, executor={"order_timeout_ms": 1500})
    spec = fault or RATE_LIMITED[h.follower_venue]
    await h.fault(api_key=h.keys["f0"][0], method="POST", path=h.order_path("f0"), **spec)
    await h.trade(BTC, "buy", "0.05")
    await h.settle(fills=1, timeout=30)
    orders = await orders_of(h, "f0")
    assert len(orders) == 1, orders
    assert (await h.positions("f0"))["BTCUSDT"] == Decimal("0.005")
    f0 = h.engine.followers["f0"]
    assert f0.state is TradingState.ACTIVE
    assert not f0.needs_resync  # settled, by its reply or a lookup


@pytest.mark.parametrize("vharness", FOLLOWER_PAIRS, indirect=True)
async def test_key_revoked_mid_run_disables_only_that_follower(vharness: Harness) -> None:
    h = vharness
    await setup(h, n=3)
    await h.trade(BTC, "buy", "0.05")
    await h.settle(fills=1)
    async with h.http.post(f"{h.sim.rest_url}/_sim/accounts/{h.keys['f1'][0]}/revoke"):  # type: ignore[union-attr]
        pass
    await h.trade(BTC, "buy", "0.05")
    await h.settle(fills=2)
    f1 = h.engine.followers["f1"]
    assert f1.state is TradingState.HALTED
    assert "authentication" in f1.state_reason
    assert f1.standing.code is StateCode.AUTH_FAILED
    for fid in ("f0", "f2"):
        assert (await h.positions(fid))["BTCUSDT"] == Decimal("0.010")
        assert h.engine.followers[fid].state is TradingState.ACTIVE
    with sqlite3.connect(h.config["journal"]["path"]) as db:
        kinds = [r[0] for r in db.execute("select kind from events")]
    assert "follower_disabled" in kinds


@pytest.mark.parametrize("vharness", LEAD_PAIRS[:2], indirect=True)
async def test_stalled_stream_is_detected_and_replaced(vharness: Harness) -> None:
    h = vharness
    await setup(h, feed={"keepalive_s": 1, "stale_after_s": 3})
    feed = h.engine.feeds["lead"]
    sessions = feed.sessions
    await h.fault(api_key=h.keys["lead"][0], stall_ws=20)
    await h.trade(BTC, "buy", "0.05")  # its event is lost on the stalled socket
    for _ in range(200):
        if feed.sessions > sessions and feed.live:
            break
        await asyncio.sleep(0.05)
    assert feed.sessions > sessions, "a silent stream must be replaced"
    await h.settle(fills=1)
    assert (await h.positions("f0"))["BTCUSDT"] == Decimal("0.005")


@pytest.mark.parametrize("vharness", FOLLOWER_PAIRS, indirect=True)
async def test_an_order_nobody_can_confirm_is_never_sent_again(vharness: Harness) -> None:
    """The order is accepted but its response is lost, and every lookup fails too: the outcome is
    unknown. Nothing is resent; the follower's next plan starts from the venue's positions."""
    h = vharness
    await setup(h, executor={"order_timeout_ms": 1000, "lookup_attempts": 2})
    key = h.keys["f0"][0]
    await h.fault(api_key=key, method="POST", path=h.order_path("f0"), accept_then_timeout=1)
    await h.fault(api_key=key, method="GET", path=LOOKUP_PATH[h.follower_venue], http_status=503, count=50)
    await h.trade(BTC, "buy", "0.05")
    await h.settle(fills=1, timeout=30)
    assert h.engine.followers["f0"].needs_resync
    assert len(await orders_of(h, "f0")) == 1  # accepted once, never resent
    async with h.http.delete(f"{h.sim.rest_url}/_sim/faults"):  # type: ignore[union-attr]
        pass
    await h.trade(BTC, "buy", "0.05")
    await h.settle(fills=2)
    assert (await h.positions("f0"))["BTCUSDT"] == Decimal("0.010")
    assert len(await orders_of(h, "f0")) == 2
    assert not h.engine.followers["f0"].needs_resync
