"""Followers leaving, pausing and changing while the daemon runs, under each on_leave, through the
control API; bad input answered 4xx with the key path. Real ccxt against the local exchange."""

from __future__ import annotations

import asyncio
import getpass
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from bot.cli import main
from tests.integration.harness import BTC, ETH, Harness, follower
from tests.integration.membership_helpers import (
    MULT,
    TOKEN_ENV,
    api,
    block,
    btc,
    retired,
    wait_for,
    with_token,
)


async def test_each_on_leave_policy(harness: Harness) -> None:
    h = harness
    h.build_config([follower(fid, MULT) for fid in ("a", "closer", "keeper", "exiter")], api=with_token(h))
    engine = await h.start_daemon()
    await h.trade(BTC, "buy", "0.1")
    await h.settle(fills=1)

    status, body = await api(h, "DELETE", "/followers/closer", {"on_leave": "close"})
    assert status == 200, body
    assert body["on_leave"] == "close", body
    status, body = await api(h, "DELETE", "/followers/keeper", {"on_leave": "keep"})
    assert (status, body["left"]) == (200, True), body
    status, body = await api(h, "DELETE", "/followers/exiter", {"on_leave": "follow_exits"})
    assert (status, body["left"]) == (200, False), body
    # Out of the lead's followers (and its AUM) at once, whatever the policy.
    assert [f.id for f in engine.followers_of["lead"]] == ["a"]
    assert h.aum.lead_rows(now_ms=0)[0].followers == 1

    async def closer_gone() -> bool:
        return await btc(h, "closer") == 0 and "closer" not in engine.followers

    await wait_for(closer_gone)
    assert "keeper" not in engine.followers
    assert await btc(h, "keeper") == Decimal("0.010")

    await h.trade(BTC, "buy", "0.1")  # an entry: only `a` copies it
    await h.trade(ETH, "buy", "1")
    await h.settle(fills=3)
    assert await btc(h, "a") == Decimal("0.020")
    assert await h.positions("exiter") == {"BTCUSDT": Decimal("0.010")}
    assert await btc(h, "keeper") == Decimal("0.010")

    await h.trade(BTC, "sell", "0.15")  # the lead's exit takes its position under the exiter's copy
    await h.settle(fills=4)
    assert await btc(h, "exiter") == Decimal("0.005")
    await h.trade(BTC, "sell", "0.05")  # closed: the exiter is flat and leaves
    await h.settle(fills=5)

    async def exiter_gone() -> bool:
        return await btc(h, "exiter") == 0 and await retired(engine, "exiter")

    await wait_for(exiter_gone)
    assert engine.supervisor.task("follower:exiter") is None
    assert not engine.departing_of["lead"]
    assert await btc(h, "keeper") == Decimal("0.010")  # keep: never touched
    engine.journal.flush()
    actions = [(c.follower, c.action) for c in reversed(engine.journal.membership_changes())]
    assert ("exiter", "leave") in actions
    assert ("exiter", "remove") in actions
    assert actions.index(("exiter", "leave")) < actions.index(("exiter", "remove"))


async def test_pause_copies_exits_only_and_set_changes_a_cap(harness: Harness) -> None:
    h = harness
    h.build_config([follower("a", MULT), follower("b", MULT)], api=with_token(h))
    engine = await h.start_daemon()
    await h.trade(BTC, "buy", "0.1")
    await h.settle(fills=1)

    status, body = await api(h, "POST", "/followers/b/pause", {"reason": "owner asked"})
    assert (status, body["state"]) == (200, "REDUCE_ONLY"), body
    await h.trade(BTC, "buy", "0.1")
    await h.settle(fills=2)
    assert await btc(h, "b") == Decimal("0.010")  # the entry is not copied
    await h.trade(BTC, "sell", "0.15")
    await h.settle(fills=3)
    assert await btc(h, "b") == Decimal("0.005")  # the exit is
    status, body = await api(h, "POST", "/followers/b/resume")
    assert (status, body["state"]) == (200, "ACTIVE"), body

    # A cap lowered at run time holds the next entry.
    changes = {"risk": {"max_position_notional": 700}}
    status, body = await api(h, "PATCH", "/followers/a", {"changes": changes})
    assert status == 200, body
    assert engine.followers["a"].settings.limits.max_position_notional == Decimal(700)
    await h.trade(ETH, "buy", "1")  # 0.1 ETH at 3,000 would be 300: within the cap
    await h.trade(BTC, "buy", "0.1")  # a's target would be 0.015 BTC = 900 > 700: clipped
    await h.settle(fills=5)
    a_btc = await btc(h, "a")
    assert Decimal("0.010") < a_btc < Decimal("0.015")
    assert a_btc * Decimal("60000.5") <= 700
    assert await btc(h, "b") == Decimal("0.015")
    engine.journal.flush()
    actions = [c.action for c in reversed(engine.journal.membership_changes())]
    assert actions == ["pause", "resume", "set"]


