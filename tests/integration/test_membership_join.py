"""A follower joining the running daemon while the lead holds positions, under each on_join, through
the control API: real ccxt against the local exchange, no mocks."""

from __future__ import annotations

from decimal import Decimal

from tests.integration.harness import BTC, ETH, Harness, follower
from tests.integration.membership_helpers import MULT, api, block, btc, set_price, with_token


async def test_copy_open_copies_what_the_lead_holds_and_counts_in_aum_at_once(harness: Harness) -> None:
    h = harness
    h.build_config([follower("a", MULT)], api=with_token(h))
    engine = await h.start_daemon()
    await h.trade(BTC, "buy", "0.1")
    await h.settle(fills=1)
    assert await btc(h, "a") == Decimal("0.010")
    aum_before = h.aum.lead_rows(now_ms=0)[0]

    status, body = await api(h, "POST", "/followers", {"follower": block(h, "carol"), "actor": "ops"})
    assert status == 200, body
    assert body["copied"] == [f"lead:{BTC}"]
    assert body["not_copied"] == {}
    assert "carol" in engine.followers
    assert engine.supervisor.task("follower:carol") is not None
    await h.settle()
    assert await btc(h, "carol") == Decimal("0.010")  # the open position, at the same ratio
    row = h.aum.lead_rows(now_ms=0)[0]
    assert row.followers == aum_before.followers + 1
    # carol's 20,000 counts at once, less the fee of the copy it just made (equity is marked to
    # market from its own fills, bot.live.work.Balance), as a's does.
    carol = engine.followers["carol"].balance.equity
    assert Decimal(19_999) < carol < Decimal(20_000)
    assert row.aum == aum_before.aum + carol

    # From now on carol gets every lead fill, like a follower from the start.
    await h.trade(BTC, "buy", "0.1")
    await h.settle(fills=2)
    assert await btc(h, "carol") == await btc(h, "a") == Decimal("0.020")

    engine.journal.flush()
    (change,) = engine.journal.membership_changes("carol")
    assert (change.action, change.actor) == ("add", "api:ops@127.0.0.1")
    assert change.detail["copied"] == [f"lead:{BTC}"]


async def test_new_only_copies_only_what_the_lead_opens_after_the_join(harness: Harness) -> None:
    h = harness
    h.build_config([follower("a", MULT)], api=with_token(h))
    engine = await h.start_daemon()
    await h.trade(BTC, "buy", "0.1")
    await h.settle(fills=1)

    status, body = await api(h, "POST", "/followers", {"follower": block(h, "carol", on_join="new_only")})
    assert status == 200, body
    assert body["copied"] == []
    assert "new_only" in body["not_copied"][f"lead:{BTC}"]
    await h.trade(BTC, "buy", "0.1")  # the lead adds to a position held at the join: not copied
    await h.trade(ETH, "buy", "1")  # a position opened after the join: copied
    await h.settle(fills=3)
    assert await h.positions("carol") == {"ETHUSDT": Decimal("0.100")}
    assert await btc(h, "a") == Decimal("0.020")
    status, body = await api(h, "GET", "/followers/changes", token=False)
    assert "new_only" in body["not_copied"]["carol"][f"lead:{BTC}"]
    # The reconciler does not bring the held-out position back either.
    assert h.daemon is not None
    assert h.daemon.reconciler is not None
    report = await h.daemon.reconciler.run_once("test")
    assert not [d for d in report.drifts if d.follower == "carol"]

    await h.trade(BTC, "sell", "0.2")  # the lead closes it ...
    await h.trade(BTC, "buy", "0.1")  # ... and reopens it: that one is copied
    await h.settle(fills=5)
    assert await btc(h, "carol") == Decimal("0.010")
    engine.journal.flush()
    assert engine.journal.holds("carol") == {}
    status, body = await api(h, "GET", "/followers/changes", token=False)
    assert status == 200
    assert body["not_copied"] == {}


async def test_the_price_guard_refuses_a_position_that_moved_too_far(harness: Harness) -> None:
    h = harness
    h.build_config([follower("a", MULT)], api=with_token(h))
    await h.start_daemon()
    await h.trade(BTC, "buy", "0.1")
    await h.trade(ETH, "buy", "1")
    await h.settle(fills=2)
    btc_entry = Decimal((await (await h.lead()).fetch_ticker(BTC))["last"])
    await set_price(h, "BTCUSDT", str(btc_entry * Decimal("1.02")))  # 200 bps above the lead's entry

    new = block(h, "carol", on_join="copy_open", join_max_adverse_bps=50)
    status, body = await api(h, "POST", "/followers", {"follower": new})
    assert status == 200, body
    assert body["copied"] == [f"lead:{ETH}"]
    reason = body["not_copied"][f"lead:{BTC}"]
    assert reason.startswith("price guard:")
    assert "bps worse" in reason
    await h.settle()
    assert await h.positions("carol") == {"ETHUSDT": Decimal("0.100")}


async def test_a_join_is_refused_when_its_key_may_withdraw_and_nothing_changes(harness: Harness) -> None:
    h = harness
    h.build_config([follower("a", MULT)], api=with_token(h))
    engine = await h.start_daemon()
    key, secret = "w" * 48, "s" * 48
    h.sim.create_account(key, secret, Decimal(20_000), name="risky", withdrawals_enabled=True)
    h.env["K_RISKY"], h.env["S_RISKY"] = key, secret
    h.keys["risky"] = (key, secret)
    status, body = await api(h, "POST", "/followers", {"follower": block(h, "risky")})
    assert status == 409
    assert "withdraw" in body["error"]
    assert set(engine.followers) == {"a"}
    assert [f.id for f in engine.followers_of["lead"]] == ["a"]
    assert engine.supervisor.task("follower:risky") is None


async def test_the_aum_cap_clips_a_join_and_refuses_one_past_it(harness: Harness) -> None:
    h = harness
    alloc = {"mode": "allocation", "allocation": 10_000}
    h.build_config([follower("a", alloc)], api=with_token(h), aum={"cap": 15_000})
    engine = await h.start_daemon()
    new = block(h, "carol")
    new["follows"][0]["sizing"] = alloc
    status, body = await api(h, "POST", "/followers", {"follower": new})
    assert status == 200, body
    assert "admitted 5000.00 of 10000.00" in body["aum_cap"]["lead"]
    assert engine.followers["carol"].settings.sizings["lead"].allocation == Decimal("5000.0000")
    full = block(h, "dave")
    full["follows"][0]["sizing"] = alloc
    status, body = await api(h, "POST", "/followers", {"follower": full})
    assert status == 409
    assert "AUM cap" in body["error"]
    assert "dave" not in engine.followers
    assert h.aum.lead_rows(now_ms=0)[0].aum == Decimal(15_000)
