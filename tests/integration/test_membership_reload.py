"""Config reload (what SIGHUP does) and restarts with runtime membership changes: real ccxt against
the local exchange. One test sends SIGHUP to a real `copybot run`."""

from __future__ import annotations

import asyncio
import copy
import json
import signal
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config.models import load_config, parse_config
from bot.service.roster import RosterError
from tests.integration.harness import BTC, ETH, Harness, follower
from tests.integration.membership_helpers import MULT, api, block, btc, retired, wait_for, with_token
from tests.integration.test_restarts import free_port, get_json, spawn


def reloaded(h: Harness, change: Any) -> Any:
    """The harness config changed by `change(config)`, validated as a file would be."""
    data = copy.deepcopy(h.config)
    change(data)
    return parse_config(data, source="copybot.yaml", env=h.env)


async def test_reload_adds_removes_and_changes_a_cap_while_the_others_miss_no_fill(harness: Harness) -> None:
    h = harness
    h.build_config([follower(fid, MULT) for fid in ("a", "b", "c")])
    engine = await h.start_daemon()
    assert h.daemon is not None
    await h.trade(BTC, "buy", "0.1")
    await h.settle(fills=1)
    d = block(h, "d")

    def change(data: dict[str, Any]) -> None:
        data["followers"] = [f for f in data["followers"] if f["id"] != "b"] + [d]
        data["followers"][1]["risk"]["max_order_notional"] = 5_000  # c's cap

    new_file = reloaded(h, change)
    trades = 12
    sent: dict[tuple[str, str], int] = {}  # (follower, lead trade id) -> first order sent (perf ns)

    class Sent:
        def on_decision(self, *_: Any) -> None: ...
        def on_denied(self, *_: Any) -> None: ...
        def on_outcome(self, fid: str, intent: Any, _o: Any, sent_ns: int, _a: int) -> None:
            sent.setdefault((fid, intent.trigger), sent_ns)

    engine.observers.append(Sent())

    async def lead_trades() -> None:
        for i in range(trades):
            await h.trade(BTC, "buy" if i % 3 else "sell", "0.02")
            await asyncio.sleep(0.03)

    trader = asyncio.create_task(lead_trades())
    await asyncio.sleep(0.15)  # the lead is mid-way through its trades
    began = time.perf_counter_ns()
    result = await h.daemon.reload(new_file)
    ended = time.perf_counter_ns()
    await trader
    await h.settle(fills=1 + trades)
    assert result["added"] == ["d"]
    assert result["removed"] == ["b"]
    assert result["changed"] == ["c"]

    assert set(engine.followers) == {"a", "c", "d"}
    assert engine.followers["c"].settings.limits.max_order_notional == Decimal(5_000)
    lead_btc = (await h.positions("lead"))["BTCUSDT"]
    for fid in ("a", "c", "d"):
        assert await btc(h, fid) == lead_btc / 10, fid
    # a and c saw every lead fill, before, during and after the reload: each has its disposition.
    engine.journal.flush()
    for fill in engine.journal.lead_fills("lead"):
        for fid in ("a", "c"):
            assert engine.journal.decisions_for("lead", fid, fill.trade_id), (fid, fill.trade_id)
    # ... and copied each as fast as without a reload: the copy lag of the fills during it stays
    # that of a running daemon (a restart would cost seconds: start-up, the landing window).
    lags = [(sent[(fid, f.trade_id)] - f.received_ns) / 1e6 for f in engine.journal.lead_fills("lead")
            for fid in ("a", "c") if (fid, f.trade_id) in sent]  # fmt: skip
    assert len(lags) == 2 * trades  # one order per lead fill for each
    received = [f.received_ns for f in engine.journal.lead_fills("lead")]
    assert min(received) < began  # the reload happened in the middle of the lead's trades
    assert len([r for r in received if began < r < ended]) >= 3
    assert max(lags) < 1_000, sorted(lags)
    # b, leaving, went on copying while d was admitted: none of its workers failed for want of its
    # config (a failure is a critical alert, and its logged traceback stalls the others' copying).
    failed = engine.supervisor.metrics.registry.get_sample_value(
        "copybot_worker_failures_total", {"worker": "follower:b"}
    )
    assert not failed, f"follower:b failed {failed} times during the reload"
    actions = {(c.follower, c.action, c.actor) for c in engine.journal.membership_changes()}
    assert {("d", "add", "reload"), ("b", "leave", "reload"), ("c", "set", "reload"),
            ("*", "reload", "reload")} <= actions  # fmt: skip


