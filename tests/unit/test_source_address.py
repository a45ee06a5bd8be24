"""`venues.<name>.source_address` is checked at load: an IP address this host can bind, else one
line naming the key. The binding itself is proven against the local exchange in
tests/integration/test_source_address.py."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config.models import ConfigError, parse_config
from bot.venues.source_address import address_problem
from tests.unit.test_config import base

# TEST-NET-1 (RFC 5737): documentation only, never an address of a real host.
FOREIGN = "192.0.2.1"


def with_address(address: Any) -> dict[str, Any]:
    data = base()
    data["venues"]["local"]["source_address"] = address
    return data


def test_an_address_of_this_host_is_accepted() -> None:
    cfg = parse_config(with_address("127.0.0.2"))
    assert cfg.venues["local"].source_address == "127.0.0.2"
    assert parse_config(base()).venues["local"].source_address is None


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        (FOREIGN, f"cfg.yaml: venues.local.source_address: {FOREIGN} is not an address of this host ("),
        ("eth0", "cfg.yaml: venues.local.source_address: 'eth0' is not an IP address"),
        ("127.0.0.2:9000", "cfg.yaml: venues.local.source_address: '127.0.0.2:9000' is not an IP address"),
    ],
)  # fmt: skip
def test_a_bad_address_is_one_line_naming_the_key(address: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(with_address(address), "cfg.yaml")
    lines = str(info.value).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(expected), lines[0]


def test_address_problem() -> None:
    assert address_problem("127.0.0.3") is None
    assert address_problem("0.0.0.0") is None  # the wildcard: the system's choice, as unset
    problem = address_problem(FOREIGN)
    assert problem is not None
    assert "not an address of this host" in problem
    assert address_problem("localhost") == "'localhost' is not an IP address"