async def test_bad_input_is_refused_with_the_key_path_and_changes_nothing(harness: Harness) -> None:
    h = harness
    h.build_config([follower("a", MULT)], api=with_token(h))
    engine = await h.start_daemon()
    bad = block(h, "carol", risk={"max_leverage": -1})
    status, body = await api(h, "POST", "/followers", {"follower": bad})
    assert status == 400, body
    assert "follower.risk.max_leverage" in body["error"], body
    bad = block(h, "carol")
    bad["follows"][0]["on_join"] = "sometimes"
    status, body = await api(h, "POST", "/followers", {"follower": bad})
    assert status == 400, body
    assert "follower.follows[0].on_join" in body["error"], body
    status, body = await api(h, "POST", "/followers", {"follower": block(h, "carol"), "color": "red"})
    assert status == 400, body
    assert body["error"].startswith("color: unknown field"), body
    inline = block(h, "carol")
    inline["credentials"] = {"api_key": "LITERALKEY123", "secret": "LITERALSECRET456"}
    status, body = await api(h, "POST", "/followers", {"follower": inline})
    assert status == 400, body
    assert "follower.credentials.api_key: inline secrets are refused" in body["error"], body
    assert "LITERAL" not in body["error"]
    unset = block(h, "carol")
    unset["credentials"] = {"api_key_env": "NOT_SET_K", "secret_env": "NOT_SET_S"}
    status, body = await api(h, "POST", "/followers", {"follower": unset})
    assert status == 409, body
    assert "NOT_SET_K" in body["error"], body  # the variable named, never a value
    status, body = await api(h, "POST", "/followers", {"follower": block(h, "carol")}, token=False)
    assert status == 401
    status, body = await api(h, "PATCH", "/followers/a", {"changes": {"risk": {"max_order_notional": 0}}})
    assert status == 400, body
    assert "changes.risk.max_order_notional" in body["error"], body
    status, body = await api(h, "PATCH", "/followers/a", {"changes": {"venue": "elsewhere"}})
    assert status == 400, body
    assert "changes.venue: cannot change" in body["error"], body
    status, body = await api(h, "PATCH", "/followers/nobody", {"changes": {"leverage": 3}})
    assert status == 404, body
    status, body = await api(h, "DELETE", "/followers/a", {"on_leave": "vanish"})
    assert status == 400, body
    assert body["error"].startswith("on_leave:"), body
    status, body = await api(h, "POST", "/followers/a/pause", [1, 2])
    assert status == 400, body
    assert set(engine.followers) == {"a"}
    assert engine.followers["a"].state.value == "ACTIVE"
    engine.journal.flush()
    assert engine.journal.membership_changes() == []


async def test_the_cli_changes_followers_through_the_api(
    harness: Harness, tmp_path: Path, capsys: Any
) -> None:
    h = harness
    h.build_config([follower("a", MULT)], api=with_token(h))
    engine = await h.start_daemon()
    assert h.daemon is not None
    base = ["follower", "--api", f"http://127.0.0.1:{h.daemon.bound_api_port}"]
    token_file = tmp_path / "token"
    token_file.write_text(h.env[TOKEN_ENV], encoding="utf-8")
    carol = tmp_path / "carol.yaml"
    carol.write_text(yaml.safe_dump({"followers": [block(h, "carol")]}), encoding="utf-8")

    async def cli(*argv: str) -> int:
        return await asyncio.to_thread(main, [*base, "--token-file", str(token_file), *argv])

    assert await cli("add", "--file", str(carol)) == 0
    assert (
        await cli("set", "carol", "risk.max_order_notional=1234.5", "follows.lead.sizing.multiplier=0.2") == 0
    )
    assert engine.followers["carol"].settings.limits.max_order_notional == Decimal("1234.5")
    assert engine.followers["carol"].settings.sizings["lead"].multiplier == Decimal("0.2")
    assert await cli("pause", "carol", "--reason", "owner asked") == 0
    assert engine.followers["carol"].state.value == "REDUCE_ONLY"
    assert await cli("set", "carol", "risk.max_leverage=0") == 1  # refused, with the key path
    assert "changes.risk.max_leverage" in capsys.readouterr().out
    assert await cli("remove", "carol", "--on-leave", "keep") == 0
    assert "carol" not in engine.followers
    assert await cli("changes", "carol") == 0
    lines = capsys.readouterr().out.splitlines()  # the daemon's log lines share stdout here
    start = len(lines) - 1 - lines[::-1].index("{")  # the last answer printed: `changes`
    listed = json.loads("\n".join(lines[start : len(lines) - lines[::-1].index("}")]))
    assert [c["action"] for c in listed["changes"]] == ["remove", "leave", "pause", "set", "add"]
    assert listed["changes"][-1]["actor"].startswith(f"api:{getpass.getuser()}@")
    # Added again, it is paused still: an operator's pause of an id outlives its leaving, as a restart.
    assert await cli("add", "--file", str(carol)) == 0
    assert engine.followers["carol"].state.value == "REDUCE_ONLY"
