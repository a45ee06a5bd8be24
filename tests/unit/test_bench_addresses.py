"""The benchmark's shard addresses: distinct loopback addresses this host can bind, each seen apart
by the local exchange (tests/integration/test_source_address.py shows the exchange's side)."""

from __future__ import annotations

import socket

import pytest

from bot.bench.processes import BenchError, loopback_addresses


def test_one_bindable_loopback_address_per_shard() -> None:
    addresses = loopback_addresses(4)
    assert addresses == ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
    for address in addresses:
        with socket.socket() as s:
            s.bind((address, 0))
            assert s.getsockname()[0] == address


@pytest.mark.parametrize(("count", "first"), [(0, 2), (4, 0), (10, 250)])
def test_a_range_outside_127_0_0_x_is_refused(count: int, first: int) -> None:
    with pytest.raises(BenchError, match="is not a loopback range"):
        loopback_addresses(count, first=first)
