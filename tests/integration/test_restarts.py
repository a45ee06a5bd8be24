"""Nothing lost, nothing doubled: the daemon is SIGKILLed at random moments while the lead trades,
and restarted; at the end every follower is on target, no intent was sent twice, and every lead
fill is in the journal. The loop runs for each lead venue x follower venue: Binance to Binance at
full size (20 followers, 20 kills), the pairs with Bybit smaller (6 followers, 6 kills)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.sim.bybit.venue import exec_uuid
from bot.sim.config import SimConfig, load_sim_config
from tests.integration.harness import BTC, ETH, Harness, follower

STEP = Decimal("0.001")
PRICE = {"BTCUSDT": Decimal(61_000), "ETHUSDT": Decimal(3_100)}  # upper bounds on frozen prices
MIN_NOTIONAL = {"BTCUSDT": Decimal(100), "ETHUSDT": Decimal(20)}


def write_config(h: Harness, path: Path, api_port: int) -> None:
    config = json.loads(json.dumps(h.config, default=str))
    config["api"] = {"enabled": True, "port": api_port}
    config["logging"] = {"level": "warning", "json": True}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def spawn(config: Path, env: dict[str, str], log: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", "run", "--config", str(config),
        env={**os.environ, **env}, stdout=log.open("ab"), stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip


def get_json(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback test API
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except OSError:
        return 0, None


async def kill_repeatedly(
    h: Harness,
    config: Path,
    log: Path,
    port: int,
    *,
    kills: int,
    rng: random.Random,
    pause_s: tuple[float, float],
    trader: Callable[[asyncio.Event], Awaitable[int]],
) -> int:
    """Start the daemon, let `trader` trade on the lead, and kill -9 the daemon `kills` times at a
    random moment (start-up, fan-out or idle alike), restarting it each time. Returns the lead's
    order count."""
    stop = asyncio.Event()
    proc = await spawn(config, h.env, log)
    await wait_for(lambda: get_json(f"http://127.0.0.1:{port}/readyz")[0] == 200, 30, "first start")
    trading = asyncio.create_task(trader(stop))
    try:
        for kill in range(kills):
            if kill:
                proc = await spawn(config, h.env, log)
            await asyncio.sleep(rng.uniform(*pause_s))
            proc.send_signal(signal.SIGKILL)
            await proc.wait()
    finally:
        stop.set()
    return await trading


def converged(port: int, last: list[Any] | None = None) -> Any:
    """The daemon's /status when it is ready, idle and every follower is on target (or within a
    residual below the venue minimum); else None. `last` keeps the latest status for a report."""
    code, status = get_json(f"http://127.0.0.1:{port}/status")
    if last is not None:
        last[0] = status
    if code != 200 or not status["ready"]:
        return None
    followers = status["followers"].values()
    ok = all(p["match"] or p["residual_below_min"] for f in followers for p in f["positions"].values())
    idle = all(f["queue"] == 0 and not f["busy"] for f in followers)
    return status if ok and idle else None


async def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def lead_trader(h: Harness, stop: asyncio.Event, seed: int) -> int:
    rng = random.Random(seed)
    position = {BTC: Decimal(0), ETH: Decimal(0)}
    orders = 0
    while not stop.is_set():
        symbol = rng.choice([BTC, ETH])
        qty = Decimal(rng.choice(["0.05", "0.1", "0.15"])) * (10 if symbol == ETH else 1)
        side = rng.choice(["buy", "sell"]) if position[symbol] == 0 else (
            "sell" if position[symbol] > 0 and rng.random() < 0.6 else "buy")  # fmt: skip
        with contextlib.suppress(Exception):
            await h.trade(symbol, side, str(qty))
            position[symbol] += qty if side == "buy" else -qty
            orders += 1
        await asyncio.sleep(rng.uniform(0.05, 0.3))
    return orders


def restart_sim_config() -> SimConfig:
    """The venue's own rules: client ids reusable once closed (`client_id_rule: open`) and 2,400
    request weight per minute per address. Twenty restarts in under a minute, each reading 21
    accounts from one address, spend more than that: start-up waits out the 429s and bans instead of
    exiting, and an order of a killed run is waited out before anything is looked up or re-read."""
    return load_sim_config(tick_interval_s=0)


@pytest.mark.slow
@pytest.mark.timeout(420)
@pytest.mark.parametrize(
    ("lead_venue", "follower_venue", "followers", "kills"),
    [
        pytest.param("binance", "binance", 20, 20, id="binance-binance"),
        pytest.param("binance", "bybit", 6, 6, id="binance-bybit"),
        pytest.param("bybit", "binance", 6, 6, id="bybit-binance"),
        pytest.param("bybit", "bybit", 6, 6, id="bybit-bybit"),
    ],
)
async def test_kill_minus_nine_loop(
    tmp_path: Path, lead_venue: str, follower_venue: str, followers: int, kills: int
) -> None:
    async with Harness(
        tmp_path, restart_sim_config(), lead_venue=lead_venue, follower_venue=follower_venue
    ) as h:
        await kill_minus_nine_loop(h, tmp_path, followers=followers, kills=kills)


async def kill_minus_nine_loop(h: Harness, tmp_path: Path, *, followers: int, kills: int) -> None:
    multipliers = [Decimal("0.05") * (1 + i % 4) for i in range(followers)]
    h.build_config([follower(f"f{i:02d}", {"mode": "multiplier", "multiplier": str(m)})
                    for i, m in enumerate(multipliers)])  # fmt: skip
    port = free_port()
    config = tmp_path / "copybot.yaml"
    write_config(h, config, port)
    log = tmp_path / "daemon.log"
    # The copy starts with the daemon's first start: every lead fill from then on must be accounted.
    lead_orders = await kill_repeatedly(
        h, config, log, port, kills=kills, rng=random.Random(20261125), pause_s=(0.3, 4.0),
        trader=lambda stop: lead_trader(h, stop, seed=5),
    )  # fmt: skip
    assert lead_orders > kills

    # A last, clean run: it must converge every follower and exit 0 on SIGTERM.
    proc = await spawn(config, h.env, log)
    last: list[Any] = [None]
    try:
        try:
            await wait_for(lambda: converged(port, last), 60, "followers on target after the last restart")
        except AssertionError as exc:
            off = {fid: {s: p for s, p in f["positions"].items() if not p["match"]}
                   for fid, f in (last[0] or {}).get("followers", {}).items()}  # fmt: skip
            raise AssertionError(f"{exc}: off target {off}; leads {last[0] and last[0]['leads']}") from None
    finally:
        proc.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(proc.wait(), 30)
    assert code == 0, log.read_text()[-3000:]

    lead_data = await h.admin("lead")
    lead_pos = {p["symbol"]: Decimal(p["positionAmt"]) for p in lead_data["positions"]}
    lead_volume = {s: Decimal(0) for s in ("BTCUSDT", "ETHUSDT")}
    for t in lead_data["trades"]:
        lead_volume[t["symbol"]] += Decimal(t["qty"])
    fills = len(lead_data["trades"])
    for i, m in enumerate(multipliers):
        fid = f"f{i:02d}"
        data = await h.admin(fid)
        held = {p["symbol"]: Decimal(p["positionAmt"]) for p in data["positions"]}
        for symbol in lead_volume:
            target = (lead_pos.get(symbol, Decimal(0)) * m).quantize(STEP, rounding=ROUND_DOWN)
            position = held.get(symbol, Decimal(0))
            if position != target:
                # Only an entry below the venue minimum may wait: same side, smaller, tiny notional.
                assert abs(position) < abs(target), (fid, symbol, position, target)
                assert position == 0 or (position > 0) == (target > 0), (fid, symbol, position, target)
                assert abs(target - position) * PRICE[symbol] < MIN_NOTIONAL[symbol], (fid, symbol)
        ids = [o["clientOrderId"] for o in data["orders"]]
        assert len(ids) == len(set(ids)), f"{fid}: a client order id was used twice"
        # Nothing doubled: a follower never trades more than its share of the lead's volume
        # (coalescing only nets it down; a doubled intent would push it over).
        for symbol, volume in lead_volume.items():
            traded = sum(Decimal(o["executedQty"]) for o in data["orders"] if o["symbol"] == symbol)
            assert traded <= volume * m + fills * STEP, (fid, symbol, traded, volume * m)

    with sqlite3.connect(h.config["journal"]["path"]) as db:
        journaled = {str(r[0]) for r in db.execute("select trade_id from lead_fills")}
    # The admin view names fills by the engine's trade id; a Bybit lead's fills carry execIds.
    fill_id = exec_uuid if h.lead_venue == "bybit" else str
    missing = {fill_id(int(t["id"])) for t in lead_data["trades"]} - journaled
    assert not missing, f"lead fills missing from the journal: {sorted(missing)[:10]}"


@pytest.mark.slow
async def test_sigterm_during_fan_out_drains_then_restart_places_nothing_twice(
    harness: Harness, tmp_path: Path
) -> None:
    h = harness
    h.build_config([follower(f"f{i:02d}", {"mode": "multiplier", "multiplier": "0.1"}) for i in range(20)],
                   executor={"drain_timeout_s": 5})  # fmt: skip
    port = free_port()
    config = tmp_path / "copybot.yaml"
    write_config(h, config, port)
    log = tmp_path / "daemon.log"
    proc = await spawn(config, h.env, log)
    await wait_for(lambda: get_json(f"http://127.0.0.1:{port}/readyz")[0] == 200, 30, "ready")
    for i in range(20):  # every follower's order is held a while: the fan-out is in flight
        await h.fault(
            api_key=h.keys[f"f{i:02d}"][0], method="POST", path="/fapi/v1/order", delay_ms=300, count=1
        )
    await h.trade(BTC, "buy", "0.05")

    async def first_order_seen() -> None:
        while not any([(await h.admin(f"f{i:02d}"))["orders"] for i in range(20)]):
            await asyncio.sleep(0.01)

    await asyncio.wait_for(first_order_seen(), 10)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(proc.wait(), 20)
    assert code == 0, log.read_text()[-3000:]
    assert time.monotonic() - started < 5 + 5  # the drain bound plus closing

    proc = await spawn(config, h.env, log)
    try:

        def settled() -> bool:
            code, status = get_json(f"http://127.0.0.1:{port}/status")
            return (
                code == 200
                and status["ready"]
                and all(p["match"] for f in status["followers"].values() for p in f["positions"].values())
            )

        await wait_for(settled, 30, "followers on target after the restart")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    for i in range(20):
        data = await h.admin(f"f{i:02d}")
        assert len(data["orders"]) == 1, data["orders"]
        assert Decimal(data["positions"][0]["positionAmt"]) == Decimal("0.005")
