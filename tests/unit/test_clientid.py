from __future__ import annotations

import itertools
import re

import pytest

from bot.core.clientid import client_order_id, intent_prefix, parse

BINANCE = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")


def test_shape_and_determinism() -> None:
    cid = client_order_id("lead1", "987654321", "alice", "BTC/USDT:USDT", 1)
    assert cid == client_order_id("lead1", "987654321", "alice", "BTC/USDT:USDT", 1)
    assert re.fullmatch(r"cb\.[a-z2-7]{13}\.[a-z2-7]{12}\.1", cid)
    assert BINANCE.match(cid)


def test_fixed_value_stays_stable_across_releases() -> None:
    # A restarted process must derive the ids the previous one placed: never change this value.
    assert (
        client_order_id("lead1", "123456789", "alice", "BTC/USDT:USDT", 0)
        == "cb.jgq4sxmcxysdb.ctb6is5fkpjs.0"
    )


@pytest.mark.parametrize(
    "changed",
    [
        ("lead2", "t", "f", "s", 0),
        ("lead", "t2", "f", "s", 0),
        ("lead", "t", "f2", "s", 0),
        ("lead", "t", "f", "s2", 0),
        ("lead", "t", "f", "s", 1),
        ("lea", "dt", "f", "s", 0),  # field boundaries matter
    ],
)
def test_each_field_changes_the_id(changed: tuple[str, str, str, str, int]) -> None:
    assert client_order_id(*changed) != client_order_id("lead", "t", "f", "s", 0)


def test_no_collisions_in_a_large_sample() -> None:
    leads = [f"lead{i}" for i in range(10)]
    triggers = [str(9_000_000_000 + i) for i in range(125)]
    followers = [f"follower-{i}" for i in range(20)]
    symbols = ["BTC/USDT:USDT", "ETH/USDT:USDT"]
    inputs = list(itertools.product(leads, triggers, followers, symbols, [0, 1]))
    ids = {client_order_id(*args) for args in inputs}
    assert len(inputs) == 100_000
    assert len(ids) == len(inputs)


@pytest.mark.parametrize("leg", [0, 7, 12, 10**5])
def test_parse_and_prefix_round_trip(leg: int) -> None:
    cid = client_order_id("lead1", "t", "bob", "ETH/USDT:USDT", leg)
    assert len(cid) <= 36
    assert BINANCE.match(cid)
    parsed = parse(cid)
    assert parsed is not None
    assert parsed[2] == leg
    prefix = intent_prefix(cid)
    assert cid == f"{prefix}{leg}"
    assert client_order_id("lead1", "t", "bob", "ETH/USDT:USDT", leg + 1).startswith(prefix)


@pytest.mark.parametrize(
    "foreign",
    [
        "x-abc123",
        "",
        "cb.short.ctb6is.0",
        "cb.jgq4sxmcxy.ctb6is.",
        "cb.jgq4sxmcxy.ctb6is.01",
        "cb.JGQ4SXMCXY.ctb6is.0",
    ],
)
def test_parse_rejects_foreign_ids(foreign: str) -> None:
    assert parse(foreign) is None
    with pytest.raises(ValueError, match="not a copybot client order id"):
        intent_prefix(foreign)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", "t", "f", "s", 0), "lead"),
        (("l", "", "f", "s", 0), "trigger"),
        (("l", "t", "f", "s", -1), "leg"),
        (("l", "t", "f", "s", 10**15), "over 36"),
    ],
)
def test_invalid_inputs_are_refused(args: tuple[str, str, str, str, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        client_order_id(*args)