async def test_an_invalid_reload_changes_nothing(harness: Harness, tmp_path: Path) -> None:
    h = harness
    h.build_config([follower("a", MULT), follower("b", MULT)])
    engine = await h.start_daemon()
    assert h.daemon is not None
    assert h.daemon.membership is not None
    before = {fid: f.settings for fid, f in engine.followers.items()}

    path = tmp_path / "copybot.yaml"
    bad = copy.deepcopy(h.config)
    bad["followers"][1]["risk"]["max_leverage"] = -1
    bad["followers"].append(block(h, "carol"))
    path.write_text(yaml.safe_dump(json.loads(json.dumps(bad))), encoding="utf-8")
    h.daemon.membership.load_file = lambda: load_config(path, env=h.env)
    with pytest.raises(RosterError, match=r"followers\[1\]\.risk\.max_leverage"):
        await h.daemon.reload()

    def other_section(data: dict[str, Any]) -> None:
        data["followers"].append(block(h, "carol"))
        data["feed"]["keepalive_s"] = 5

    with pytest.raises(RosterError, match="feed: changed"):
        await h.daemon.reload(reloaded(h, other_section))

    def refused_joiner(data: dict[str, Any]) -> None:  # one valid change, one joiner refused
        data["followers"] = [f for f in data["followers"] if f["id"] != "b"]
        h.sim.create_account("w" * 48, "x" * 48, Decimal(20_000), name="risky", withdrawals_enabled=True)
        h.env["K_RISKY"], h.env["S_RISKY"], h.keys["risky"] = "w" * 48, "x" * 48, ("w" * 48, "x" * 48)
        data["followers"].append(block(h, "risky"))

    with pytest.raises(RosterError, match="risky"):
        await h.daemon.reload(reloaded(h, refused_joiner))

    assert {fid: f.settings for fid, f in engine.followers.items()} == before
    assert [f.id for f in engine.followers_of["lead"]] == ["a", "b"]
    await h.trade(BTC, "buy", "0.1")
    await h.settle(fills=1)
    assert await btc(h, "a") == await btc(h, "b") == Decimal("0.010")
    engine.journal.flush()
    assert [c.action for c in engine.journal.membership_changes()] == ["reload_refused"] * 3


@pytest.mark.slow  # three starts, each waiting out the earlier run's landing window
async def test_a_restart_keeps_runtime_changes_until_the_file_changes_that_follower(harness: Harness) -> None:
    h = harness
    h.build_config([follower(fid, MULT) for fid in ("a", "b", "x")], api=with_token(h))
    await h.start_daemon()
    await h.trade(BTC, "buy", "0.1")
    await h.settle(fills=1)
    status, _ = await api(h, "POST", "/followers", {"follower": block(h, "carol", on_join="new_only")})
    assert status == 200
    status, _ = await api(h, "PATCH", "/followers/a", {"changes": {"risk": {"max_order_notional": 777}}})
    assert status == 200
    status, _ = await api(h, "DELETE", "/followers/b", {"on_leave": "keep"})
    assert status == 200
    status, _ = await api(h, "DELETE", "/followers/x", {"on_leave": "follow_exits"})
    assert status == 200
    await h.stop_daemon()

    engine = await h.start_daemon()  # the same file: every runtime change comes back
    assert h.daemon is not None
    assert h.daemon.membership is not None
    assert set(engine.followers) == {"a", "carol", "x"}
    assert engine.followers["a"].settings.limits.max_order_notional == Decimal(777)
    assert h.daemon.membership.leaving == {"x": "follow_exits"}
    assert [f.id for f in engine.followers_of["lead"]] == ["a", "carol"]
    assert engine.followers["carol"].holds == {
        ("lead", BTC): "new_only: the lead held this position when the follower joined"
    }
    await h.trade(ETH, "buy", "1")  # x copies no entry; carol copies what is new
    await h.trade(BTC, "sell", "0.1")  # the lead's exit: x follows it out and leaves
    await h.settle(fills=2)  # counted since this start
    assert await h.positions("carol") == {"ETHUSDT": Decimal("0.100")}

    async def x_gone() -> bool:
        return not await h.positions("x") and await retired(engine, "x")

    await wait_for(x_gone)
    await h.stop_daemon()

    h.config["followers"][0]["risk"]["max_order_notional"] = 888  # the file changes a: the file wins
    engine = await h.start_daemon()
    assert set(engine.followers) == {"a", "carol"}
    assert engine.followers["a"].settings.limits.max_order_notional == Decimal(888)
    engine.journal.flush()
    (superseded,) = engine.journal.membership_changes(follower="a")[:1]
    assert superseded.action == "override_superseded"
    assert "the file wins" in superseded.detail["why"]
    assert {fid: row.action for fid, row in engine.journal.overrides().items()} == {
        "b": "remove",
        "carol": "set",
        "x": "remove",
    }


@pytest.mark.slow
async def test_sighup_reloads_a_running_copybot(harness: Harness, tmp_path: Path) -> None:
    h = harness
    h.build_config([follower("a", MULT)])
    port = free_port()
    config = tmp_path / "copybot.yaml"

    def write() -> None:
        data = json.loads(json.dumps(h.config, default=str))
        data["api"] = {"enabled": True, "port": port}
        data["logging"] = {"level": "warning", "json": True}
        config.write_text(yaml.safe_dump(data), encoding="utf-8")

    write()
    # The daemon's environment is fixed when it starts (systemd's too): the joiner's key is there
    # before, only the file changes.
    carol = block(h, "carol")
    proc = await spawn(config, h.env, tmp_path / "copybot.log")
    try:

        async def followers() -> set[str]:
            code, body = await asyncio.to_thread(get_json, f"http://127.0.0.1:{port}/status")
            return set(body["followers"]) if code == 200 and body else set()

        async def only_a() -> bool:
            return await followers() == {"a"}

        await wait_for(only_a, timeout=30)
        h.config["followers"].append(carol)
        write()
        proc.send_signal(signal.SIGHUP)

        async def carol_in() -> bool:
            return await followers() == {"a", "carol"}

        await wait_for(carol_in, timeout=15)
        await h.trade(BTC, "buy", "0.1")

        async def copied() -> bool:
            return await btc(h, "carol") == Decimal("0.010") == await btc(h, "a")

        await wait_for(copied, timeout=15)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
